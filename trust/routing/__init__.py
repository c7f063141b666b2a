"""Sans-IO messaging data: addresses, routes, messages, Ockam's TCP frame codec, route syntax.

>>> from trust.routing import Route, encode_frame
>>> r = Route(["echoer"])
>>> encode_frame(r, Route(["app"]), bytes.fromhex("0548656c6c6f")).hex()
'0000001983818200466563686f657281820043617070460548656c6c6f'
"""

from trust.routing.address import LOCAL, TCP, UDP, Address
from trust.routing.bare import decode_string, encode_string
from trust.routing.message import HeadroomMessage, LocalInfo, LocalInfoItem, LocalMessage
from trust.routing.multiaddr import MultiAddr, RouteSyntaxError, parse_multiaddr
from trust.routing.route import Route, RouteLike
from trust.routing.tcp_frame import (
    MAX_FRAME_SIZE,
    MAX_ROUTE_HOPS,
    PREAMBLE,
    FrameDecoder,
    FrameTooLargeError,
    decode_body,
    encode_body,
    encode_frame,
    encode_heartbeat,
)

__all__ = [
    "LOCAL",
    "MAX_FRAME_SIZE",
    "MAX_ROUTE_HOPS",
    "PREAMBLE",
    "TCP",
    "UDP",
    "Address",
    "FrameDecoder",
    "FrameTooLargeError",
    "HeadroomMessage",
    "LocalInfo",
    "LocalInfoItem",
    "LocalMessage",
    "MultiAddr",
    "Route",
    "RouteLike",
    "RouteSyntaxError",
    "decode_body",
    "decode_string",
    "encode_body",
    "encode_frame",
    "encode_heartbeat",
    "encode_string",
    "parse_multiaddr",
]
