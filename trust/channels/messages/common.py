"""Pieces shared by the messages that carry an identity: a change history kept with its exact
bytes (verification caches key on them) and a list of credentials."""

from __future__ import annotations

from typing import Final

from trust.errors import DecodeError
from trust.models.cbor import Reader, head
from trust.models.change_history import ChangeHistory
from trust.models.credential import CredentialAndPurposeKey

__all__ = ["MAX_CREDENTIALS", "encode_credentials", "read_change_history", "read_credentials"]

MAX_CREDENTIALS: Final = 64
"""Credentials one message may carry (Ockam sends zero or one)."""


def read_change_history(r: Reader, field: str) -> tuple[ChangeHistory, bytes]:
    """An embedded change history, decoded strictly, and its exact bytes."""
    start = r.pos
    history = ChangeHistory.read(r, field)
    return history, bytes(r.data[start : r.pos])


def read_credentials(r: Reader, field: str) -> tuple[CredentialAndPurposeKey, ...]:
    n = r.array(field)
    if n > MAX_CREDENTIALS:
        raise DecodeError(f"{n} credentials is more than the {MAX_CREDENTIALS} allowed", field=field)
    return tuple(CredentialAndPurposeKey.read(r, f"{field}[{i}]") for i in range(n))


def encode_credentials(credentials: tuple[CredentialAndPurposeKey, ...]) -> bytes:
    return head(4, len(credentials)) + b"".join(c.encode() for c in credentials)
