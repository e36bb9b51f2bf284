"""What a digest message says (core/digests.py): the template's digest fields, the built-in text,
the events' view, and the bounds a hostile template or huge events run into."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from herald.core.digests import (
    BUILTIN_LISTED,
    EVENT_MAX_CHARS,
    HEADLINE_MAX_CHARS,
    DigestEvent,
    DigestWindow,
    digest_context,
    event_fields,
    headline,
    render_digest,
    template_digest_problems,
)
from herald.core.templates import RENDER_SECONDS, prepare_fields

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
WINDOW = DigestWindow("post.liked", "点赞", T0, T0 + timedelta(minutes=10))
PROFILE = {"id": "u1", "name": "张三", "locale": "zh-CN", "data": {}}


def events(n: int, **data: Any) -> list[DigestEvent]:
    return [
        DigestEvent(
            f"ntf_{i:04d}", T0 + timedelta(seconds=i), {"who": f"用户{i}", **data}, {"title": f"用户{i} 赞了你"}
        )
        for i in range(n)
    ]


def context(n: int, **data: Any) -> dict[str, Any]:
    return digest_context(events(n, **data), PROFILE, WINDOW)


def test_the_templates_digest_fields_render_with_events_count_and_recipient() -> None:
    template = {
        "subject": "${who} 赞了你",
        "digest_subject": "${recipient.name}，您有 ${count} 条新点赞",
        "digest_body": "{% for e in events %}${e.data.who}/${e.title};{% endfor %}",
    }
    out = render_digest(template, context(3), "zh-CN")
    assert out.errors == []
    assert out.fields == {
        "subject": "张三，您有 3 条新点赞",
        "body": "用户0/用户0 赞了你;用户1/用户1 赞了你;用户2/用户2 赞了你;",
    }


def test_without_digest_fields_the_built_in_text_speaks_the_recipients_language() -> None:
    template = {"subject": "${who} 赞了你", "body": "${who}", "html": "<b>${who}</b>"}
    zh = render_digest(template, context(2), "zh-CN").fields
    en = render_digest(template, context(2), "en").fields
    assert zh["subject"] == "点赞：您有 2 条新通知" and en["subject"] == "点赞: 2 new notifications"
    assert zh["body"] == "· 用户0 赞了你\n· 用户1 赞了你\n"
    assert "<li>用户0 赞了你</li>" in zh["html"]
    # a channel with no template at all (a webhook) still gets a title and a body
    assert set(render_digest({}, context(1), "en").fields) == {"title", "body"}


def test_the_built_in_text_lists_a_bounded_number_of_events() -> None:
    fields = render_digest({"body": "x", "html": "x"}, context(1000), "en").fields
    assert fields["body"].count("· ") == BUILTIN_LISTED
    assert fields["body"].endswith(f"… and {1000 - BUILTIN_LISTED} more\n")
    zh = render_digest({"body": "x"}, context(51), "zh-CN").fields
    assert zh["body"].endswith("…… 另有 1 条\n")


def test_constant_fields_are_kept_and_event_templates_without_a_digest_version_are_dropped() -> None:
    template = {
        "msgtype": "markdown",
        "title": "${who}",
        "action_url": "https://example.com/posts/${post}",
        "digest_text": "共 ${count} 条",
    }
    out = render_digest(template, context(2), "zh-CN")
    assert out.fields["msgtype"] == "markdown"
    assert out.fields["text"] == "共 2 条"
    assert "action_url" not in out.fields and "action_url" in out.errors[0]
    assert out.fields["title"] == "点赞：您有 2 条新通知"


def test_html_digest_fields_are_autoescaped() -> None:
    out = render_digest({"digest_html": "{% for e in events %}${e.data.who}{% endfor %}"}, context(1, who="x"), "en")
    evil = digest_context([DigestEvent("n", T0, {"who": "<script>"}, {"title": "<b>"})], PROFILE, WINDOW)
    assert out.fields["html"] == "x"
    escaped = render_digest({"digest_html": "${events[0].data.who}", "html": "x"}, evil, "en").fields["html"]
    assert escaped == "&lt;script&gt;"
    assert "&lt;b&gt;" in render_digest({"html": "x"}, evil, "en").fields["html"]  # the built-in one too


def test_a_failing_digest_field_falls_back_to_the_built_in_text_and_says_why() -> None:
    out = render_digest({"digest_title": "${nope}", "digest_body": "${count / 0}"}, context(2), "en")
    assert out.fields["title"] == "点赞: 2 new notifications"
    assert out.fields["body"].count("· ") == 2
    assert any("digest_title" in e and "nope" in e for e in out.errors)
    assert any("digest_body" in e for e in out.errors)


def test_a_hostile_digest_template_is_bounded_in_time_and_falls_back() -> None:
    loops = "{% for e in events %}{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}"
    template = {f"digest_{name}": loops + "{% endfor %}" for name in ("subject", "body", "html", "text")}
    started = time.monotonic()
    out = render_digest(template, context(1000), "zh-CN")
    assert time.monotonic() - started < 3 * RENDER_SECONDS
    assert out.fields["subject"] == "点赞：您有 1000 条新通知"
    assert len(out.errors) == 4


def test_a_large_event_comes_without_its_data_and_fields() -> None:
    big = DigestEvent("n", T0, {"blob": "x" * EVENT_MAX_CHARS}, {"title": "大"})
    (view,) = digest_context([big], PROFILE, WINDOW)["events"]
    assert view["truncated"] and view["data"] == {} and view["fields"] == {} and view["title"] == "大"


def test_headline_is_one_short_line() -> None:
    assert headline({"subject": "  a\nb  ", "body": "c"}) == "a b"
    assert headline({"body": "y" * 500}) == "y" * (HEADLINE_MAX_CHARS - 1) + "…"
    assert headline({"actions": []}) == ""


def test_event_fields_finish_the_recipients_own_fields_within_the_deadline() -> None:
    prepared = prepare_fields({"title": "${recipient.name}，${who} 赞了你", "body": "${who}"}, {"who": "李四"})
    finished = event_fields(prepared, {"who": "李四"}, PROFILE, deadline=time.monotonic() + 1)
    assert finished == {"title": "张三，李四 赞了你", "body": "李四"}
    late = event_fields(prepared, {"who": "李四"}, PROFILE, deadline=time.monotonic() - 1)
    assert late == {"body": "李四"}  # past the deadline the personal field is left out, never waited for


def test_digest_fields_are_checked_against_the_channel() -> None:
    assert (
        template_digest_problems("email", {"digest_subject": "x", "digest_body": "y"}, model=None, generic=True) == []
    )
    (problem,) = template_digest_problems("email", {"digest_colour": "x"}, model=None, generic=True)
    assert problem[0] == "digest_colour"
    (problem,) = template_digest_problems("email", {"digest_": "x"}, model=None, generic=True)
    assert problem[0] == "digest_"
    assert template_digest_problems("webhook", {"digest_anything": "x"}, model=None, generic=False) == []
    (problem,) = template_digest_problems("inapp", {"title": "t", "digest_title": "x"}, model=None, generic=True)
    assert problem[0] == "digest_title"


printable = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(printable, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.dictionaries(printable, values, max_size=5), min_size=0, max_size=8),
    titles=st.lists(st.text(st.characters(blacklist_categories=()), max_size=300), min_size=8, max_size=8),
    locale=st.sampled_from(["zh-CN", "zh-TW", "en", "en-US", "fr", None]),
)
def test_any_events_make_a_digest_and_the_built_in_text_never_fails(
    data: list[dict[str, Any]], titles: list[str], locale: str | None
) -> None:
    """Whatever the events carry (odd strings, lone surrogates, NUL, deep values), the built-in
    text renders, one line per event (up to the bound)."""
    collected = [DigestEvent(f"n{i}", T0, d, {"title": titles[i]}) for i, d in enumerate(data)]
    ctx = digest_context(collected, {"id": "u", "name": None}, WINDOW)
    out = render_digest({"subject": "s", "body": "b"}, ctx, locale)
    assert out.errors == []
    assert out.fields["body"].count("\n") == len(collected)
    assert str(len(collected)) in out.fields["subject"]
