"""Ockam's authenticated handshake as two sans-IO state machines (wire spec §3).

Bytes in, events out, as h11 and aioquic do; no I/O, no clock of their own (``now`` is a
parameter, the real clock by default)::

    initiator = Initiator(alice, PeerAuthenticator(TrustIdentifier(bob_id)))
    responder = Responder(bob, PeerAuthenticator())
    m1 = initiator.start()
    [m2] = responder.receive(m1)                   # SendMessage
    m3, done_i = initiator.receive(m2.data)        # SendMessage, HandshakeComplete
    [done_r] = responder.receive(m3.data)          # HandshakeComplete

Each side sends its :class:`~trust.channels.messages.IdentityAndCredentials` (message 2: the
responder's, message 3: the initiator's) and authenticates the other's
(:class:`~trust.channels.authentication.PeerAuthenticator`) before going on: the initiator before
it writes message 3, the responder before it reports completion. Any failure is raised as a typed
error (:mod:`trust.channels.errors`), the machine is then FAILED for good, keeps no key material
and reports no keys; every later call raises :class:`~trust.errors.RemoteProtocolError`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from trust.channels.authentication import PeerAuthenticator
from trust.channels.keys import DhKey
from trust.channels.messages.close import Close
from trust.channels.messages.identity_and_credentials import IdentityAndCredentials
from trust.channels.noise import PROTOCOL_NAME, NoiseInitiator, NoiseResponder, SplitKeys
from trust.channels.peer import VerifiedPeer
from trust.channels.records import RecordSession
from trust.errors import RemoteProtocolError, UsageError
from trust.models.purpose_key import Purpose

__all__ = [
    "ChannelIdentity",
    "Event",
    "HandshakeComplete",
    "HandshakeState",
    "Initiator",
    "Responder",
    "SendMessage",
]


@dataclass(frozen=True, slots=True)
class SendMessage:
    """A handshake message to send to the peer (as the raw payload of a routed message)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The peer is authenticated and trusted; ``keys`` are this side's transport keys."""

    peer: VerifiedPeer
    keys: SplitKeys = field(repr=False)
    handshake_hash: bytes


Event = SendMessage | HandshakeComplete


class HandshakeState(enum.Enum):
    START = "start"
    WAITING_FOR_MESSAGE_1 = "waiting for message 1"
    WAITING_FOR_MESSAGE_2 = "waiting for message 2"
    WAITING_FOR_MESSAGE_3 = "waiting for message 3"
    COMPLETE = "complete"
    FAILED = "failed"


class ChannelIdentity:
    """One side's identity in handshakes: its Noise static key and the payload whose attestation
    names that key. Build it once (e.g. per listener) and use it for every handshake."""

    __slots__ = ("payload", "payload_bytes", "static")

    def __init__(self, static: DhKey, payload: IdentityAndCredentials) -> None:
        if not isinstance(payload, IdentityAndCredentials):
            raise UsageError("the payload is an IdentityAndCredentials")
        attested = payload.purpose_key_attestation.attestation_data.public_key
        if attested.purpose is not Purpose.SECURE_CHANNEL_STATIC or attested.x25519 != static.public:
            raise UsageError("the payload's attestation does not name this static key")
        self.static = static
        self.payload = payload
        self.payload_bytes = payload.encode()

    @property
    def identifier(self) -> str:
        return self.payload.change_history.identifier_text


class _Machine:
    __slots__ = ("_auth", "_identity", "_noise", "error", "state")

    _noise: NoiseInitiator | NoiseResponder
    state: HandshakeState

    def __init__(self, identity: ChannelIdentity, authenticator: PeerAuthenticator | None) -> None:
        if not isinstance(identity, ChannelIdentity):
            raise UsageError("identity must be a ChannelIdentity")
        self._identity = identity
        self._auth = PeerAuthenticator() if authenticator is None else authenticator
        self.error: Exception | None = None
        """The error that made the handshake fail."""

    def _refuse(self, what: str) -> RemoteProtocolError:
        if self.state is HandshakeState.FAILED:
            return RemoteProtocolError(f"handshake {what}: this handshake has failed")
        if self.state is HandshakeState.COMPLETE:
            return RemoteProtocolError(f"handshake {what} after the handshake completed "
                                       "(replayed?)")
        return RemoteProtocolError(f"unexpected handshake {what} ({self.state.value})")

    def _failed(self, e: Exception) -> None:
        self.state = HandshakeState.FAILED
        self.error = e
        self._noise.abort()


