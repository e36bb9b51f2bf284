"""Apprise (https://github.com/caronc/apprise): one channel that reaches every service Apprise knows.

Each account holds Apprise URLs (``tgram://…``, ``slack://…``, ``bark://…``, ``json://…``); a send
notifies all of them. Apprise's ``notify`` is synchronous, so it runs in a worker thread. Apprise only
answers success or failure, so a failure is always retryable.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from herald.channels.base import Channel, ChannelSettings, OutboundMessage, SendResult
from herald.core.errors import RetryableError, TerminalError


class AppriseSettings(ChannelSettings):
    urls: list[SecretStr] = Field(
        min_length=1,
        description="Apprise URLs, e.g. tgram://bottoken/ChatID or slack://TokenA/TokenB/TokenC; write-only.",
    )

    @field_validator("urls")
    @classmethod
    def _apprise_urls(cls, value: list[SecretStr]) -> list[SecretStr]:
        for index, url in enumerate(value):
            # Never echo the URL: it holds the service's credentials.
            import apprise  # imported on first use: it loads 100+ plugins

            if apprise.Apprise.instantiate(url.get_secret_value()) is None:
                raise ValueError(f"urls[{index}] is not a URL any installed Apprise service accepts")
        return value


class AppriseTemplate(BaseModel):
    """The ``apprise`` template of a notification type; every string may use ``${var}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    title: str = Field("", description="Notification title (services without titles prepend it to the body).")
    body: str = Field(min_length=1, validation_alias=AliasChoices("body", "text"), description="Notification body.")
    notify_type: Literal["info", "success", "warning", "failure"] = Field(
        "info", description="Apprise notification type (decides the icon/colour on services that show one)."
    )
    body_format: Literal["text", "markdown", "html"] | None = Field(
        None, description="How the body is written; Apprise converts it for each service. Default: as-is."
    )


class AppriseChannel(Channel):
    name = "apprise"
    title = "Apprise (Slack, Telegram, Bark, ServerChan, …)"
    Settings = AppriseSettings
    Template = AppriseTemplate

    async def send(self, message: OutboundMessage, settings: AppriseSettings) -> SendResult:
        template = parse_template(message.content)
        import apprise

        notifier = apprise.Apprise()
        for index, url in enumerate(settings.urls):
            if not notifier.add(url.get_secret_value()):
                raise TerminalError(f"urls[{index}] is not a URL any installed Apprise service accepts")
        try:
            result = await asyncio.to_thread(
                notifier.notify,
                body=template.body,
                title=template.title,
                notify_type=template.notify_type,
                body_format=template.body_format,
            )
        except Exception as exc:  # a plugin's own bug; Apprise catches most, and gives no classification
            raise RetryableError(f"apprise raised {type(exc).__name__}: {exc}") from exc
        if not result:
            raise RetryableError(f"apprise could not notify every URL ({len(settings.urls)} configured)")
        return SendResult(detail=f"notified {len(settings.urls)} URL(s)")


def parse_template(content: dict[str, object]) -> AppriseTemplate:
    known = {k: v for k, v in content.items() if k in AppriseTemplate.model_fields or k == "text"}
    try:
        return AppriseTemplate.model_validate(known)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise TerminalError(f"apprise template is invalid: {where + ': ' if where else ''}{error['msg']}") from exc
