"""Relays (Ockam's forwarding service): reach a node that accepts no connections.

* :mod:`trust.relays.messages`: the registration and notification messages (BARE strings);
* :mod:`trust.relays.service`: :class:`RelayService` at ``forwarding_service`` and the relays
  it hosts (``forward_to_NAME``), started with :func:`start_relay_service`;
* :mod:`trust.relays.client`: :class:`RelayClient`, which registers a relay through a link
  (a secure channel) and keeps it registered (liveness pings, re-registration with back-off).

See ``docs/relays.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trust.lazy_exports import lazy_getattr

if TYPE_CHECKING:
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

_EXPORTS = {
    "RelayClient": "trust.relays.client",
    **dict.fromkeys(("EPHEMERAL", "PREFIX", "SERVICE", "STATIC_SERVICE", "decode_registration",
                     "encode_registration"), "trust.relays.messages"),
    **dict.fromkeys(("Relay", "RelayService", "start_relay_service"), "trust.relays.service"),
}
"""Loaded on first use (:mod:`trust.lazy_exports`): the CLI checks relay names with
:mod:`trust.relays.messages` without importing the service and the client (~190 ms)."""

__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())

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
