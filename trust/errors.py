"""The error hierarchy of truststack. Catch :class:`TrustError`, :class:`VaultError` and
:class:`PolicyError` (re-exported here) to handle everything the toolkit raises on purpose."""

from __future__ import annotations

from policies.errors import PolicyError
from vaults.errors import VaultError

__all__ = [
    "ConflictError",
    "DecodeError",
    "MissingExtraError",
    "NotFoundError",
    "PolicyError",
    "RemoteProtocolError",
    "StorageError",
    "TrustError",
    "UntrustedError",
    "UsageError",
    "VaultError",
    "VerificationError",
]


class TrustError(Exception):
    """Base class of the errors raised by the trust/ package."""


class DecodeError(TrustError):
    """Malformed bytes. ``field`` names the part of the object that was wrong and ``offset``,
    when known, the byte (from the start of the input) where the problem is."""

    def __init__(self, message: str, *, field: str | None = None,
                 offset: int | None = None) -> None:
        self.field = field
        self.message = message
        self.offset = offset
        text = f"{field}: {message}" if field else message
        super().__init__(text if offset is None else f"{text} (at byte {offset})")


class VerificationError(TrustError):
    """A signature, chain, time window or key did not verify."""


class UntrustedError(TrustError):
    """Valid, but not allowed (unknown authority, wrong subject, denied by policy)."""


class NotFoundError(TrustError):
    """A named thing (identity, vault, node, policy) does not exist."""


class ConflictError(TrustError):
    """The operation conflicts with stored state (name taken, conflicting or older history)."""


class StorageError(TrustError):
    """The state database could not be read or written."""


class RemoteProtocolError(TrustError):
    """The peer misbehaved (malformed frame, unexpected message)."""


class UsageError(TrustError):
    """The caller did something wrong (bad argument, missing option). The CLI exits 2."""


class MissingExtraError(UsageError):
    """An optional dependency is not installed; the message names the extra that provides it."""

    def __init__(self, feature: str, extra: str) -> None:
        self.feature = feature
        self.extra = extra
        super().__init__(f"{feature} needs the optional dependencies of the '{extra}' extra: "
                         f"pip install 'truststack[{extra}]'")
