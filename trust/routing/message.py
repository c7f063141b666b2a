"""Messages as a node handles them (Ockam's ``LocalMessage``).

A message carries an onward route (the hops still to visit), a return route (where replies go),
the payload bytes, node-local information that is never transmitted (``local_info``, e.g. which
TCP connection it came from) and an optional tracing context (transmitted by TCP).

Routing semantics (wire spec §1.2): each hop pops itself from the front of the onward route and,
if it wants replies, pushes its own address to the front of the return route
(:meth:`LocalMessage.step_forward`).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, TypeVar

from trust.routing.address import Address
from trust.routing.route import Route

__all__ = ["LocalInfo", "LocalInfoItem", "LocalMessage"]


class LocalInfoItem(Protocol):
    """Anything attached to a message as node-local information (never sent on the wire): a
    typed object (e.g. ``SecureChannelLocalInfo``) or a :class:`LocalInfo` pair. Its
    ``type_identifier`` names what it is (Ockam's local-info type names)."""

    @property
    def type_identifier(self) -> str: ...


class LocalInfo(NamedTuple):
    """A piece of untyped node-local information: a type name and bytes (e.g. the TCP peer
    and the flow control id a TCP connection attaches)."""

    type_identifier: str
    data: bytes


_T = TypeVar("_T")


class LocalMessage:
    """A routed message. Treat it as immutable: the methods return new messages."""

    __slots__ = ("local_info", "onward_route", "payload", "return_route", "tracing_context")

    onward_route: Route
    return_route: Route
    payload: bytes
    local_info: tuple[LocalInfoItem, ...]
    tracing_context: str | None

    def __init__(self, onward_route: Route, return_route: Route, payload: bytes,
                 local_info: tuple[LocalInfoItem, ...] = (),
                 tracing_context: str | None = None) -> None:
        self.onward_route = onward_route
        self.return_route = return_route
        self.payload = payload
        self.local_info = local_info
        self.tracing_context = tracing_context

    def _with(self, onward: Route, ret: Route) -> LocalMessage:
        m = LocalMessage.__new__(LocalMessage)
        m.onward_route = onward
        m.return_route = ret
        m.payload = self.payload
        m.local_info = self.local_info
        m.tracing_context = self.tracing_context
        return m

    # -- route manipulation ----------------------------------------------------------------------
    def step_forward(self, address: Address) -> LocalMessage:
        """Pop the first onward hop and push ``address`` onto the return route (a relaying hop)."""
        return self._with(self.onward_route.pop_front(), self.return_route.push_front(address))

    def pop_front_onward(self) -> LocalMessage:
        return self._with(self.onward_route.pop_front(), self.return_route)

    def push_front_onward(self, address: Address) -> LocalMessage:
        return self._with(self.onward_route.push_front(address), self.return_route)

    def replace_front_onward(self, address: Address) -> LocalMessage:
        return self._with(self.onward_route.replace_front(address), self.return_route)

    def prepend_onward(self, route: Route) -> LocalMessage:
        return self._with(route + self.onward_route, self.return_route)

    def push_front_return(self, address: Address) -> LocalMessage:
        return self._with(self.onward_route, self.return_route.push_front(address))

    def with_payload(self, payload: bytes) -> LocalMessage:
        m = self._with(self.onward_route, self.return_route)
        m.payload = payload
        return m

    def with_local_info(self, local_info: tuple[LocalInfoItem, ...]) -> LocalMessage:
        m = self._with(self.onward_route, self.return_route)
        m.local_info = local_info
        return m

    def find_local_info(self, type_identifier: str) -> bytes | None:
        """The bytes of the first :class:`LocalInfo` of ``type_identifier``, or ``None``."""
        for info in self.local_info:
            if info.type_identifier == type_identifier and type(info) is LocalInfo:
                return info.data
        return None

    def local_info_of(self, kind: type[_T]) -> _T | None:
        """The last local info of type ``kind`` (a typed local info class), or ``None``."""
        for info in reversed(self.local_info):
            if isinstance(info, kind):
                return info
        return None

    # -- equality, text --------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LocalMessage):
            return NotImplemented
        return (self.onward_route == other.onward_route
                and self.return_route == other.return_route
                and self.payload == other.payload
                and self.local_info == other.local_info
                and self.tracing_context == other.tracing_context)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = self.payload[:32].hex() + ("…" if len(self.payload) > 32 else "")
        return (f"LocalMessage(onward=[{self.onward_route}], return=[{self.return_route}], "
                f"payload={len(self.payload)}B {shown})")


class HeadroomMessage(LocalMessage):
    """A message whose payload is a *transient* view of its sender's reused buffer (see
    :attr:`~trust.node.worker.Worker.takes_transient_views`), with room around it: the payload
    is ``buffer[start:end]`` (``buffer``: a writable ``memoryview`` of the whole buffer), and a
    worker that takes transient views may, while its ``handle_now`` runs, write the
    ``headroom`` bytes before it (to put its own header in front: a secure channel's encryptor
    builds its plaintext there instead of copying the payload) and the byte right after it,
    if ``buffer`` has one, provided it restores that byte before it returns. A portal inlet
    sends its reads this way.

    Once the payload is no longer a writable view (the node copied it: the message was queued,
    or went to an endpoint that does not take transient views), the room is not there any
    more: the other fields are then to be ignored."""

    __slots__ = ("buffer", "headroom", "start")

    buffer: memoryview
    start: int
    headroom: int

    def __init__(self, onward_route: Route, return_route: Route, buffer: memoryview,
                 start: int, end: int, headroom: int) -> None:
        LocalMessage.__init__(self, onward_route, return_route,
                              buffer[start:end])  # type: ignore[arg-type]
        self.buffer = buffer
        self.start = start
        self.headroom = headroom
