"""What the HTTP provider channels share (channels/_http.py): JSON bodies and Retry-After."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from herald.channels._http import HttpChannel, encode_json_body, parse_retry_after
from herald.channels.base import OutboundMessage, SendResult
from herald.core.backoff import MAX_RETRY_AFTER_SECONDS
from herald.core.errors import TerminalError

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


# -- Retry-After ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("7", 7.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("120", 120.0),
        (str(MAX_RETRY_AFTER_SECONDS + 1), MAX_RETRY_AFTER_SECONDS),  # clamped to the ceiling
        ("999999999999", MAX_RETRY_AFTER_SECONDS),
        ("9" * 400, MAX_RETRY_AFTER_SECONDS),  # a float of inf, still the ceiling
        ("-5", None),
        ("-0", None),
        ("+5", None),
        ("nan", None),
        ("NaN", None),
        ("inf", None),
        ("-inf", None),
        ("Infinity", None),
        ("1e9", None),
        ("0x10", None),
        ("²", None),  # a digit to str.isdigit, not to float
        ("١٢", None),  # Arabic-Indic digits are not delta-seconds
        ("soon", None),
        ("7 seconds", None),
        ("120, 120", None),  # a repeated header, joined
        ("Sun, 01 Jun 2025 12:01:00 GMT", 60.0),
        ("Sun, 01 Jun 2025 14:01:00 +0200", 60.0),
        ("Sun, 01 Jun 2025 11:00:00 GMT", 0.0),  # in the past: retry now, never negative
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER_SECONDS),  # far future: the ceiling
        ("Mon, 01 Jan 0001 00:00:00 GMT", 0.0),
        ("Wed, 21 Oct 99999 07:28:00 GMT", None),
        ("Wed, 32 Oct 2015 07:28:00 GMT", None),
        ("Wed, 21 Oct 2015 07:28:00 +9999", None),
        ("Wed, 21 Oct 2015 25:61:61 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_defaults_to_the_clock() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    seconds = parse_retry_after(later)
    assert seconds is not None and 110 <= seconds <= 120


def _http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


@given(
    st.one_of(
        st.text(),
        st.text(alphabet="0123456789.-+eE ,:GMTinfa"),
        st.integers().map(str),
        st.floats().map(str),
        st.datetimes(timezones=st.just(UTC)).map(_http_date),
        st.datetimes(timezones=st.just(UTC)).map(_http_date).map(lambda d: d.replace("GMT", "-0000")),
    )
)
@example("1" + "0" * 5000)
@example("Fri, 31 Dec 9999 23:59:59 -2359")
@example("Mon, 01 Jan 0001 00:00:00 +2359")
@example("\x00")
@example("\ud800")
def test_parse_retry_after_never_raises_and_stays_in_bounds(value: str) -> None:
    seconds = parse_retry_after(value, now=NOW)
    assert seconds is None or (math.isfinite(seconds) and 0 <= seconds <= MAX_RETRY_AFTER_SECONDS)


# -- JSON bodies ----------------------------------------------------------------------------------


def test_encode_json_body_is_utf8_not_escaped() -> None:
    assert encode_json_body({"标题": "充值成功"}) == '{"标题": "充值成功"}'.encode()
    assert encode_json_body({"a": [1, 2]}, separators=(",", ":")) == b'{"a":[1,2]}'
    assert encode_json_body({"at": NOW}, default=str) == b'{"at": "2025-06-01 12:00:00+00:00"}'


@pytest.mark.parametrize("bad", ["\ud800", "ok \udfff", "\ud83d"])  # lone surrogates, high and low
def test_a_payload_with_no_utf8_form_is_terminal(bad: str) -> None:
    with pytest.raises(TerminalError, match="payload is not valid UTF-8") as raised:
        encode_json_body({"content": {"title": "充值", "body": bad}})
    assert repr(bad.strip("ok ")) in raised.value.message  # says which character
    raised.value.message.encode()  # and the message itself can be stored and logged


class _Probe(HttpChannel):
    name = "probe"

    async def send(self, message: OutboundMessage, settings: Any) -> SendResult:
        raise NotImplementedError


@pytest.fixture
async def probe() -> AsyncIterator[tuple[_Probe, list[httpx.Request]]]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"errcode": 0})

    channel = _Probe()
    channel._client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    yield channel, seen
    await channel.aclose()


async def test_post_json_sends_utf8_json(probe: tuple[_Probe, list[httpx.Request]]) -> None:
    channel, seen = probe
    response = await channel.post_json("http://provider.test/send", {"text": "充值成功"}, timeout=5)
    assert response.status_code == 200
    [request] = seen
    assert json.loads(request.content) == {"text": "充值成功"}
    assert "充值成功".encode() in request.content
    assert request.headers["content-type"] == "application/json; charset=utf-8"


async def test_post_json_refuses_a_lone_surrogate_before_sending(probe: tuple[_Probe, list[httpx.Request]]) -> None:
    channel, seen = probe
    with pytest.raises(TerminalError, match="payload is not valid UTF-8"):
        await channel.post_json("http://provider.test/send", {"text": "bad \ud800"}, timeout=5)
    assert seen == []
