"""The relay protocol's messages (wire spec §5): what a client sends to register a relay and
what the relay answers. Both are BARE strings, as Ockam's (a Rust ``String`` message).

* Registration: ``"register"`` asks for an ephemeral relay (a random 32-hex name); anything
  else is the requested name (a *static* relay). The relay's address is ``prefix + name``
  (Ockam nodes: ``forward_to_``).
* Notification: the relay's address (``forward_to_NAME``), sent from that address to the
  registration's return route.

Names are bounded and restricted to ``A-Z a-z 0-9 _ . -`` (they become local addresses); a
payload that is not exactly one BARE string is a :class:`~trust.errors.DecodeError`.

>>> encode_registration("bank").hex()
'0462616e6b'
>>> decode_registration(bytes.fromhex("0462616e6b")), decode_registration(encode_registration(None))
('bank', None)
"""

from __future__ import annotations

import os
import re
from typing import Final

from trust.errors import DecodeError, UsageError
from trust.routing.bare import decode_string, encode_string

__all__ = [
    "EPHEMERAL",
    "MAX_NAME",
    "PREFIX",
    "SERVICE",
    "STATIC_SERVICE",
    "check_relay_address",
    "check_relay_name",
    "decode_notification",
    "decode_registration",
    "encode_notification",
    "encode_registration",
    "random_name",
    "relay_address",
]

SERVICE: Final = "forwarding_service"
"""Where a node serves relay registrations (Ockam's ``DefaultAddress::RELAY_SERVICE``)."""
STATIC_SERVICE: Final = "static_forwarding_service"
"""The same service's alias (Ockam clients send static registrations there)."""
PREFIX: Final = "forward_to_"
"""Static and ephemeral relays live at ``PREFIX + name``."""
EPHEMERAL: Final = "register"
"""The registration payload that asks for a relay with a random name."""
MAX_NAME: Final = 128
"""Characters a relay name may have at most."""

_NAME = re.compile(rf"[A-Za-z0-9_.-]{{1,{MAX_NAME}}}")
_MAX_PAYLOAD = 2 + MAX_NAME + len(PREFIX)
_MAX_ADDRESS = _MAX_PAYLOAD + 16


def check_relay_name(name: object, what: str = "relay name") -> str:
    """``name`` if it is a valid relay name, else a :class:`UsageError` naming the rule."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise UsageError(f"a {what} is 1 to {MAX_NAME} letters, digits, '_', '.' or '-'")
    if name == EPHEMERAL:
        raise UsageError(f"{EPHEMERAL!r} is not a relay name: it asks for an ephemeral relay")
    return name


def random_name() -> str:
    """An ephemeral relay's name: 32 lowercase hex characters (as Ockam's random addresses)."""
    return os.urandom(16).hex()


def relay_address(name: str, prefix: str = PREFIX) -> str:
    """The local address of relay ``name`` (``forward_to_NAME``)."""
    return prefix + name


def encode_registration(name: str | None) -> bytes:
    """A registration request: ``name`` (static), or ``None`` for an ephemeral relay."""
    return encode_string(EPHEMERAL if name is None else check_relay_name(name))


def decode_registration(payload: bytes) -> str | None:
    """The name a registration asks for (``None``: ephemeral). Hostile input: anything but one
    BARE string holding a valid name is a :class:`DecodeError`."""
    if len(payload) > _MAX_PAYLOAD:
        raise DecodeError(f"registration of {len(payload)} bytes (at most {_MAX_PAYLOAD})",
                          field="relay registration")
    text = decode_string(payload, "relay registration")
    if text == EPHEMERAL:
        return None
    try:
        return check_relay_name(text)
    except UsageError as e:
        raise DecodeError(str(e), field="relay registration") from None


def encode_notification(address: str) -> bytes:
    """The relay's answer: its address (e.g. ``forward_to_bank``)."""
    return encode_string(address)


def decode_notification(payload: bytes, name: str | None) -> str:
    """The relay address in a notification. For a static relay (``name``) it must end with the
    name (a Rust relay answers ``forward_to_NAME``, an Elixir one ``NAME``)."""
    if len(payload) > _MAX_ADDRESS:
        raise DecodeError("relay notification too long", field="relay notification")
    return check_relay_address(decode_string(payload, "relay notification"), name)


def check_relay_address(text: str, name: str | None) -> str:
    """``text``, a relay's address as its relay node gives it (in a notification, or as the
    last hop of its return route): printable ASCII, short, ending with the name of a static
    relay (``name``); else :class:`DecodeError`."""
    if not text or len(text) > _MAX_ADDRESS or \
            any(not (c.isascii() and c.isprintable()) for c in text):
        raise DecodeError(f"the relay address is not printable ASCII (1 to {_MAX_ADDRESS} "
                          "characters)", field="relay notification")
    if name is not None and not text.endswith(name):
        raise DecodeError(f"the relay answered {text!r}, not the relay {name!r}",
                          field="relay notification")
    return text
