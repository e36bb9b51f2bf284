"""The type and template pages in Chromium against a real Herald, on SQLite and PostgreSQL: an
operator creates a type, then its in-app and email templates, watching the live preview render what
they type with sample data (and the renderer's errors beside the field); hostile type names and
template text show as text and run nothing, the email's HTML included; screenshots in zh-CN and en.
"""

from __future__ import annotations

from typing import Any

from herald.core.console import Role
from tests.web.conftest import LiveHerald, require_playwright
from tests.web.test_console_browser import account, log_in_with_the_keyboard

expect = require_playwright()

HOSTILE_NAME = '<img src=x onerror="window.__xss=1">'
HOSTILE_BODY = "<script>window.__xss=2</script> paid ${amount}"
HOSTILE_HTML = '<p>Paid <b>${amount}</b></p><img src=x onerror="parent.__xss=3"><script>parent.__xss=4</script>'


def test_create_a_type_and_its_inapp_and_email_templates_with_live_preview(live: LiveHerald, browser_page: Any) -> None:
    account(live, "olga", Role.OPERATOR)
    bp = browser_page(live.url + "/console/login", locale="en")
    page = bp.page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in_with_the_keyboard(bp, "olga")

    page.click("nav.side >> text=Types")
    page.click("text=New type")
    page.fill("#f-key", "order.paid")
    page.fill("#f-name", HOSTILE_NAME)
    page.check("input[name=channels][value=email]")
    page.fill("#f-dedup", "0")  # a mistake: named beside the field, the input kept
    page.click("button.primary")
    expect(page.locator("#err-dedup_seconds")).to_contain_text("dedup_seconds")
    expect(page.locator("#f-name")).to_have_value(HOSTILE_NAME)
    page.fill("#f-dedup", "60")
    page.click("button.primary")
    expect(page.locator(".notice")).to_have_text("Type created. Now add its templates.")
    bp.shot("type")

    # the in-app template, previewed as it is typed
    page.click("a[href='/console/templates/order.paid/inapp/en']")
    expect(page.locator(".type-name")).to_have_text(HOSTILE_NAME)
    page.fill("#tf-data", '{"amount": "9.50"}')
    page.fill("#tf-title", "Paid ${amount}")
    page.fill("#tf-body", HOSTILE_BODY)
    expect(page.locator("#preview-out .preview-title")).to_have_text("Paid 9.50")
    expect(page.locator("#preview-out .preview-body")).to_have_text("<script>window.__xss=2</script> paid 9.50")
    page.fill("#tf-title", "Paid ${amount} to ${shop}")  # a variable the sample data lacks
    expect(page.locator(".field-error[data-for=_data]")).to_contain_text("shop")
    page.fill("#tf-data", '{"amount": "9.50", "shop": "Tea & Co"}')
    expect(page.locator("#preview-out .preview-title")).to_have_text("Paid 9.50 to Tea & Co")
    expect(page.locator(".field-error[data-for=_data]")).to_have_text("")
    bp.shot("inapp-preview")
    page.click("text=Save the template")
    expect(page.locator(".notice")).to_have_text("Template saved.")

    # the email template: its HTML shown in a sandboxed frame that runs nothing
    page.goto(live.url + "/console/templates/order.paid/email/en")
    page.fill("#tf-data", '{"amount": "12.00"}')
    page.fill("#tf-subject", "Receipt ${amount}")
    page.fill("#tf-html", HOSTILE_HTML)
    expect(page.locator("#preview-out .preview-subject")).to_have_text("Receipt 12.00")
    frame = page.locator("#preview-html")
    expect(frame).to_be_visible()
    assert frame.get_attribute("sandbox") == ""
    expect(page.frame_locator("#preview-html").locator("b")).to_have_text("12.00")
    bp.shot("email-preview")
    page.click("text=Save the template")
    expect(page.locator(".notice")).to_have_text("Template saved.")

    saved = live.client.get("/v1/notification-types/order.paid").json()
    assert saved["name"] == HOSTILE_NAME and saved["dedup_seconds"] == 60
    assert saved["templates"]["inapp"]["en"] == {"title": "Paid ${amount} to ${shop}", "body": HOSTILE_BODY}
    assert saved["templates"]["email"]["en"] == {"subject": "Receipt ${amount}", "html": HOSTILE_HTML}

    for path in ("/console/types", "/console/templates"):
        page.goto(live.url + path)
        expect(page.locator("main .type-name")).to_contain_text(HOSTILE_NAME)
    page.goto(live.url + "/console/types/order.paid")
    expect(page.locator("#f-name")).to_have_value(HOSTILE_NAME)
    page.goto(live.url + "/console/templates/order.paid/inapp/en")
    expect(page.locator(".field-error[data-for=_data]")).to_contain_text("amount")  # the data is not saved
    page.fill("#tf-data", '{"amount": 1, "shop": "<b>x</b>"}')
    expect(page.locator("#preview-out .preview-title")).to_have_text("Paid 1 to <b>x</b>")
    expect(page.locator("#preview-out .preview-body")).to_contain_text("<script>")
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img[src=x]").count() == 0 and not dialogs

    # screenshots of both pages in each language
    for locale in ("zh-CN", "en"):
        page.goto(f"{live.url}/console/lang/{locale}?next=/console/types")
        bp.shot(f"types-{locale}")
        page.goto(live.url + "/console/templates/order.paid/email/en")
        page.fill("#tf-data", '{"amount": "12.00"}')
        expect(page.locator("#preview-out .preview-subject")).to_have_text("Receipt 12.00")
        bp.shot(f"template-{locale}")
        page.set_viewport_size({"width": 390, "height": 844})
        bp.shot(f"template-{locale}-phone")
        page.set_viewport_size({"width": 1280, "height": 800})
        bp.shot(f"template-{locale}-wide")


def test_a_viewer_sees_the_form_and_the_preview_but_cannot_save(live: LiveHerald, browser_page: Any) -> None:
    r = live.client.put("/v1/notification-types/t1", json={"channels": ["inapp"]})
    assert r.status_code in (200, 201), r.text
    live.client.put("/v1/notification-types/t1/templates/inapp?locale=en", json={"title": "Hi ${name}"})
    account(live, "vic", Role.VIEWER)
    bp = browser_page(live.url + "/console/login", locale="en")
    page = bp.page
    log_in_with_the_keyboard(bp, "vic")
    page.goto(live.url + "/console/templates/t1/inapp/en")
    page.fill("#tf-data", '{"name": "Ann"}')
    expect(page.locator("#preview-out .preview-title")).to_have_text("Hi Ann")
    expect(page.locator("#tf-title")).to_be_disabled()
    assert page.locator("text=Save the template").count() == 0
