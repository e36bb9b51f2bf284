"""The hub: streams per user, events waiting per stream, slow clients turned into replays."""

from __future__ import annotations

import asyncio
import time

import pytest

from herald.realtime.hub import Event, Hub, TooManyStreams
from herald.realtime.ids import event_id_time, new_event_id


def event(name: str, data: str = "{}") -> Event:
    return Event(new_event_id(), name, data)


def test_an_event_reaches_every_stream_of_its_user_and_no_other() -> None:
    hub = Hub()
    a1, a2, b = hub.open("a"), hub.open("a"), hub.open("b")
    hub.push("a", event("inbox.new"))
    hub.push("nobody", event("inbox.new"))
    assert [e.name for e in a1.take()] == ["inbox.new"]
    assert [e.name for e in a2.take()] == ["inbox.new"]
    assert b.take() == []
    assert sorted(hub.users()) == ["a", "b"] and len(hub) == 3
    assert hub.local(["b", "x", "a", "b"]) == ["b", "a"]
    hub.close(a1)
    hub.close(a2)
    assert sorted(hub.users()) == ["b"] and len(hub) == 1


def test_only_the_last_of_several_waiting_counts_is_sent() -> None:
    stream = Hub().open("a")
    for name, data in [("counts", '{"total":1}'), ("inbox.new", "{}"), ("counts", '{"total":2}'), ("heartbeat", "{}")]:
        stream.push(event(name, data))
    assert [(e.name, e.data) for e in stream.take()] == [
        ("inbox.new", "{}"),
        ("counts", '{"total":2}'),
        ("heartbeat", "{}"),
    ]


def test_a_client_too_far_behind_replays_instead_of_buffering_without_end() -> None:
    stream = Hub(max_pending=3).open("a")
    first = event("inbox.new")
    stream.push(first)
    for _ in range(2):
        stream.push(event("inbox.new"))
    assert stream.resync_since is None
    stream.push(event("inbox.new"))  # the fourth: the queue goes, a replay since the oldest comes
    assert stream.take() == []
    assert stream.resync_since == event_id_time(first.id)
    assert not stream.closed


def test_a_user_may_hold_only_so_many_streams() -> None:
    hub = Hub(max_streams_per_user=2)
    hub.open("a")
    second = hub.open("a")
    with pytest.raises(TooManyStreams):
        hub.open("a")
    hub.close(second)
    hub.open("a")
    hub.open("b")  # another user is not affected


async def test_wait_returns_on_an_event_or_after_its_time() -> None:
    stream = Hub().open("a")
    started = time.monotonic()
    await stream.wait(0.05)
    assert 0.04 <= time.monotonic() - started < 1

    async def later() -> None:
        await asyncio.sleep(0.05)
        stream.push(event("inbox.new"))

    task = asyncio.create_task(later())
    started = time.monotonic()
    await stream.wait(10)
    assert time.monotonic() - started < 1 and stream.ready
    await task


def test_wire_forms() -> None:
    e = Event("evt_1", "counts", '{"total":1}')
    assert e.sse() == b'id: evt_1\nevent: counts\ndata: {"total":1}\n\n'
    assert e.json() == '{"id":"evt_1","event":"counts","data":{"total":1}}'
    no_id = Event("", "heartbeat", "{}")  # leaves the client's last event id as it was
    assert no_id.sse() == b"event: heartbeat\ndata: {}\n\n"
    assert no_id.json() == '{"id":null,"event":"heartbeat","data":{}}'
