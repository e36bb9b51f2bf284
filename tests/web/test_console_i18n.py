"""The console's catalogues: the same keys in both, the same {fields} in each message, and the
locale chosen from the cookie, then Accept-Language, then the server's default."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.core.console import Role
from herald.core.enums import DeliveryStatus
from herald.web.console.i18n import EN, LOCALES, MESSAGES, ZH, Translator, from_accept_language
from herald.web.console.nav import NAV


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_catalogues_hold_the_same_keys_and_fields() -> None:
    assert set(EN) == set(ZH)
    for key in EN:
        assert fields(EN[key]) == fields(ZH[key]), key
        assert ZH[key].strip() and EN[key].strip(), key
    assert set(MESSAGES) == set(LOCALES)


def test_every_template_key_and_nav_entry_is_in_the_catalogue() -> None:
    from importlib.resources import files

    used: set[str] = {f"nav.{item.key}" for item in NAV}
    for template in files("herald.web").joinpath("templates", "console").iterdir():
        text = template.read_text(encoding="utf-8")
        used |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']\s*[,)]""", text))  # t("key") and t("key", …)
    # keys built from a value (t("status." ~ status)): the values they are built from are all there
    used |= {f"role.{r.value}" for r in Role} | {f"lang.{code}" for code in LOCALES}
    used |= {f"status.{s.value}" for s in DeliveryStatus}
    assert used - set(EN) == set()


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9,en;q=0.5,zh;q=0.4", "en"),
        ("fr, de", None),
        ("en;q=0.2, zh;q=0.8", "zh-CN"),
        ("zh;q=0, en", "en"),
        ("", None),
    ],
)
def test_the_browsers_language(header: str, locale: str | None) -> None:
    assert from_accept_language(header) == locale


@given(st.text(max_size=300))
def test_any_accept_language_header_gives_a_supported_locale_or_none(header: str) -> None:
    assert from_accept_language(header) in (None, *LOCALES)


def test_a_missing_key_falls_back_to_english_then_to_the_key() -> None:
    t = Translator("zh-CN")
    assert t("nav.dashboard") == "概览"
    assert t("no.such.key") == "no.such.key"
    assert Translator("fr").locale == "en"
    assert t("login.throttled", minutes=3) == "登录失败次数过多，请 3 分钟后再试。"
