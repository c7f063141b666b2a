"""Typed node-local information that a secure channel attaches to the messages it decrypts.

A decryptor adds one :class:`SecureChannelLocalInfo` to every message it delivers (it is never
sent on the wire). Access controls and workers read it with :func:`channel_info`; a message
that did not come out of a channel has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from trust.routing import Address

if TYPE_CHECKING:
    from trust.channels.peer import VerifiedPeer
    from trust.routing import LocalMessage

__all__ = ["SecureChannelLocalInfo", "channel_info"]


@dataclass(frozen=True, slots=True)
class SecureChannelLocalInfo:
    """Which channel a message came out of, and who is at its other end (verified)."""

    type_identifier: ClassVar[str] = "secure_channel_identifier"
    """Ockam's local-info type name for the same information."""

    channel: Address
    """The address of the channel (its decryptor's API address) on this node."""
    peer: VerifiedPeer
    """The peer as verified by the handshake, or by its latest credential refresh."""

    @property
    def identifier(self) -> str:
        """The peer's identifier, ``I`` + 64 hex digits."""
        return self.peer.identifier


def channel_info(msg: LocalMessage) -> SecureChannelLocalInfo | None:
    """The secure-channel local info of ``msg`` (the innermost channel's), or ``None``."""
    return msg.local_info_of(SecureChannelLocalInfo)
