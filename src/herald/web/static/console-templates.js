// Herald console: the live preview of a template page. The form's fields are POSTed as JSON (the
// session's CSRF token in X-CSRF-Token) a moment after the last keystroke; the rendered fields are
// shown as text (textContent only), an email's HTML in a sandboxed iframe that runs nothing.
"use strict";
(() => {
  const form = document.getElementById("template-form");
  const out = document.getElementById("preview-out");
  const frame = document.getElementById("preview-html");
  const state = document.getElementById("preview-state");
  if (!form || !out || !frame || !state) return;
  let timer = 0;
  let sent = 0;

  // The fields as the form would send them; disabled ones too (a viewer's read-only form previews).
  function pairs() {
    const list = [];
    for (const field of form.elements) {
      const name = field.getAttribute("name");
      if (!name || name === "csrf_token" || !("value" in field)) continue;
      if (field.type === "checkbox") {
        if (field.checked) list.push([name, "on"]);
      } else {
        list.push([name, String(field.value)]);
      }
    }
    return list;
  }

  function showErrors(errors) {
    for (const box of form.querySelectorAll(".field-error")) box.replaceChildren();
    for (const error of errors) {
      const name = String(error.field || "").split(".")[0];
      const box = form.querySelector(`.field-error[data-for="${CSS.escape(name)}"]`) ||
        form.querySelector('.field-error[data-for="body"]');
      const line = document.createElement("p");
      line.textContent = `${error.field}: ${error.message}`;
      if (box) box.append(line);
    }
  }

  function showFields(fields) {
    out.replaceChildren();
    frame.hidden = true;
    for (const [name, value] of Object.entries(fields)) {
      const term = document.createElement("dt");
      term.textContent = name;
      const text = document.createElement("dd");
      text.className = "preview-" + name.replace(/[^a-z0-9_-]/gi, "");
      text.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 1);
      out.append(term, text);
      if (name === "html" && typeof value === "string") {
        frame.srcdoc = value;  // sandbox="": no script, no form, no navigation, an opaque origin
        frame.hidden = false;
      }
    }
  }

  async function preview() {
    const mine = ++sent;
    state.textContent = form.dataset.rendering || "…";
    let response;
    try {
      response = await fetch(form.dataset.preview, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
        body: JSON.stringify({ form: pairs() }),
      });
    } catch (error) {
      state.textContent = String(error);
      return;
    }
    if (mine !== sent) return;  // a newer preview is on its way
    const answer = await response.json().catch(() => ({}));
    if (response.ok) {
      showErrors([]);
      showFields(answer.fields || {});
      state.textContent = form.dataset.rendered || "";
    } else {
      showErrors(answer.errors || [{ field: "body", message: String(response.status) }]);
      state.textContent = form.dataset.failed || String(response.status);
    }
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(preview, 300);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  preview();
})();
