"""The pure rules of direct messages: the conversation's name, what a message may be, the summary."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from herald.core.direct import SUMMARY_CHARS, display_name, message_problems, pair, summary

ids = st.text(min_size=1, max_size=20)


@given(a=ids, b=ids)
def test_a_conversation_has_one_name_whoever_writes(a: str, b: str) -> None:
    assert pair(a, b) == pair(b, a)
    assert sorted(pair(a, b)) == list(pair(a, b)) and set(pair(a, b)) == {a, b}


def fields(problems: list[tuple[str, str]]) -> list[str]:
    return [field for field, _ in problems]


def test_what_a_message_may_be() -> None:
    assert message_problems("alice", "bob", "hi", max_chars=10) == []
    assert fields(message_problems("alice", "alice", "hi", max_chars=10)) == ["to"]
    assert fields(message_problems("alice", "bob", "", max_chars=10)) == ["body"]
    assert fields(message_problems("alice", "bob", " \n\u3000", max_chars=10)) == ["body"]  # ideographic space too
    assert fields(message_problems("alice", "bob", "a\x00", max_chars=10)) == ["body"]
    assert fields(message_problems("alice", "bob", "a\udc00", max_chars=10)) == ["body"]
    assert fields(message_problems("alice", "alice", "", max_chars=10)) == ["to", "body"]  # every problem at once


@given(body=st.text(min_size=1, max_size=30).filter(str.strip), limit=st.integers(1, 30))
def test_the_limit_counts_characters_not_bytes(body: str, limit: int) -> None:
    problems = message_problems("a", "b", body, max_chars=limit)
    if "\x00" in body:
        assert fields(problems) == ["body"]
    else:
        assert (problems == []) == (len(body) <= limit)
        if problems:
            assert f"at most {limit}" in problems[0][1]


@given(body=st.text(max_size=400), limit=st.integers(2, 200))
def test_the_summary_is_one_line_within_the_limit(body: str, limit: int) -> None:
    line = summary(body, limit)
    assert len(line) <= limit
    assert "\n" not in line and "\r" not in line and line == line.strip()
    words = " ".join(body.split())
    if len(words) <= limit:
        assert line == words
    else:
        assert line.endswith("…") and words.startswith(line[:-1])


def test_the_summary_default_length() -> None:
    assert len(summary("字" * 1000)) == SUMMARY_CHARS


def test_the_sender_is_named_by_name_else_id() -> None:
    assert display_name("u1", "张三") == "张三"
    assert display_name("u1", "  ") == "u1"
    assert display_name("u1", None) == "u1"
