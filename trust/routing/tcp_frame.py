"""Ockam's TCP wire format (wire spec §2.1), sans-IO.

* Each side of a connection first sends one byte, :data:`PREAMBLE` (``0x01``, protocol V1).
* Then frames: ``u32 big-endian length || body``, the length at most :data:`MAX_FRAME_SIZE`.
* Body = CBOR ``[onward_route, return_route, payload: bstr, ?tracing_context: tstr]``; an
  address is ``[tt, inner: bstr]``; the tracing context is omitted when absent.
* A frame whose onward route is empty is a heartbeat: :class:`FrameDecoder` checks it and skips it.

:func:`encode_frame` builds one frame; :class:`FrameDecoder` is fed arbitrary chunks (``feed``,
or ``get_buffer``/``buffer_updated`` for an ``asyncio.BufferedProtocol``) and yields
:class:`~trust.routing.message.LocalMessage` objects one by one (``next_message``), or hands
them to a callback until it says stop (``drain``, the connection's receive path), so a caller
can stop (back-pressure) while undecoded bytes stay in the decoder's reused buffer.
Every malformed input raises :class:`~trust.errors.DecodeError`; after one the decoder stays
failed: further input raises it again (the connection must be dropped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from struct import Struct
from typing import Any, Final, TypeVar

from trust.errors import DecodeError, UsageError
from trust.models.cbor import head
from trust.routing.address import Address
from trust.routing.message import LocalMessage
from trust.routing.route import Route

__all__ = [
    "MAX_FRAME_SIZE",
    "MAX_ROUTE_HOPS",
    "PREAMBLE",
    "SMALL_PAYLOAD_HEADS",
    "FrameDecoder",
    "FrameTooLargeError",
    "decode_body",
    "encode_body",
    "encode_frame",
    "encode_heartbeat",
    "pack_u32",
    "routes_prefix",
]

PREAMBLE: Final = b"\x01"
"""The protocol-version byte each side sends first (``TcpProtocolVersion::V1``)."""

MAX_FRAME_SIZE: Final = 16 * 1024 * 1024
"""The largest body a frame may carry (Ockam's ``MAX_MESSAGE_SIZE``, 16 MiB)."""

MAX_ROUTE_HOPS: Final = 256
"""The most addresses a decoded route may hold (Ockam sets no limit; real routes have a few).
Without it, one 16 MiB frame of 3-byte addresses made a receiver build 5.6 million of them
(about 450 MB, the event loop blocked for seconds) before anything looked at the message."""

_U32: Final = Struct(">I")
_pack_u32 = _U32.pack
_unpack_u32 = _U32.unpack_from


class FrameTooLargeError(UsageError):
    """A message does not fit in one TCP frame (16 MiB)."""


# ---------------------------------------------------------------------------------------------
# encoding


_ROUTE_ENCODED: dict[tuple[Address, ...], bytes] = {}
_ROUTE_ENCODED_MAX: Final = 4096
_ROUTES_ENCODED: dict[tuple[tuple[Address, ...], tuple[Address, ...]], bytes] = {}


def _enc_addrs(addrs: tuple[Address, ...]) -> bytes:
    """CBOR of a route given as a tuple of addresses (cached)."""
    c = _ROUTE_ENCODED.get(addrs)
    if c is None:
        c = head(4, len(addrs)) + b"".join([a.encode() for a in addrs])
        if len(c) <= 512:
            if len(_ROUTE_ENCODED) >= _ROUTE_ENCODED_MAX:
                _ROUTE_ENCODED.clear()
            _ROUTE_ENCODED[addrs] = c
    return c


def _routes_prefix(onward: tuple[Address, ...], ret: tuple[Address, ...]) -> bytes:
    """``0x83 || onward || return``: the body's start when there is no tracing context
    (cached: conversations keep their routes)."""
    routes = b"\x83" + _enc_addrs(onward) + _enc_addrs(ret)
    if len(routes) <= 512:
        if len(_ROUTES_ENCODED) >= _ROUTE_ENCODED_MAX:
            _ROUTES_ENCODED.clear()
        _ROUTES_ENCODED[(onward, ret)] = routes
    return routes


def routes_prefix(onward: tuple[Address, ...], ret: tuple[Address, ...]) -> bytes | None:
    """The fast frame-writing API (used by the TCP sender for payloads under 256 bytes
    without a tracing context): ``0x83 || onward || return``, the start of a frame's body, or
    ``None`` when the routes take more than 512 bytes (then use :func:`encode_frame`). Cached by
    the routes. A frame is then ``pack_u32(len(prefix) + len(head) + n) + prefix + head +
    payload`` where ``head = SMALL_PAYLOAD_HEADS[n]`` (``n = len(payload) < 256``); this is
    exactly what :func:`encode_frame` writes for such a message."""
    routes = _ROUTES_ENCODED.get((onward, ret))
    if routes is None:
        routes = _routes_prefix(onward, ret)
    return routes if len(routes) <= 512 else None


def _payload_head(n: int) -> bytes:
    if n < 256:
        return _BSTR_HEADS[n]
    return head(2, n)


_BSTR_HEADS: Final = tuple(head(2, i) for i in range(256))
SMALL_PAYLOAD_HEADS: Final = _BSTR_HEADS
"""The CBOR byte-string head of a payload of ``n < 256`` bytes, at index ``n``."""
pack_u32: Final = _pack_u32
"""A frame's 4-byte big-endian length prefix."""


def _body_parts(onward: tuple[Address, ...], ret: tuple[Address, ...], payload: bytes,
                tracing: str | None) -> tuple[bytes, bytes]:
    """(bytes before the payload, bytes after it)."""
    plen = _payload_head(len(payload))
    if tracing is None:
        return b"".join((b"\x83", _enc_addrs(onward), _enc_addrs(ret), plen)), b""
    t = tracing.encode("utf-8")
    return (b"".join((b"\x84", _enc_addrs(onward), _enc_addrs(ret), plen)),
            head(3, len(t)) + t)


def encode_body(onward: Route, ret: Route, payload: bytes,
                tracing_context: str | None = None) -> bytes:
    """The CBOR body of a TCP frame."""
    pre, post = _body_parts(onward.addresses, ret.addresses, payload, tracing_context)
    return b"".join((pre, payload, post))


def encode_frame_addrs(onward: tuple[Address, ...], ret: tuple[Address, ...], payload: bytes,
                       tracing_context: str | None = None) -> bytes:
    """Like :func:`encode_frame`, from address tuples (the transport's hot path)."""
    if tracing_context is None:
        routes = _ROUTES_ENCODED.get((onward, ret)) or _routes_prefix(onward, ret)
        n = len(payload)
        plen = _BSTR_HEADS[n] if n < 256 else head(2, n)
        size = len(routes) + len(plen) + n
        if size > MAX_FRAME_SIZE:
            raise FrameTooLargeError(f"a message of {size} bytes exceeds the "
                                     f"{MAX_FRAME_SIZE}-byte TCP frame limit")
        return b"".join((_pack_u32(size), routes, plen, payload))
    pre, post = _body_parts(onward, ret, payload, tracing_context)
    size = len(pre) + len(payload) + len(post)
    if size > MAX_FRAME_SIZE:
        raise FrameTooLargeError(f"a message of {size} bytes exceeds the {MAX_FRAME_SIZE}-byte "
                                 "TCP frame limit")
    return b"".join((_pack_u32(size), pre, payload, post))


def frame_header(onward: tuple[Address, ...], ret: tuple[Address, ...], payload_size: int
                 ) -> bytes:
    """The bytes of a frame before its payload (no tracing context): write them, then the
    payload itself (``transport.writelines``), to avoid copying a large payload."""
    on = _ROUTE_ENCODED.get(onward) or _enc_addrs(onward)
    rt = _ROUTE_ENCODED.get(ret) or _enc_addrs(ret)
    plen = _BSTR_HEADS[payload_size] if payload_size < 256 else head(2, payload_size)
    size = 1 + len(on) + len(rt) + len(plen) + payload_size
    if size > MAX_FRAME_SIZE:
        raise FrameTooLargeError(f"a message of {size} bytes exceeds the "
                                 f"{MAX_FRAME_SIZE}-byte TCP frame limit")
    return b"".join((_pack_u32(size), b"\x83", on, rt, plen))


def encode_frame(onward: Route, ret: Route, payload: bytes,
                 tracing_context: str | None = None) -> bytes:
    """``u32 length || body`` (without the connection preamble)."""
    return encode_frame_addrs(onward.addresses, ret.addresses, payload, tracing_context)


def encode_heartbeat() -> bytes:
    """A heartbeat frame: empty onward and return routes, empty payload."""
    return encode_frame_addrs((), (), b"")


# ---------------------------------------------------------------------------------------------
# decoding (hand-written for speed; strict like trust.models.cbor)

_new_tuple = tuple.__new__
T = TypeVar("T")


def _head(data: bytes | bytearray, pos: int, end: int, field: str) -> tuple[int, int, int]:
    if pos >= end:
        raise DecodeError("unexpected end of data", field=field)
    ib = data[pos]
    major = ib >> 5
    info = ib & 0x1F
    if info < 24:
        return major, info, pos + 1
    if info == 24:
        if pos + 2 > end:
            raise DecodeError("unexpected end of data", field=field)
        n = data[pos + 1]
        if n < 24:
            raise DecodeError("integer head is not in its shortest form", field=field)
        return major, n, pos + 2
    if info == 25:
        stop, minimum = pos + 3, 0x100
    elif info == 26:
        stop, minimum = pos + 5, 0x10000
    elif info == 27:
        stop, minimum = pos + 9, 0x100000000
    elif info == 31:
        raise DecodeError("indefinite-length items are not allowed", field=field)
    else:
        raise DecodeError(f"reserved additional information {info}", field=field)
    if stop > end:
        raise DecodeError("unexpected end of data", field=field)
    n = int.from_bytes(data[pos + 1 : stop], "big")
    if n < minimum:
        raise DecodeError("integer head is not in its shortest form", field=field)
    return major, n, stop


_KINDS: Final = ("an unsigned integer", "a negative integer", "a byte string", "a text string",
                 "an array", "a map", "a tag", "a simple value or float")


def _wrong(field: str, want: str, major: int) -> DecodeError:
    return DecodeError(f"expected {want}, found {_KINDS[major]}", field=field)


def read_address(data: bytes | bytearray, pos: int, end: int, field: str,
                 index: int = -1) -> tuple[Address, int]:
    """Read one CBOR address ``[tt, bstr]`` at ``pos``; return it and the next position.

    ``field`` (with ``[index]`` when ``index >= 0``) names it in errors.
    """
    if pos + 3 <= end and data[pos] == 0x82 and data[pos + 1] < 24 and 0x40 <= data[pos + 2] < 0x58:
        stop = pos + 3 + data[pos + 2] - 0x40
        if stop <= end:
            return _new_tuple(Address, (data[pos + 1], bytes(data[pos + 3 : stop]))), stop
    if index >= 0:
        field = f"{field}[{index}]"
    if pos < end and data[pos] == 0x82:
        pos += 1
    else:
        major, n, pos = _head(data, pos, end, field)
        if major != 4:
            raise _wrong(field, "an address array [type, bytes]", major)
        raise DecodeError(f"an address has 2 elements, found {n}", field=field)
    major, tt, pos = _head(data, pos, end, field + ".type")
    if major != 0:
        raise _wrong(field + ".type", "an unsigned integer", major)
    if tt > 255:
        raise DecodeError(f"transport type {tt} is larger than 255", field=field + ".type")
    major, n, pos = _head(data, pos, end, field + ".inner")
    if major != 2:
        raise _wrong(field + ".inner", "a byte string", major)
    stop = pos + n
    if stop > end:
        raise DecodeError("byte string runs past the end of the data", field=field + ".inner")
    return _new_tuple(Address, (tt, bytes(data[pos:stop]))), stop


def read_route(data: bytes | bytearray, pos: int, end: int, field: str) -> tuple[Route, int]:
    """Read one CBOR route (array of addresses) at ``pos``."""
    if pos < end and 0x80 <= data[pos] < 0x98:
        n = data[pos] - 0x80
        pos += 1
    else:
        major, n, pos = _head(data, pos, end, field)
        if major != 4:
            raise _wrong(field, "an array of addresses", major)
        if n > MAX_ROUTE_HOPS:
            raise DecodeError(f"a route has at most {MAX_ROUTE_HOPS} addresses, found {n}",
                              field=field)
        if n > end - pos:
            raise DecodeError("array longer than the data", field=field)
    if n == 1:
        a, pos = read_address(data, pos, end, field)
        return Route.from_tuple((a,)), pos
    addrs = []
    for i in range(n):
        a, pos = read_address(data, pos, end, field, i)
        addrs.append(a)
    return Route.from_tuple(tuple(addrs)), pos


def _decode_tail(data: bytes | bytearray, pos: int, end: int, tagged: bool,
                 view: memoryview | None, onward: Route, ret: Route) -> LocalMessage:
    """Decode the payload (and tracing context) after the routes and build the message."""
    if pos >= end:
        raise DecodeError("unexpected end of data", field="payload")
    h = data[pos]
    if 0x40 <= h < 0x58:
        n = h - 0x40
        pos += 1
    else:
        major, n, pos = _head(data, pos, end, "payload")
        if major != 2:
            raise _wrong("payload", "a byte string", major)
    stop = pos + n
    if stop > end:
        raise DecodeError("byte string runs past the end of the data", field="payload")
    if type(data) is bytes:
        payload = data[pos:stop]
    elif view is not None:
        payload = bytes(view[pos:stop])
    else:
        payload = bytes(memoryview(data)[pos:stop])
    pos = stop
    tracing = None
    if tagged:
        major, n, pos = _head(data, pos, end, "tracing_context")
        if major != 3:
            raise _wrong("tracing_context", "a text string", major)
        stop = pos + n
        if stop > end:
            raise DecodeError("text string runs past the end of the data",
                              field="tracing_context")
        try:
            tracing = bytes(data[pos:stop]).decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("text string is not valid UTF-8", field="tracing_context") from None
        pos = stop
    if pos != end:
        raise DecodeError(f"{end - pos} trailing bytes", field="frame")
    m = _new_message(LocalMessage)
    m.onward_route = onward
    m.return_route = ret
    m.payload = payload
    m.local_info = ()
    m.tracing_context = tracing
    return m


_new_message = LocalMessage.__new__


def _body_start(data: bytes | bytearray, pos: int, end: int) -> int:
    """Check the body's array head; return 0x83 or 0x84."""
    if end - pos > MAX_FRAME_SIZE:
        raise DecodeError(f"{end - pos} bytes is larger than the {MAX_FRAME_SIZE}-byte limit",
                          field="frame")
    if pos >= end:
        raise DecodeError("empty frame body", field="frame")
    ib = data[pos]
    if ib == 0x83 or ib == 0x84:
        return ib
    major, n, pos = _head(data, pos, end, "frame")
    if major != 4:
        raise _wrong("frame", "an array", major)
    raise DecodeError(f"expected an array of 3 or 4 elements, found {n}", field="frame")


def decode_body(data: bytes | bytearray, pos: int = 0, end: int | None = None,
                view: memoryview | None = None) -> LocalMessage:
    """Decode a frame body occupying ``data[pos:end]`` exactly.

    ``view`` (a memoryview of ``data``) lets the payload be copied out once from a bytearray.
    """
    if end is None:
        end = len(data)
    ib = _body_start(data, pos, end)
    onward, pos = read_route(data, pos + 1, end, "onward_route")
    ret, pos = read_route(data, pos, end, "return_route")
    return _decode_tail(data, pos, end, ib == 0x84, view, onward, ret)


VIEW_FROM: Final = 16 * 1024
"""A payload this large, read as part of an immutable ``bytes`` (the ``data_received`` path),
becomes a read-only ``memoryview`` of it instead of a copy (see :meth:`FrameDecoder.receive`)."""


def _drain_fast(buf: bytes | bytearray, view: memoryview, start: int, end: int,
                limit: int, routes: list[tuple[bytes, Route, Route, bytes]],
                deliver: Callable[[LocalMessage], object], immutable: bool,
                views: bool = False) -> tuple[int, LocalMessage | None, object]:
    """Decode and deliver the frames of ``buf[start:end]`` that take the fast path: a
    3-element body whose routes match a recent frame's (``routes``), then a payload that ends
    the body exactly. Stops at the first other frame, an incomplete one, or when ``deliver``
    returns something: ``(next start, the refused message or None, what deliver returned)``.
    ``view`` is a memoryview of ``buf``; ``immutable``: ``buf`` is ``bytes``, so a large
    payload (:data:`VIEW_FROM`) may be a view of it (it can never change); else ``buf`` is a
    reused buffer, and a large payload is a (writable) view of it only with ``views``: valid
    while ``deliver`` runs (see :meth:`FrameDecoder.drain`); every other payload is a copy.
    """
    new_message = _new_message
    while end - start >= 4:
        n = _unpack_u32(buf, start)[0]
        if n > limit or end - start - 4 < n or not n:
            break
        pos = start + 4
        stop = pos + n
        for entry in routes:  # the body's start: 0x83 (3 elements), then known routes
            if buf.startswith(entry[3], pos, stop):
                break
        else:
            break
        onward = entry[1]
        ret = entry[2]
        p = pos + len(entry[3])
        h = buf[p] if p < stop else 0
        if 0x40 <= h < 0x58:
            size = h - 0x40
            p += 1
        # (a non-shortest length head pushes p past stop: the general path reports it)
        elif h == 0x58 and p + 2 <= stop:
            size = buf[p + 1]
            p += 2 if size >= 24 else stop
        elif h == 0x59 and p + 3 <= stop:
            size = (buf[p + 1] << 8) | buf[p + 2]
            p += 3 if size >= 0x100 else stop
        elif h == 0x5A and p + 5 <= stop:
            size = _unpack_u32(buf, p + 1)[0]
            p += 5 if size >= 0x10000 else stop
        else:
            break
        if p + size != stop or not onward.addresses:
            break
        msg = new_message(LocalMessage)
        msg.onward_route = onward
        msg.return_route = ret
        if stop - p >= VIEW_FROM and (immutable or views):
            msg.payload = view[p:stop]  # type: ignore[assignment]
        elif immutable:
            msg.payload = buf[p:stop]  # type: ignore[assignment]  # (buf is bytes here)
        else:
            msg.payload = bytes(view[p:stop])
        msg.local_info = ()
        msg.tracing_context = None
        start = stop
        result = deliver(msg)
        if result is not None:
            return start, msg, result
    return start, None, None


# ---------------------------------------------------------------------------------------------
# incremental decoder


_EMPTY: Final = bytearray()
_EMPTY_VIEW: Final = memoryview(_EMPTY)

_POOL: list[bytearray] = []
"""Released buffers kept for reuse by any decoder (a busy connection takes one back at once
instead of allocating): at most :data:`_POOL_MAX` of at most :data:`_POOL_BUFFER_MAX` bytes, so
the process holds at most 512 KiB for all its connections, not a buffer per connection
(larger buffers go back to the C allocator: pooling them measured slower, as the allocator then
keeps mapping fresh pages)."""
_POOL_MAX: Final = 8
_POOL_BUFFER_MAX: Final = 64 * 1024


def _take_buffer(size: int) -> bytearray:
    """A buffer of at least ``size`` bytes: the largest pooled one when it is large enough
    (so a busy connection does not have to grow it again)."""
    pool = _POOL
    if pool and len(pool[-1]) >= size:
        return pool.pop()
    return bytearray(size)


def _give_buffer(buf: bytearray) -> None:
    """Return a released buffer to the pool (kept sorted by size; the smallest go first)."""
    if len(buf) <= _POOL_BUFFER_MAX:
        pool = _POOL
        if len(pool) >= _POOL_MAX:
            if not pool or len(buf) <= len(pool[0]):
                return
            del pool[0]
        pool.append(buf)
        if len(pool) > 1 and len(pool[-2]) > len(buf):
            pool.sort(key=len)


class FrameDecoder:
    """Incremental decoder of one direction of a TCP connection.

    Feed bytes with :meth:`feed` (or read straight into :meth:`get_buffer` and report with
    :meth:`buffer_updated`), then pull messages with :meth:`next_message` until it returns
    ``None``. The buffer is allocated only when bytes must be kept (a frame split across
    reads), grows geometrically (a frame trickled byte by byte costs linear time) and is
    released as soon as everything buffered is decoded, so an idle decoder holds no buffer:
    memory follows the bytes received, not the number of connections.
    The decoder remembers the encoded routes of the last few frames, so a conversation that
    keeps the same routes skips decoding them again.
    """

    DEFAULT_BUFFER_SIZE: Final = 4096
    """The smallest buffer allocated when bytes must be kept."""
    _MIN_FREE: Final = 16 * 1024
    _ROUTE_CACHE: Final = 4
    _ROUTE_CACHE_MAX_BYTES: Final = 512

    __slots__ = ("_buf", "_end", "_error", "_limit", "_max", "_mv", "_need_preamble", "_routes",
                 "_size", "_start", "copied", "heartbeats")

    def __init__(self, *, preamble: bool = True, max_frame_size: int = MAX_FRAME_SIZE,
                 buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        self._size = max(buffer_size, 64)
        self._buf = _EMPTY
        self._mv = _EMPTY_VIEW
        self._start = 0
        self._end = 0
        self._need_preamble = preamble
        self._max = max_frame_size
        self._limit = max_frame_size
        self._error: DecodeError | None = None
        self._routes: list[tuple[bytes, Route, Route, bytes]] = []
        """Recent frames' encoded routes: (bytes, onward, return, 0x83 + bytes)."""
        self.heartbeats = 0
        """Heartbeat frames seen (checked, then skipped)."""
        self.copied = 0
        """Bytes moved inside the buffer (compaction and growth): linear in the bytes fed."""

    # -- input -----------------------------------------------------------------------------------
    @property
    def buffered(self) -> int:
        """Bytes received but not yet decoded."""
        return self._end - self._start

    @property
    def capacity(self) -> int:
        """Size of the internal buffer (for memory accounting; 0 when nothing is kept)."""
        return len(self._buf)

    def _make_room(self, want: int) -> None:
        """Ensure ``want`` free bytes after the buffered data (compact, or grow geometrically)."""
        start, end = self._start, self._end
        size = len(self._buf)
        if size - end >= want:
            return
        used = end - start
        if used + want <= size and used <= size // 2:
            if used:
                self._mv[0:used] = self._mv[start:end]
                self.copied += used
            self._start, self._end = 0, used
            return
        need = max(used + want, 2 * size, self._size)
        new = _take_buffer(1 << (need - 1).bit_length() if need <= _POOL_BUFFER_MAX else need)
        if used:
            new[0:used] = self._mv[start:end]
            self.copied += used
        if self._buf is not _EMPTY:
            self._mv.release()
            _give_buffer(self._buf)
        self._buf = new
        self._mv = memoryview(new)
        self._start, self._end = 0, used

    def release(self) -> None:
        """Drop the buffer and anything buffered (e.g. when the connection closes)."""
        self._start = self._end = 0
        if self._buf is not _EMPTY:
            self._mv.release()
            _give_buffer(self._buf)
            self._buf = _EMPTY
            self._mv = _EMPTY_VIEW

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """A writable view to receive into (for ``asyncio.BufferedProtocol.get_buffer``)."""
        end = self._end
        if self._start == end:  # everything decoded (the usual case): the whole buffer
            self._start = self._end = end = 0
        if len(self._buf) - end < self._MIN_FREE:
            start = self._start
            want = self._MIN_FREE
            if end - start >= 4 and not self._need_preamble:
                n = _unpack_u32(self._buf, start)[0]
                if n <= self._max:  # room for the frame, but at most double what is buffered
                    want = max(want, min(4 + n - (end - start), 2 * (end - start)))
            self._make_room(want)
            end = self._end
        return self._mv[end:]

    def buffer_updated(self, nbytes: int) -> None:
        """Report that ``nbytes`` were written at the start of the last :meth:`get_buffer`."""
        self._end += nbytes

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        if self._error is not None:
            raise self._error
        n = len(data)
        if n == 0:
            return
        self._make_room(n)
        end = self._end
        self._mv[end : end + n] = data
        self._end = end + n

    # -- output ----------------------------------------------------------------------------------
    def _fail(self, e: DecodeError) -> DecodeError:
        self._error = e
        self.release()
        self._limit = -1  # every later frame header hits the (checking) oversize branch
        return e

    def next_message(self) -> LocalMessage | None:
        """The next complete message, or ``None`` when more bytes are needed."""
        buf = self._buf
        while True:
            start = self._start
            avail = self._end - start
            if avail < 4:
                if self._error is not None:
                    raise self._error
                if self._need_preamble and avail:
                    self._check_preamble()
                    continue
                if not avail:
                    self._start = self._end = 0
                    if buf is not _EMPTY:
                        self.release()
                return None
            if self._need_preamble:
                self._check_preamble()
                continue
            n = _unpack_u32(buf, start)[0]
            if n > self._limit:
                if self._error is not None:
                    raise self._error
                raise self._fail(DecodeError(
                    f"frame of {n} bytes is larger than the {self._max}-byte limit",
                    field="frame"))
            if avail - 4 < n:
                return None
            pos = start + 4
            stop = pos + n
            self._start = stop
            try:
                msg = self._decode(buf, pos, stop)
            except DecodeError as e:
                raise self._fail(e) from None
            if msg is None:
                self.heartbeats += 1
                continue
            return msg

    def _check_preamble(self) -> None:
        b = self._buf[self._start]
        if b != 1:
            raise self._fail(DecodeError(f"unsupported protocol version {b} (expected 1)",
                                         field="preamble"))
        self._need_preamble = False
        self._start += 1

    def _decode(self, buf: bytearray, pos: int, end: int) -> LocalMessage | None:
        ib = _body_start(buf, pos, end)
        pos += 1
        for entry in self._routes:
            prefix = entry[0]
            if buf.startswith(prefix, pos, end):
                onward, ret = entry[1], entry[2]
                pos += len(prefix)
                break
        else:
            onward, mid = read_route(buf, pos, end, "onward_route")
            ret, mid = read_route(buf, mid, end, "return_route")
            if mid - pos <= self._ROUTE_CACHE_MAX_BYTES:
                routes = self._routes
                prefix = bytes(self._mv[pos:mid])
                routes.insert(0, (prefix, onward, ret, b"\x83" + prefix))
                if len(routes) > self._ROUTE_CACHE:
                    routes.pop()
            pos = mid
        msg = _decode_tail(buf, pos, end, ib == 0x84, self._mv, onward, ret)
        if not onward.addresses:
            return None
        return msg

    def drain(self, deliver: Callable[[LocalMessage], T | None], *, views: bool = False
              ) -> tuple[LocalMessage, T] | None:
        """Decode every complete frame and hand each message to ``deliver``.

        ``deliver`` returns ``None`` to go on; anything else stops the draining (e.g. "the
        target mailbox is full") and is returned with the message it was given. Undecoded
        bytes stay buffered. Frames whose routes match a recent frame's are decoded inline;
        anything else goes through :meth:`next_message` (which checks everything and raises
        :class:`DecodeError`).

        ``views``: a large payload (:data:`VIEW_FROM`) decoded from the decoder's reused
        buffer may be a *writable* ``memoryview`` of it, valid only while ``deliver`` runs
        (``deliver`` copies it if it keeps it: the node does, see
        :attr:`~trust.node.worker.Worker.takes_transient_views`); a message returned (refused)
        owns its bytes. Without it, every such payload is a copy.
        """
        while True:
            start, end = self._start, self._end
            if start == end:  # all decoded (the usual way out)
                self._start = self._end = 0
                if self._buf is not _EMPTY:
                    self.release()
                return None
            if not self._need_preamble:
                start, msg, result = _drain_fast(self._buf, self._mv, start, end, self._limit,
                                                 self._routes, deliver, False, views)
                self._start = start
                if msg is not None:
                    payload: Any = msg.payload
                    if type(payload) is memoryview and not payload.readonly:
                        msg.payload = bytes(payload)  # (the buffer is reused: kept, so copied)
                    return (msg, result)  # type: ignore[return-value]
                if start == end:
                    continue
            # anything else: the general, checking path (preamble, errors, heartbeats, ...)
            msg = self.next_message()
            if msg is None:
                return None
            result = deliver(msg)
            if result is not None:
                return (msg, result)

    def receive(self, data: bytes, deliver: Callable[[LocalMessage], T | None], *,
                views: bool = False) -> tuple[LocalMessage, T] | None:
        """Take received bytes and :meth:`drain` (the ``asyncio.Protocol.data_received`` path).

        When nothing is buffered, complete frames are decoded straight from ``data`` (no
        copy into the buffer); only what is left over is buffered. A large payload decoded
        that way (:data:`VIEW_FROM` bytes or more) is a read-only ``memoryview`` of ``data``
        (which never changes), not a copy: the node hands it on as is only to an endpoint that
        takes views (a secure channel's decryptor), and copies it for any other. ``views``:
        as :meth:`drain`, for a frame completed in the buffer.
        """
        if type(data) is not bytes:
            self.feed(data)
            return self.drain(deliver, views=views)
        begin = 0
        if self._start != self._end:
            # a frame split across reads: complete it with just the bytes it needs, decode it,
            # then decode the rest straight from ``data`` (only a new partial frame is kept)
            begin = self._complete(data)
            if begin < 0:
                self.feed(data)
                return self.drain(deliver, views=views)
            blocked = self.drain(deliver, views=views)
            if blocked is not None or begin == len(data):
                if begin < len(data):
                    self.feed(memoryview(data)[begin:])
                return blocked
        elif self._need_preamble:
            if not data or self._error is not None:
                self.feed(data)
                return self.drain(deliver, views=views)
            if data[0] != 1:
                raise self._fail(DecodeError(f"unsupported protocol version {data[0]} "
                                             "(expected 1)", field="preamble"))
            self._need_preamble = False
            begin = 1
        end = len(data)
        start, msg, result = _drain_fast(data, memoryview(data), begin, end, self._limit,
                                         self._routes, deliver, True)
        if start != end:
            self.feed(memoryview(data)[start:])
            if msg is None:
                return self.drain(deliver, views=views)
        if msg is not None:
            return (msg, result)  # type: ignore[return-value]
        return None

    def _complete(self, data: bytes) -> int:
        """Feed the bytes of ``data`` that complete the buffered frame; return how many, or -1
        when that is not possible (the header is incomplete, or ``data`` does not finish it)."""
        start, end = self._start, self._end
        if end - start < 4 or self._need_preamble or self._error is not None:
            return -1
        n = _unpack_u32(self._buf, start)[0]
        need = 4 + n - (end - start)
        if n > self._limit or need > len(data) or need < 0:
            return -1
        if need:
            self.feed(memoryview(data)[:need])
        return need

    def __iter__(self) -> Iterator[LocalMessage]:
        """Pull every complete message."""
        out: list[LocalMessage] = []
        self.drain(out.append)
        return iter(out)

    def decode(self, data: bytes | bytearray | memoryview) -> list[LocalMessage]:
        """Feed ``data`` and return every message it completes."""
        self.feed(data)
        return list(self)
