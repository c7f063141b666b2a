"""Secure channels, sans-IO: Ockam's Noise XX handshake with identities and credentials, the
record layer, the channel messages and trust policies (wire spec §3-4). See docs/channels.md.

The asyncio workers (listener, initiator, encryptor, decryptor) only move the bytes these
objects take and produce.
"""

from trust.channels.authentication import PeerAuthenticator
from trust.channels.errors import DecryptionError, ReplayError
from trust.channels.handshake import (
    ChannelIdentity,
    Event,
    HandshakeComplete,
    HandshakeState,
    Initiator,
    Responder,
    SendMessage,
)
from trust.channels.keys import DhKey, VaultX25519Key, X25519KeyPair
from trust.channels.messages import (
    ChannelMessage,
    Close,
    IdentityAndCredentials,
    Payload,
    RefreshCredentials,
    decode_message,
)
from trust.channels.noise import MAX_MESSAGE_SIZE, PROTOCOL_NAME, SplitKeys
from trust.channels.peer import VerifiedPeer
from trust.channels.records import Decryptor, Encryptor, RecordSession
from trust.channels.trust_policies import (
    AllTrust,
    AnyTrust,
    Trust,
    TrustAuthority,
    TrustEveryone,
    TrustIdentifier,
    TrustIdentifiers,
    TrustPolicy,
)

__all__ = [
    "MAX_MESSAGE_SIZE",
    "PROTOCOL_NAME",
    "AllTrust",
    "AnyTrust",
    "ChannelIdentity",
    "ChannelMessage",
    "Close",
    "DecryptionError",
    "Decryptor",
    "DhKey",
    "Encryptor",
    "Event",
    "HandshakeComplete",
    "HandshakeState",
    "IdentityAndCredentials",
    "Initiator",
    "Payload",
    "PeerAuthenticator",
    "RecordSession",
    "RefreshCredentials",
    "ReplayError",
    "Responder",
    "SendMessage",
    "SplitKeys",
    "Trust",
    "TrustAuthority",
    "TrustEveryone",
    "TrustIdentifier",
    "TrustIdentifiers",
    "TrustPolicy",
    "VaultX25519Key",
    "VerifiedPeer",
    "X25519KeyPair",
    "decode_message",
]
