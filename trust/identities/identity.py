"""Identity = a verified change history (spec §5), and comparison of two histories.

Verification checks structure and signatures, never the clock (as Ockam). Verified histories can
be cached by their bytes (:func:`verify_change_history` with ``cache=True``): a warm lookup costs a
dictionary access; the cold path decodes the keys from the history every time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from trust.errors import DecodeError, VerificationError
from trust.models.change_history import Change, ChangeHistory
from trust.models.memo import BoundedCache, CacheInfo, decoded_size
from trust.models.primitives import PublicKey, identifier_from_text, identifier_text
from vaults.verify import verify_signature


class Comparison(enum.Enum):
    """How one history relates to another (``a.compare(b)`` says what ``a`` is to ``b``)."""

    EQUAL = "equal"
    NEWER = "newer"
    OLDER = "older"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Identity:
    """A verified change history. Build with :meth:`from_bytes` / :func:`verify_change_history`."""

    change_history: ChangeHistory
    raw: bytes

    @property
    def identifier_bytes(self) -> bytes:
        return self.change_history.identifier

    @property
    def identifier(self) -> str:
        """``I`` + 64 lowercase hex digits."""
        return identifier_text(self.change_history.identifier)

    @property
    def changes(self) -> tuple[Change, ...]:
        return self.change_history.changes

    @property
    def latest_change(self) -> Change:
        return self.change_history.changes[-1]

    @property
    def latest_change_hash(self) -> bytes:
        return self.change_history.changes[-1].change_hash

    @property
    def latest_public_key(self) -> PublicKey:
        return self.change_history.changes[-1].primary_public_key

    def change_index(self, change_hash: bytes) -> int | None:
        for i, c in enumerate(self.change_history.changes):
            if c.change_hash == change_hash:
                return i
        return None

    def export(self) -> bytes:
        """The change history bytes (exactly as received or created)."""
        return self.raw

    def export_hex(self) -> str:
        return self.raw.hex()

    def compare(self, known: Identity) -> Comparison:
        """What this identity is relative to ``known`` (Ockam's ``Identity::compare``)."""
        mine, theirs = self.changes, known.changes
        for a, b in zip(mine, theirs, strict=False):
            if a.change_hash != b.change_hash:
                return Comparison.CONFLICT
        if len(mine) < len(theirs):
            return Comparison.OLDER
        if len(mine) == len(theirs):
            return Comparison.EQUAL
        return Comparison.NEWER

    @classmethod
    def from_bytes(cls, data: bytes, *, expected_identifier: str | bytes | None = None,
                   cache: bool = False) -> Identity:
        return verify_change_history(data, expected_identifier=expected_identifier, cache=cache)

    @classmethod
    def from_hex(cls, text: str, **kw: object) -> Identity:
        try:
            data = bytes.fromhex(text.strip())
        except ValueError:
            raise DecodeError("not a hex string", field="change_history") from None
        return verify_change_history(data, **kw)  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and self.raw == other.raw

    def __hash__(self) -> int:
        return hash(self.raw)


_CACHE: BoundedCache[bytes, Identity] = BoundedCache(
    "identities.verified_histories", 32 * 1024 * 1024, max_entry=8 * 1024 * 1024)
"""Verified identities by their bytes, bounded by the accounted bytes they hold."""


def clear_cache() -> None:
    _CACHE.clear()


def cache_info() -> CacheInfo:
    """Entries and accounted bytes of the verified-history cache."""
    return _CACHE.info()


def verify_change_history(data: bytes, *, expected_identifier: str | bytes | None = None,
                          cache: bool = False, decoded: ChangeHistory | None = None) -> Identity:
    """Decode and verify a change history (spec §5); raise DecodeError or VerificationError.

    ``decoded``: the history a decoder already made of exactly ``data`` (e.g.
    :attr:`~trust.channels.messages.IdentityAndCredentials.change_history`, decoded with its
    message): it is verified as it is, without decoding ``data`` again. Every signature is
    checked either way."""
    data = bytes(data)
    identity = _CACHE.get(data) if cache else None
    if identity is None:
        if decoded is None:
            history = ChangeHistory.decode(data)
        elif isinstance(decoded, ChangeHistory):
            history = decoded
        else:
            raise TypeError("decoded must be the ChangeHistory decoded from data")
        _verify(history)
        identity = Identity(history, data)
        if cache:
            _CACHE.put(data, identity, decoded_size(data))
    if expected_identifier is not None:
        want = (identifier_from_text(expected_identifier)
                if isinstance(expected_identifier, str) else expected_identifier)
        if identity.identifier_bytes != want:
            raise VerificationError(
                f"the history is of {identity.identifier}, not of {identifier_text(want)}")
    return identity


def _verify(history: ChangeHistory) -> None:
    prev: Change | None = None
    for i, change in enumerate(history.changes):
        cd = change.change_data
        if prev is None:
            if cd.previous_change is not None:
                raise VerificationError("change 0 must not name a previous change")
        else:
            pcd = prev.change_data
            if cd.previous_change != prev.change_hash:
                raise VerificationError(f"change {i} does not follow change {i - 1}")
            if cd.attestations_valid_from < pcd.attestations_valid_from:
                raise VerificationError(
                    f"change {i} is valid from before change {i - 1} (timestamps go backwards)")
            if change.previous_signature is None:
                raise VerificationError(f"change {i} is not signed by the previous key")
            if change.previous_signature.key_type is not pcd.primary_public_key.key_type or \
                    not verify_signature(pcd.primary_public_key, change.change_hash,
                                         change.previous_signature.data):
                raise VerificationError(f"change {i}: invalid signature by the previous key")
        key = cd.primary_public_key
        if change.signature.key_type is not key.key_type or \
                not verify_signature(key, change.change_hash, change.signature.data):
            raise VerificationError(f"change {i}: invalid signature by its own key")
        prev = change
