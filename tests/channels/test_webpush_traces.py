"""A Web Push endpoint is a capability URL: a failed send's trace (read through the API as
``last_error``) names the push service, never the endpoint's token."""

from __future__ import annotations

import pytest

from herald.channels.webpush import Outcome, WebPushTerminalError, summarize

TOKEN = "dXk3abc:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx3j8v"


def test_the_token_of_a_failed_endpoint_is_not_in_the_error() -> None:
    endpoint = f"https://fcm.googleapis.com/fcm/send/{TOKEN}"
    with pytest.raises(WebPushTerminalError) as raised:
        summarize([Outcome(endpoint, "failed", "HTTP 400: bad", 400)])
    message = str(raised.value)
    assert "fcm.googleapis.com" in message and TOKEN[:4] not in message
