"""``SecureChannelMessage::RefreshCredentials`` = ``[1, [RefreshCredentialsMessage]]`` with
``RefreshCredentialsMessage = [change_history, [* CredentialAndPurposeKey]]`` (wire spec §4.2,
§4.3): new credentials over an open channel. The receiver checks the history against the peer it
knows (no attestation, no trust policy) and verifies the credentials."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Final

from trust.channels.messages.common import encode_credentials, read_change_history, read_credentials
from trust.errors import DecodeError, UsageError
from trust.models.cbor import Reader
from trust.models.change_history import ChangeHistory
from trust.models.credential import CredentialAndPurposeKey

__all__ = ["REFRESH_CREDENTIALS_VARIANT", "RefreshCredentials"]

REFRESH_CREDENTIALS_VARIANT: Final = 1


@dataclass(frozen=True)
class RefreshCredentials:
    change_history_raw: bytes
    credentials: tuple[CredentialAndPurposeKey, ...] = ()
    change_history: ChangeHistory = field(init=False, compare=False, repr=False)
    variant: ClassVar[int] = REFRESH_CREDENTIALS_VARIANT

    def __post_init__(self) -> None:
        try:
            history = ChangeHistory.decode(self.change_history_raw)
        except DecodeError as e:
            raise UsageError(f"not a valid change history: {e}") from None
        object.__setattr__(self, "change_history", history)
        object.__setattr__(self, "credentials", tuple(self.credentials))

    def encode_message(self) -> bytes:
        """The ``SecureChannelMessage`` item."""
        return (b"\x82\x01\x81\x82" + self.change_history_raw
                + encode_credentials(self.credentials))

    def encode(self, padding: bytes = b"") -> bytes:
        from trust.channels.messages.padded import pad

        return pad(self.encode_message(), padding)

    @classmethod
    def read_fields(cls, r: Reader, field: str = "refresh_credentials") -> RefreshCredentials:
        """Read the fields array (after the variant index)."""
        r.array(field, 1)
        r.array(f"{field}.message", 2)
        history, raw = read_change_history(r, f"{field}.change_history")
        credentials = read_credentials(r, f"{field}.credentials")
        value = object.__new__(cls)
        object.__setattr__(value, "change_history_raw", raw)
        object.__setattr__(value, "credentials", credentials)
        object.__setattr__(value, "change_history", history)
        return value
