"""The console's announcements page over HTTP on SQLite and PostgreSQL: compose, preview, schedule,
edit and withdraw through the same engine as /v1/announcements (what users see follows at once),
each change audited; a viewer reads but changes nothing; mistakes named next to their field with what
was typed kept; hostile titles shown as text."""

from __future__ import annotations

import re
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from herald.core.console import Role
from herald.store.types import utcnow
from tests.conftest import Harness
from tests.web.console_support import audit_rows, logged_in, page_csrf

EN = {"Accept-Language": "en"}
HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def form(**fields: str) -> dict[str, str]:
    return {
        "title": "Maintenance tonight",
        "summary": "",
        "body": "",
        "kind": "notice",
        "content_type": "text",
        "media_url": "",
        "action_url": "",
        "audience": "all",
        "tags": "",
        "starts_at": "",
        "ends_at": "",
        "action": "save",
        **fields,
    }


def created_id(location: str) -> str:
    found = re.search(r"/console/announcements/(ann_[^?]+)", location)
    assert found, location
    return found.group(1)


async def changes_audited(harness: Harness) -> list[tuple[str, str, str | None]]:
    return [
        (a, action, target) for a, action, target, _ in await audit_rows(harness.herald) if action.startswith("ann")
    ]


async def banners_of(harness: Harness, user: str) -> list[str]:
    r = await harness.client.get("/v1/me/banners", headers=harness.user(user))
    assert r.status_code == 200, r.text
    return [item["title"] for item in r.json()["items"]]


