"""AppriseChannel through the real Apprise library, posting via its generic ``json://`` service to loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from herald.channels import CHANNELS
from herald.channels.apprise_channel import AppriseChannel, AppriseSettings, AppriseTemplate
from herald.channels.base import ChannelSettings, OutboundMessage
from herald.core.errors import RetryableError, TerminalError
from tests.channels.fakes_robots import FakeRobot, running_robot


@pytest.fixture(scope="module")
def receiver_server(port_factory: Callable[[], int]) -> Iterator[tuple[FakeRobot, int]]:
    port = port_factory()
    with running_robot(port, {}) as (robot, _):
        yield robot, port


@pytest.fixture
def receiver(receiver_server: tuple[FakeRobot, int]) -> FakeRobot:
    receiver_server[0].reset({})
    return receiver_server[0]


@pytest.fixture
def json_url(receiver_server: tuple[FakeRobot, int]) -> str:
    return f"json://127.0.0.1:{receiver_server[1]}/hooks/apprise"


def settings(*urls: str) -> AppriseSettings:
    return AppriseSettings.model_validate({"urls": list(urls)})


def test_registered_as_apprise() -> None:
    assert CHANNELS["apprise"] is AppriseChannel
    assert AppriseChannel.Template is AppriseTemplate
    assert AppriseChannel.rate_limit is None


async def test_notifies_a_json_url_with_title_and_body(
    receiver: FakeRobot, json_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    content = {"title": "充值成功", "body": "您已成功充值 100.00 元。", "notify_type": "success"}

    result = await AppriseChannel().send(make_message(content=content), settings(json_url))

    assert result.detail == "notified 1 URL(s)"
    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/apprise")
    assert request.headers["content-type"].startswith("application/json")
    payload = request.json()
    assert (payload["title"], payload["message"], payload["type"]) == (
        "充值成功",
        "您已成功充值 100.00 元。",
        "success",
    )


async def test_every_url_is_notified(
    receiver: FakeRobot, json_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    await AppriseChannel().send(make_message(), settings(json_url, json_url.replace("/hooks/apprise", "/second")))

    assert sorted(r.path for r in receiver.requests) == ["/hooks/apprise", "/second"]


async def test_a_failing_service_is_retryable(
    receiver: FakeRobot, json_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    receiver.status = 500

    with pytest.raises(RetryableError):
        await AppriseChannel().send(make_message(), settings(json_url))


async def test_an_unreachable_url_is_retryable(
    port_factory: Callable[[], int], make_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(RetryableError):
        await AppriseChannel().send(make_message(), settings(f"json://127.0.0.1:{port_factory()}/nobody"))


async def test_a_template_without_a_body_is_terminal(
    json_url: str, make_message: Callable[..., OutboundMessage]
) -> None:
    with pytest.raises(TerminalError, match="template"):
        await AppriseChannel().send(make_message(content={"title": "only a title"}), settings(json_url))


@pytest.mark.parametrize("urls", [[], ["not a url"], ["nosuchservice://token"]])
def test_settings_refuse_what_apprise_cannot_load(urls: list[str]) -> None:
    with pytest.raises(ValidationError):
        AppriseSettings.model_validate({"urls": urls})


def test_urls_are_masked_on_read() -> None:
    secret_url = "tgram://123456789:AAHsecretbottoken/-100222333"
    parsed = settings(secret_url, "json://127.0.0.1:8080/hook")

    assert all(isinstance(url, SecretStr) for url in parsed.urls)
    assert secret_url not in parsed.model_dump_json()
    assert secret_url not in repr(parsed)
    assert parsed.model_dump(mode="json") == {"urls": ["**********", "**********"]}
    assert parsed.urls[0].get_secret_value() == secret_url


def test_urls_are_listed_as_secret_fields() -> None:
    assert AppriseSettings.secret_fields() == ["urls"]
    assert issubclass(AppriseSettings, ChannelSettings)


@pytest.mark.parametrize(
    "fields",
    [{"title": "t"}, {"body": ""}, {"body": "x", "notify_type": "critical"}, {"body": "x", "body_format": "rtf"}],
)
def test_template_validation(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AppriseTemplate.model_validate(fields)


def test_settings_schema_is_served() -> None:
    schema = AppriseSettings.model_json_schema()

    assert schema["properties"]["urls"]["type"] == "array"
    assert json.dumps(schema)
