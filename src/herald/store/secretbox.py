"""Secrets at rest: Fernet with a key derived (HKDF-SHA256) from HERALD_SECRET_KEY.

cryptography (~7 MiB) is imported and the key derived on the first seal or open: a server with no
channel account and no event webhook never needs them.
"""

from __future__ import annotations

import base64
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


class SecretBox:
    def __init__(self, secret_key: str, purpose: bytes = b"herald/channel-accounts/v1") -> None:
        self._secret_key = secret_key
        self._purpose = purpose

    @cached_property
    def _fernet(self) -> Fernet:
        from cryptography.fernet import Fernet  # on first use (see the module's docstring)
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=self._purpose)
        return Fernet(base64.urlsafe_b64encode(hkdf.derive(self._secret_key.encode())))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret could not be decrypted: was HERALD_SECRET_KEY changed?") from exc
