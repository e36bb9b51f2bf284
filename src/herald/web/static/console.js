// Herald console: the little script its pages use. No framework, nothing fetched.
"use strict";
// A form with data-confirm="…" asks before it is sent (disabling an account, deleting, …).
document.addEventListener("submit", (event) => {
  const message = event.target instanceof HTMLFormElement ? event.target.dataset.confirm : undefined;
  if (message && !window.confirm(message)) event.preventDefault();
});
// The skip link moves the keyboard focus into the page's content.
document.addEventListener("click", (event) => {
  const link = event.target instanceof Element ? event.target.closest("a.skip") : null;
  const main = document.getElementById("main");
  if (link && main) { event.preventDefault(); main.focus(); }
});
