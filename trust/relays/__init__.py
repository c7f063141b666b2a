"""Relays (Ockam's forwarding service): reach a node that accepts no connections.

* :mod:`trust.relays.messages`: the registration and notification messages (BARE strings);
* :mod:`trust.relays.service`: :class:`RelayService` at ``forwarding_service`` and the relays
  it hosts (``forward_to_NAME``), started with :func:`start_relay_service`;
* :mod:`trust.relays.client`: :class:`RelayClient`, which registers a relay through a link
  (a secure channel) and keeps it registered (liveness pings, re-registration with back-off).

See ``docs/relays.md``.
"""

from trust.relays.client import RelayClient
from trust.relays.messages import (
    EPHEMERAL,
    PREFIX,
    SERVICE,
    STATIC_SERVICE,
    decode_registration,
    encode_registration,
)
from trust.relays.service import Relay, RelayService, start_relay_service

__all__ = [
    "EPHEMERAL",
    "PREFIX",
    "SERVICE",
    "STATIC_SERVICE",
    "Relay",
    "RelayClient",
    "RelayService",
    "decode_registration",
    "encode_registration",
    "start_relay_service",
]
