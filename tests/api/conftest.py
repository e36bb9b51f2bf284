"""Fixtures shared by the API tests."""

from __future__ import annotations

import pytest

from tests.api.test_accounts import ALIYUN, TENCENT, put_account
from tests.conftest import Harness


@pytest.fixture
async def routing_accounts(harness: Harness) -> None:
    """Accounts of both SMS providers (``sms-a``, ``sms-t``) and two webhooks (``hook``, ``hook2``)."""
    for name, channel, config in [
        ("sms-a", "sms_aliyun", ALIYUN),
        ("sms-t", "sms_tencent", TENCENT),
        ("hook", "webhook", {"url": "http://127.0.0.1:9/h", "secret": "x"}),
        ("hook2", "webhook", {"url": "http://127.0.0.1:9/h2", "secret": "x"}),
    ]:
        r = await put_account(harness, name, channel, config)
        assert r.status_code == 200, r.text
