"""One-click unsubscribe links (RFC 8058): signed URLs that turn one type off on one channel for one user.

``https://<HERALD_PUBLIC_URL>/unsubscribe/<token>``, the token being the user id, the type key and
the channel (base64url JSON) and an HMAC-SHA256 over them with a key derived from
HERALD_SECRET_KEY. It works without login, and only for what it names: changing any part of it
breaks the signature. It does not expire: a link in an old email keeps working, and all it can do
is turn off what it names for the user it was sent to.

The email channel puts it in ``List-Unsubscribe`` with ``List-Unsubscribe-Post:
List-Unsubscribe=One-Click``; a mail provider then POSTs to it (api/unsubscribe.py), and a person
who opens it gets a page whose button POSTs. A GET changes nothing (mail scanners fetch links).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

PATH = "/unsubscribe/"
MAX_TOKEN_LENGTH = 2000
_CONTEXT = b"herald one-click unsubscribe v1"
_SIGNATURE_BYTES = 16


@dataclass(frozen=True)
class Unsubscribe:
    """What a link turns off: ``type_key`` on ``channel`` for ``user_id``."""

    user_id: str
    type_key: str
    channel: str


def _key(secret: str) -> bytes:
    # its own key: a token of this kind can never pass for another signature made with the secret
    return hmac.new(secret.encode(), _CONTEXT, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, target: Unsubscribe) -> str:
    payload = _b64(json.dumps([target.user_id, target.type_key, target.channel], separators=(",", ":")).encode())
    signature = hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return f"{payload}.{_b64(signature)}"


def verify(secret: str, token: str) -> Unsubscribe | None:
    """What ``token`` names, if Herald signed it with ``secret``; None for anything else."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1 or not token.isascii():
        return None
    payload, _, signature = token.partition(".")
    expected = hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    try:
        if not hmac.compare_digest(_unb64(signature), expected):
            return None
        values = json.loads(_unb64(payload))
    except (ValueError, binascii.Error):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    if not (isinstance(values, list) and len(values) == 3 and all(isinstance(v, str) and v for v in values)):
        return None
    return Unsubscribe(*values)


@dataclass(frozen=True)
class UnsubscribeLinks:
    """Makes the links, for the worker (``pipeline.build``); None when HERALD_PUBLIC_URL is unset."""

    secret: str
    public_url: str

    def url(self, user_id: str, type_key: str, channel: str) -> str:
        return f"{self.public_url}{PATH}{sign(self.secret, Unsubscribe(user_id, type_key, channel))}"
