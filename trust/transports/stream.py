"""The pieces every stream-socket connection shares: the Ockam TCP transport's connections
(:class:`~trust.transports.tcp.TcpConnection`) and the raw sockets of TCP portals
(:mod:`trust.portals`) are both built on :class:`StreamConnection`.

What it does, once for both:

* **socket options**: ``TCP_NODELAY`` and Ockam's keepalive (:data:`KEEPALIVE`), and the
  write-buffer limits of the asyncio transport (:func:`tune_socket`);
* **pause reading when the consumer is full**: :meth:`StreamConnection.block_on` stops reading
  and asks the full :class:`~trust.node.node.Endpoint` to call back when it has space; the
  subclass then retries what it could not deliver (:meth:`StreamConnection.unblocked`) and
  reading resumes. Nothing read is dropped and nothing unbounded is buffered: the peer's
  writes block in its kernel;
* **wait for write space**: when the transport's write buffer passes its high mark the
  connection refuses more (:meth:`StreamConnection.offer` of a subclass returns ``False``)
  and callers wait (:meth:`StreamConnection.on_space`, :meth:`StreamConnection.wait_space`)
  until it drains below the low mark;
* **batched writes**: large writes made during one turn of the event loop go to the socket
  in one system call (:meth:`StreamConnection.write_batched`; at most
  :data:`WRITE_BATCH_MAX` bytes wait, for the rest of the turn only);
* **closing**: :meth:`close` (flush first), :meth:`abort` (at once), :attr:`closed` (a future
  done when the socket is gone) and :meth:`wait_closed`.

Reads land in reused buffers (:class:`ReadBuffer`, at most :data:`MAX_READ_BUFFER` bytes):
an idle connection holds none.

A subclass is also an ``asyncio.Protocol`` or ``asyncio.BufferedProtocol`` (the base is a
plain mixin, so either works); it calls :meth:`StreamConnection.attach` from
``connection_made`` and :meth:`StreamConnection.detach` from ``connection_lost``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, cast

from trust.node.mailbox import MailboxClosedError

if TYPE_CHECKING:
    from trust.node.node import Endpoint

__all__ = [
    "KEEPALIVE",
    "MAX_READ_BUFFER",
    "WRITE_BATCH_MAX",
    "WRITE_BUFFER_HIGH",
    "WRITE_BUFFER_LOW",
    "ReadBuffer",
    "StreamConnection",
    "host_port",
    "tune_socket",
]

KEEPALIVE: Final = (300, 75, 2)
"""TCP keepalive idle time, interval and probe count (Ockam's values)."""

WRITE_BUFFER_HIGH: Final = 1024 * 1024
"""Bytes a connection's write buffer holds before it refuses more (callers wait)."""
WRITE_BUFFER_LOW: Final = 256 * 1024
"""The write buffer drained below this: waiting callers go on."""

MAX_READ_BUFFER: Final = 128 * 1024
"""A reused read buffer is smaller than this."""

WRITE_BATCH_MAX: Final = 1024 * 1024
"""Bytes of large writes held for one socket write at most (see
:meth:`StreamConnection.write_batched`): an outlet node's socket writes cost about 5% less
CPU per GB at 1 MiB than at 256 KiB (measured through a portal)."""


def host_port(sockname: Any) -> str:
    """``host:port`` text of a socket address (``[v6]:port`` for IPv6)."""
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def tune_socket(transport: asyncio.BaseTransport, *, high: int = WRITE_BUFFER_HIGH,
                low: int = WRITE_BUFFER_LOW) -> None:
    """``TCP_NODELAY``, keepalive (:data:`KEEPALIVE`) and the write-buffer limits."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            idle, interval, count = KEEPALIVE
            if hasattr(socket, "TCP_KEEPIDLE"):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)
        except OSError:
            pass
    cast(asyncio.WriteTransport, transport).set_write_buffer_limits(high=high, low=low)


class ReadBuffer:
    """A reused read buffer for ``asyncio.BufferedProtocol``: ``head`` bytes reserved in front
    (a subclass writes its message header there, so a read becomes a message with one copy),
    then at most ``size`` bytes of data, then ``tail`` spare bytes. Allocated on first use,
    released by :meth:`release`."""

    __slots__ = ("_buf", "_view", "head", "size", "tail")

    def __init__(self, size: int, *, head: int = 0, tail: int = 0) -> None:
        if not 0 < size + head + tail < MAX_READ_BUFFER or min(size, head, tail) < 0:
            raise ValueError(f"a read buffer is smaller than {MAX_READ_BUFFER} bytes")
        self.size = size
        self.head = head
        self.tail = tail
        self._buf: bytearray | None = None
        self._view: memoryview | None = None

    def get(self) -> memoryview:
        """Where the next read goes (``size`` bytes after the reserved head)."""
        view = self._view
        if view is None:
            self._buf = bytearray(self.head + self.size + self.tail)
            view = self._view = memoryview(self._buf)
        return view[self.head:self.head + self.size]

    @property
    def buffer(self) -> bytearray:
        buf = self._buf
        if buf is None:
            self.get()
            buf = self._buf
        return buf  # type: ignore[return-value]

    @property
    def view(self) -> memoryview:
        """A view of the whole buffer, head included (slice it: no copy)."""
        view = self._view
        if view is None:
            self.get()
            view = self._view
        return view  # type: ignore[return-value]

    def release(self) -> None:
        if self._view is not None:
            self._view.release()
        self._buf = self._view = None


class StreamConnection:
    """The shared state and behaviour of one stream connection (see the module docstring).

    Subclasses set :attr:`incoming` and :attr:`producer_flow` as an
    :class:`~trust.node.node.Endpoint` needs, implement ``offer`` and ``unblocked``.
    """

    incoming: Any = None
    producer_flow: Any = None

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._write_paused = False
        self._space_waiters: list[Callable[[], object]] = []
        self._blocked_on: Endpoint | None = None
        self._batch: list[Any] | None = None
        self._batch_size = 0
        self.closing = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- life ------------------------------------------------------------------------------------
    def attach(self, transport: asyncio.BaseTransport, *, high: int = WRITE_BUFFER_HIGH,
               low: int = WRITE_BUFFER_LOW) -> asyncio.Transport:
        """From ``connection_made``: keep the transport and tune its socket."""
        t = cast(asyncio.Transport, transport)
        self._transport = t
        tune_socket(t, high=high, low=low)
        return t

    def detach(self) -> None:
        """From ``connection_lost``: wake every waiter (they see :attr:`closing`), resolve
        :attr:`closed` and drop the transport (no reference cycle through it)."""
        self.closing = True
        self._blocked_on = None
        self._batch = None
        self._wake_writers()
        if not self.closed.done():
            self.closed.set_result(None)
        self._transport = None

    @property
    def write_buffer_size(self) -> int:
        t = self._transport
        return 0 if t is None else t.get_write_buffer_size()

    # -- reading: pause while the consumer is full -------------------------------------------------
    @property
    def reading_blocked(self) -> bool:
        """Reading is paused until a full consumer has space."""
        return self._blocked_on is not None

    def block_on(self, endpoint: Endpoint) -> None:
        """Stop reading until ``endpoint`` has space; then :meth:`unblocked` runs."""
        self._blocked_on = endpoint
        t = self._transport
        if t is not None:
            t.pause_reading()
        endpoint.on_space(self._space_in_consumer)

    def _space_in_consumer(self) -> None:
        if self._blocked_on is None or self.closing:
            return
        self._blocked_on = None
        self.unblocked()
        if (self._blocked_on is None and not self.closing and self._transport is not None
                and self.wants_reading()):
            self._transport.resume_reading()

    def unblocked(self) -> None:
        """The consumer that blocked reading has space: retry what was held back (it may call
        :meth:`block_on` again). Reading resumes after it, unless blocked again or
        :meth:`wants_reading` says no."""

    def wants_reading(self) -> bool:
        """Whether reading may resume once the consumer has space (a portal connection waits
        for the other side first)."""
        return True

    # -- writing: wait for space -----------------------------------------------------------------
    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writers()

    def on_space(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` (soon) once the write buffer has drained (or at once if it has)."""
        if not self._write_paused or self.closing:
            asyncio.get_running_loop().call_soon(callback)
        else:
            self._space_waiters.append(callback)

    async def wait_space(self) -> None:
        """Return when more may be written; :class:`MailboxClosedError` when closed."""
        if self.closing:
            raise MailboxClosedError
        if not self._write_paused:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        self._space_waiters.append(wake)
        await fut
        if self.closing:
            raise MailboxClosedError

    def _wake_writers(self) -> None:
        waiters, self._space_waiters = self._space_waiters, []
        if waiters:
            loop = asyncio.get_running_loop()
            for w in waiters:
                loop.call_soon(w)

    # -- batched writes --------------------------------------------------------------------------
    def write_batched(self, data: Any, size: int, head: Any = None) -> None:
        """Write ``data`` (``size`` bytes; after ``head``, if given, e.g. a frame header) with
        the other writes of this turn of the event loop, in one system call at its end (or at
        once when :data:`WRITE_BATCH_MAX` bytes wait). While writes wait, every write of this
        connection must go through here (order)."""
        batch = self._batch
        if batch is None:
            self._batch = [data] if head is None else [head, data]
            self._batch_size = size
            asyncio.get_running_loop().call_soon(self._flush_turn)
            return
        if head is not None:
            batch.append(head)
        batch.append(data)
        self._batch_size += size
        if self._batch_size >= WRITE_BATCH_MAX:
            self.flush_writes()

    def flush_writes(self) -> None:
        """Write what :meth:`write_batched` holds now (the loop's flush at the end of the
        turn still comes: later writes of this turn wait for it)."""
        batch = self._batch
        if batch:
            self._batch = []
            self._batch_size = 0
            t = self._transport
            if t is not None and not self.closing:
                t.writelines(batch)

    def _flush_turn(self) -> None:
        """The end of the turn: write what waits; the next write starts a new batch."""
        self.flush_writes()
        self._batch = None

    # -- closing ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Close after flushing what is buffered."""
        self.flush_writes()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        """Close at once, dropping buffered data."""
        self.closing = True
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        await asyncio.shield(self.closed)