class Initiator(_Machine):
    """The side that opens the channel. ``ephemeral``: inject the ephemeral key (test vectors);
    by default a fresh one per handshake."""

    __slots__ = ()

    _noise: NoiseInitiator

    def __init__(self, identity: ChannelIdentity, authenticator: PeerAuthenticator | None = None,
                 *, ephemeral: DhKey | None = None, protocol_name: bytes = PROTOCOL_NAME) -> None:
        super().__init__(identity, authenticator)
        self._noise = NoiseInitiator(identity.static, ephemeral=ephemeral,
                                     protocol_name=protocol_name)
        self.state = HandshakeState.START

    def start(self) -> bytes:
        """Message 1 (the ephemeral key, an empty payload)."""
        if self.state is not HandshakeState.START:
            raise UsageError("the handshake was already started")
        m1 = self._noise.write_message1(b"")
        self.state = HandshakeState.WAITING_FOR_MESSAGE_2
        return m1

    def receive(self, data: bytes, *, now: int | None = None) -> list[Event]:
        """Message 2 in; ``[SendMessage(message 3), HandshakeComplete]`` out."""
        if self.state is not HandshakeState.WAITING_FOR_MESSAGE_2:
            if self.state is HandshakeState.START:
                raise UsageError("start() the handshake first")
            raise self._refuse("message")
        noise = self._noise
        try:
            payload = noise.read_message2(data)
            rs = noise.remote_static
            assert rs is not None
            peer = self._auth.authenticate(payload, rs, now=now)
            m3, keys = noise.write_message3(self._identity.payload_bytes)
        except Exception as e:
            self._failed(e)
            raise
        self.state = HandshakeState.COMPLETE
        return [SendMessage(m3), HandshakeComplete(peer, keys, noise.handshake_hash)]


class Responder(_Machine):
    """The side that accepts a channel (one per incoming message 1).

    When it refuses the initiator after message 3 (the initiator's identity, attestation,
    credentials or trust did not pass, or the payload of message 3 was changed on its way),
    the initiator already holds an open channel: :attr:`refusal` is then a Close record under
    the derived keys, for the runtime to send back along message 3's return route (Ockam's
    decryptor honours Close too). The keys themselves are not kept. (A message 3 whose first
    48 bytes, the encrypted static key, were changed gives no keys, hence no refusal.)"""

    __slots__ = ("refusal",)

    _noise: NoiseResponder

    def __init__(self, identity: ChannelIdentity, authenticator: PeerAuthenticator | None = None,
                 *, ephemeral: DhKey | None = None, protocol_name: bytes = PROTOCOL_NAME) -> None:
        super().__init__(identity, authenticator)
        self._noise = NoiseResponder(identity.static, ephemeral=ephemeral,
                                     protocol_name=protocol_name)
        self.state = HandshakeState.WAITING_FOR_MESSAGE_1
        self.refusal: bytes | None = None
        """A Close record for the initiator, once this side refused it after message 3."""

    def receive(self, data: bytes, *, now: int | None = None) -> list[Event]:
        """Message 1 in: ``[SendMessage(message 2)]``; message 3 in: ``[HandshakeComplete]``."""
        noise = self._noise
        if self.state is HandshakeState.WAITING_FOR_MESSAGE_1:
            try:
                noise.read_message1(data)
                m2 = noise.write_message2(self._identity.payload_bytes)
            except Exception as e:
                self._failed(e)
                raise
            self.state = HandshakeState.WAITING_FOR_MESSAGE_3
            return [SendMessage(m2)]
        if self.state is HandshakeState.WAITING_FOR_MESSAGE_3:
            try:
                payload, keys = noise.read_message3(data)
            except Exception as e:
                failed_keys = noise.keys_of_failed_message3
                if failed_keys is not None:  # the payload was changed on its way: refuse too
                    noise.keys_of_failed_message3 = None
                    self.refusal = RecordSession(failed_keys).encrypt(Close())
                self._failed(e)
                raise
            try:
                rs = noise.remote_static
                assert rs is not None
                peer = self._auth.authenticate(payload, rs, now=now)
            except Exception as e:
                # Noise completed: only the initiator can read a record under these keys.
                # Keep one Close record to tell it (its channel is open), then the keys go.
                self.refusal = RecordSession(keys).encrypt(Close())
                self._failed(e)
                raise
            self.state = HandshakeState.COMPLETE
            return [HandshakeComplete(peer, keys, noise.handshake_hash)]
        raise self._refuse("message")
