"""herald.logs: once installed, no log record of the process carries a credential, whoever logs it."""

from __future__ import annotations

import logging
import string
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.core.urls import MASK
from herald.logs import RedactingFilter, install_redaction, redact

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSIsImV4cCI6OTk5OTk5OTk5OX0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
tokens = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=8, max_size=40).filter(
    lambda t: any(c.isdigit() for c in t) and any(c.isalpha() for c in t)
)


@pytest.fixture
def installed() -> Iterator[None]:
    before = logging.getLogRecordFactory()
    install_redaction()
    yield
    if not getattr(before, "herald_redacts", False):
        logging.setLogRecordFactory(before)


def test_httpx_request_lines_lose_query_values_and_hook_tokens(
    installed: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    url = httpx.URL("https://oapi.dingtalk.com/robot/send?access_token=abc123secret456&timestamp=1")
    logging.getLogger("httpx").info('HTTP Request: %s %s "%s %d %s"', "POST", url, "HTTP/1.1", 200, "OK")
    hook = "https://open.feishu.cn/open-apis/bot/v2/hook/7c1d2e3f-4a5b-46c7-8d9e-0f1a2b3c4d5e"
    logging.getLogger("httpx").info("HTTP Request: %s %s", "POST", hook)
    first, second = (r.getMessage() for r in caplog.records)
    sent = f"https://oapi.dingtalk.com/robot/send?access_token={MASK}&timestamp={MASK}"
    assert first == f'HTTP Request: POST {sent} "HTTP/1.1 200 OK"'
    assert second == f"HTTP Request: POST https://open.feishu.cn/open-apis/bot/v2/hook/{MASK}"


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_user_token_in_an_access_log_path_is_masked(installed: None) -> None:
    # uvicorn's access logger does not propagate, and its formatter unpacks record.args: they must
    # stay five values
    access = logging.getLogger("uvicorn.access")
    keep, level = Keep(), access.level
    access.addHandler(keep)
    access.setLevel(logging.INFO)
    try:
        args = ("127.0.0.1:5000", "GET", f"/v1/me/events?token={TOKEN}", "1.1", 200)
        access.info('%s - "%s %s HTTP/%s" %d', *args)
    finally:
        access.removeHandler(keep)
        access.setLevel(level)
    (record,) = keep.records
    assert isinstance(record.args, tuple) and len(record.args) == 5 and record.args[4] == 200
    assert TOKEN not in record.getMessage() and f"?token={MASK}" in record.getMessage()


def test_exception_text_and_bearer_headers_are_masked(installed: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    try:
        raise RuntimeError("POST https://hooks.example.com/x?sig=s3cr3tvalue failed")
    except RuntimeError:
        logging.getLogger("herald.test").exception("send failed with Authorization: Bearer %s", "hk_live_abcdef123456")
    (record,) = caplog.records
    text = logging.Formatter().format(record)
    assert "s3cr3tvalue" not in text and "hk_live_abcdef123456" not in text
    assert "send failed" in text and "RuntimeError" in text


def test_plain_messages_are_left_alone(installed: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    message = "claimed %d deliveries for ntf_01M8S8J1HQ1MSE3G4TF04YHX0Z in %.1f ms: INSERT INTO t VALUES (?, ?)"
    logging.getLogger("herald.test").debug(message, 3, 1.5)
    assert caplog.records[0].getMessage() == message % (3, 1.5)


def test_install_is_idempotent_and_quiets_the_sql_parameter_dump(installed: None) -> None:
    factory = logging.getLogRecordFactory()
    install_redaction()
    assert logging.getLogRecordFactory() is factory
    assert not logging.getLogger("aiosqlite").isEnabledFor(logging.DEBUG)


def test_the_filter_form_redacts_too() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "GET %s", ("https://a.example/?key=k3yk3yk3y",), None)
    assert RedactingFilter().filter(record) and "k3yk3yk3y" not in record.getMessage()


@given(token=tokens, host=st.sampled_from(["example.com", "127.0.0.1:8080", "[::1]"]))
def test_tokens_in_a_url_never_survive(token: str, host: str) -> None:
    for url in (
        f"https://{host}/send?access_token={token}",
        f"https://{host}/send?a=1&key={token}#x",
        f"https://user:{token}@{host}/hooks",
        f"https://{token}@{host}/",
        f"https://{host}/open-apis/bot/v2/hook/{token}",
        f"https://{host}/api/webhooks/123/{token}",
    ):
        line = redact(f"HTTP Request: POST {url} 200")
        assert token not in line, (url, line)
        assert redact(line) == line  # idempotent
