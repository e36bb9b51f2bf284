"""The pure side of merging (core/merge.py): the actors an item keeps, how ``${actors}`` prints, the
key's digest and the checks on a key template."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.core.errors import Invalid
from herald.core.merge import (
    MAX_ACTORS,
    actor_name,
    key_digest,
    key_problem,
    merge_actors,
    merge_key,
    merge_variables,
    render_actors,
    separator_for,
)
from herald.core.templates import render_fields

names = st.text(min_size=1, max_size=12).filter(lambda s: s.strip() and "\x00" not in s)
actor_ids = st.sampled_from([f"u{i}" for i in range(8)])
actors = st.builds(lambda i, n: {"id": i, "name": n}, actor_ids, names)
events = st.lists(st.one_of(actors, st.none()), max_size=40)
locales = st.sampled_from(["zh-CN", "zh-TW", "zh_Hant", "ZH", "ja", "ja-JP", "en", "en-US", "fr", "", None])


def replay(seq: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    for actor in seq:
        kept = merge_actors(kept, actor)
    return kept


@given(events)
def test_an_item_keeps_the_newest_distinct_actors_newest_first(seq: list[dict[str, Any] | None]) -> None:
    kept = replay(seq)
    newest_first: list[dict[str, Any]] = []
    for actor in reversed([a for a in seq if a is not None]):
        if actor["id"] not in {a["id"] for a in newest_first}:
            newest_first.append(actor)
    assert kept == newest_first[:MAX_ACTORS]
    assert len({a["id"] for a in kept}) == len(kept) <= MAX_ACTORS


@given(events, actors)
def test_the_newest_actor_comes_first_as_it_is_now(seq: list[dict[str, Any] | None], last: dict[str, Any]) -> None:
    kept = merge_actors(replay(seq), last)
    assert kept[0] == last


@given(st.lists(actors, max_size=MAX_ACTORS), locales)
def test_actors_print_as_their_names_joined_for_the_locale(people: list[dict[str, Any]], locale: str | None) -> None:
    text = render_actors(people, locale)
    cjk = (locale or "").lower()[:2] in ("zh", "ja")
    assert text == ("、" if cjk else ", ").join(p["name"] for p in people)
    rendered = render_fields({"t": "${actors}"}, merge_variables(len(people), people, locale))["t"]
    assert rendered == text


@given(st.lists(actors, min_size=1, max_size=MAX_ACTORS), st.integers(min_value=1, max_value=10**6))
def test_the_goal_sentence(people: list[dict[str, Any]], count: int) -> None:
    context = merge_variables(count, people, "zh-CN")
    title = render_fields({"t": "${actors}等 ${count} 人赞了你的文章"}, context)["t"]
    assert title == "、".join(p["name"] for p in people) + f"等 {count} 人赞了你的文章"


def test_actors_are_a_list_to_templates_too() -> None:
    people = [{"id": "u1", "name": "张三"}, {"id": "u2", "name": "李四"}, {"id": 7}, {"type": "bot"}]
    context = merge_variables(4, people, "en")
    template = "${actors|length}|${actors[0].name}|{% for a in actors %}${a.id|default('-')}.{% endfor %}|${actors}"
    assert render_fields({"t": template}, context)["t"] == "4|张三|u1.u2.7.-.|张三, 李四, 7"


def test_names_are_escaped_in_html_fields() -> None:
    context = merge_variables(1, [{"name": "<b>x</b>"}], "en")
    assert render_fields({"html": "<p>${actors}</p>"}, context)["html"] == "<p>&lt;b&gt;x&lt;/b&gt;</p>"


@pytest.mark.parametrize(
    ("actor", "name"),
    [
        ({"id": "u1", "name": "张三"}, "张三"),
        ({"id": "u1", "name": "  "}, "u1"),
        ({"id": 42}, "42"),
        ({"id": True}, None),
        ({"name": None, "id": None}, None),
        ("u1", None),
        (None, None),
    ],
)
def test_actor_names(actor: Any, name: str | None) -> None:
    assert actor_name(actor) == name


def test_actors_without_an_id_are_told_apart_by_content() -> None:
    kept = merge_actors([{"name": "a"}, {"name": "b"}], {"name": "a"})
    assert kept == [{"name": "a"}, {"name": "b"}]


@pytest.mark.parametrize(("locale", "sep"), [("zh-CN", "、"), ("ja", "、"), ("en", ", "), (None, ", "), ("zhx", ", ")])
def test_separator(locale: str | None, sep: str) -> None:
    assert separator_for(locale) == sep


@given(st.text(), st.text())
def test_key_digests_are_fixed_size_and_tell_keys_apart(a: str, b: str) -> None:
    assert len(key_digest(a)) == 64
    assert (key_digest(a) == key_digest(b)) == (a == b)


def test_the_key_is_rendered_from_the_data() -> None:
    assert merge_key("${post.id}", {"post": {"id": 5}}) == key_digest("5")
    assert merge_key("all", {}) == key_digest("all")
    with pytest.raises(Invalid) as caught:
        merge_key("${a}-${b}", {"b": 1})
    assert [f for f, _ in caught.value.errors] == ["data.a"]


@pytest.mark.parametrize(
    ("template", "ok"),
    [
        ("${post.id}", True),
        ("${post.id}:${kind | default('x')}", True),
        ("constant", True),
        ("${post.id", False),
        ("${recipient.id}", False),
        ("{% for i in range(10**9) %}{% endfor %}", False),
    ],
)
def test_key_templates_checked_when_the_type_is_saved(template: str, ok: bool) -> None:
    assert (key_problem(template) is None) == ok


def test_an_item_keeps_an_actors_plain_fields_only() -> None:
    hostile = {"id": "u1", "name": "张三", "avatar": "https://x/a.png", "bio": "x" * 5000, "deep": {"a": [1] * 10**4}}
    hostile.update({f"k{i}": i for i in range(50)})
    [kept] = merge_actors(None, hostile)
    assert kept == {"id": "u1", "name": "张三", "avatar": "https://x/a.png", **{f"k{i}": i for i in range(7)}}
    assert merge_actors([kept], {"id": "u1", "name": "新名字"}) == [{"id": "u1", "name": "新名字"}]