async def test_a_banner_published_in_the_console_is_what_users_see_until_it_is_withdrawn(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    r = await harness.client.post(
        "/console/announcements", data={**form(title="Spring sale", kind="banner", summary="-20%"), "csrf_token": token}
    )
    assert r.status_code == 303, r.text
    ann = created_id(r.headers["location"])
    assert await banners_of(harness, "u1") == ["Spring sale"]
    api = await harness.client.get(f"/v1/announcements/{ann}", headers=harness.reader())
    assert api.json()["kind"] == "banner" and api.json()["summary"] == "-20%"

    r = await harness.client.post(
        f"/console/announcements/{ann}",
        data={**form(title="Spring sale, last day", kind="banner"), "csrf_token": token},
    )
    assert r.status_code == 303, r.text
    assert await banners_of(harness, "u1") == ["Spring sale, last day"]

    page = await harness.client.get("/console/announcements", headers=EN)
    assert "Spring sale, last day" in page.text and "active" in page.text

    r = await harness.client.post(f"/console/announcements/{ann}/delete", data={"csrf_token": token})
    assert r.status_code == 303
    assert await banners_of(harness, "u1") == []
    assert (await harness.client.get(f"/v1/announcements/{ann}", headers=harness.reader())).status_code == 404
    assert await changes_audited(harness) == [
        ("olga", "announcement.create", ann),
        ("olga", "announcement.update", ann),
        ("olga", "announcement.delete", ann),
    ]


async def test_audience_tags_and_a_scheduled_start(harness: Harness) -> None:
    r = await harness.client.put("/v1/users/vip1", json={"tags": ["vip"]}, headers=harness.admin())
    assert r.status_code in (200, 201), r.text
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    r = await harness.client.post(
        "/console/announcements",
        data={**form(title="For VIPs", kind="banner", audience="tags", tags="vip,\nbeta"), "csrf_token": token},
    )
    assert r.status_code == 303, r.text
    assert await banners_of(harness, "vip1") == ["For VIPs"]
    assert await banners_of(harness, "someone") == []

    later = utcnow() + timedelta(days=2)
    r = await harness.client.post(
        "/console/announcements",
        data={
            **form(title="Next week", kind="banner", starts_at=later.strftime("%Y-%m-%dT%H:%M")),
            "csrf_token": token,
        },
    )
    assert r.status_code == 303, r.text
    ann = created_id(r.headers["location"])
    assert "Next week" not in await banners_of(harness, "u2")
    page = await harness.client.get(f"/console/announcements/{ann}", headers=EN)
    assert 'class="badge ann-scheduled"' in page.text
    api = await harness.client.get(f"/v1/announcements/{ann}", headers=harness.reader())
    assert api.json()["starts_at"].startswith(later.strftime("%Y-%m-%dT%H:%M"))


async def test_preview_saves_nothing_and_shows_the_words_as_text(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    r = await harness.client.post(
        "/console/announcements",
        data={**form(title=HOSTILE[0], summary=HOSTILE[1], body="line", action="preview"), "csrf_token": token},
        headers=EN,
    )
    assert r.status_code == 200, r.text
    assert 'class="card ann-preview"' in r.text
    for hostile in HOSTILE:
        assert hostile not in r.text
        assert str(escape(hostile)) in r.text
    listed = await harness.client.get("/v1/announcements", headers=harness.reader())
    assert listed.json()["items"] == []
    assert await changes_audited(harness) == []


async def test_hostile_titles_render_as_text_in_the_list_and_the_page(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    ids = []
    for hostile in HOSTILE:
        r = await harness.client.post("/console/announcements", data={**form(title=hostile), "csrf_token": token})
        assert r.status_code == 303, r.text
        ids.append(created_id(r.headers["location"]))
    pages = [await harness.client.get("/console/announcements")] + [
        await harness.client.get(f"/console/announcements/{i}") for i in ids
    ]
    for page in pages:
        assert page.status_code == 200
        assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
    assert str(escape(HOSTILE[1])) in pages[0].text


async def test_mistakes_are_named_next_to_their_field_and_the_input_is_kept(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    cases = {
        "title": form(title=""),
        "media_url": form(media_url="ftp://nope", summary="kept summary"),
        "ends_at": form(starts_at="2030-01-02T10:00", ends_at="2030-01-01T10:00"),
        "starts_at": form(starts_at="not a time"),
        "tags": form(audience="tags", tags=" , "),
        "kind": form(kind="popup"),
    }
    for field, data in cases.items():
        r = await harness.client.post("/console/announcements", data={**data, "csrf_token": token}, headers=EN)
        assert r.status_code == 422, (field, r.text)
        assert f'id="err-{field}"' in r.text, (field, r.text)
    r = await harness.client.post(
        "/console/announcements", data={**cases["media_url"], "csrf_token": token}, headers=EN
    )
    assert 'value="kept summary"' in r.text and 'value="ftp://nope"' in r.text
    # a NUL and an absurdly long title are mistakes too, never a 500
    for title in ("a\x00b", "x" * 100_000):
        r = await harness.client.post("/console/announcements", data={**form(title=title), "csrf_token": token})
        assert r.status_code in (400, 422), r.text
    assert (await harness.client.get("/v1/announcements", headers=harness.reader())).json()["items"] == []


async def test_a_viewer_reads_but_cannot_change_anything(harness: Harness) -> None:
    r = await harness.client.post(
        "/v1/announcements", json={"title": "Existing", "kind": "banner"}, headers=harness.admin()
    )
    ann = r.json()["id"]
    token = await logged_in(harness.client, harness.herald, "vera", Role.VIEWER)
    page = await harness.client.get("/console/announcements", headers=EN)
    assert page.status_code == 200 and "Existing" in page.text
    assert "/console/announcements/new" not in page.text
    detail = await harness.client.get(f"/console/announcements/{ann}", headers=EN)
    assert detail.status_code == 200 and "/delete" not in detail.text
    assert "<fieldset disabled" in detail.text and 'value="save"' not in detail.text  # read-only
    assert (await harness.client.get("/console/announcements/new")).status_code == 403
    attempts = [
        ("/console/announcements", form(title="Nope")),
        (f"/console/announcements/{ann}", form(title="Changed")),
        (f"/console/announcements/{ann}/delete", {}),
    ]
    for path, data in attempts:
        r = await harness.client.post(path, data={**data, "csrf_token": token})
        assert r.status_code == 403, path
    assert await banners_of(harness, "u1") == ["Existing"]
    assert await changes_audited(harness) == []
    # and without the CSRF token, even an operator's POST is refused
    await harness.client.post("/console/logout", data={"csrf_token": token})
    await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    r = await harness.client.post(f"/console/announcements/{ann}/delete", data={})
    assert r.status_code == 403
    assert await banners_of(harness, "u1") == ["Existing"]


async def test_an_unknown_announcement_is_the_consoles_404(harness: Harness) -> None:
    token = await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    assert (await harness.client.get("/console/announcements/ann_nope")).status_code == 404
    r = await harness.client.post("/console/announcements/ann_nope/delete", data={"csrf_token": token})
    assert r.status_code == 404
    r = await harness.client.get("/console/announcements?cursor=garbage&kind=<b>")
    assert r.status_code == 200


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
any_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60)  # a form is UTF-8
any_moment = st.one_of(st.just(""), any_text, st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M")))


@FUZZ
@given(
    title=any_text,
    kind=st.one_of(st.sampled_from(["notice", "banner", "activity"]), any_text),
    audience=st.sampled_from(["all", "tags", "other"]),
    tags=any_text,
    media_url=st.one_of(st.just(""), any_text),
    starts_at=any_moment,
    ends_at=any_moment,
)
async def test_any_announcement_form_is_published_or_refused_never_a_5xx(
    harness: Harness, title: str, kind: str, audience: str, tags: str, media_url: str, starts_at: str, ends_at: str
) -> None:
    if not harness.client.cookies.get("herald_console"):
        await logged_in(harness.client, harness.herald, "olga", Role.OPERATOR)
    token = await page_csrf(harness.client, "/console/announcements/new")
    fields = form(
        title=title, kind=kind, audience=audience, tags=tags, media_url=media_url, starts_at=starts_at, ends_at=ends_at
    )
    r = await harness.client.post("/console/announcements", data={**fields, "csrf_token": token})
    assert r.status_code in (303, 400, 422), (r.status_code, r.text[:300])
    if r.status_code == 303:
        page = await harness.client.get(r.headers["location"])
        assert page.status_code == 200
        assert "<script" not in page.text.lower().replace("<script src=", "")
    elif r.status_code == 422:
        assert 'id="err-' in r.text
