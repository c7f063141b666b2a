"""Ockam's request/response envelope (``ockam_core/src/api.rs``), CBOR:

* ``RequestHeader = {1: id u32, 2: path text, 3: method (0 GET, 1 POST, 2 PUT, 3 DELETE,
  4 PATCH), 4: has_body bool}``, then the body (one CBOR item) when ``has_body``;
* ``ResponseHeader = {1: id, 2: re (the request's id), 3: status (200, 400, ...), 4: has_body}``,
  then the body;
* an error body ``{1: path?, 2: method?, 3: message?, 4: cause?}`` plus, from us, ``5: code``
  (a stable error name; Ockam's decoder skips keys it does not know).

Decoders are strict: keys in increasing order, shortest heads, the body exactly one item, no
trailing bytes, at most :data:`~.common.MAX_MESSAGE_SIZE` bytes.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from typing import Final

from trust.enrollment.messages.common import MAX_MESSAGE_SIZE, encode_struct, read_struct
from trust.errors import DecodeError
from trust.models.cbor import Reader, check_size, enc_bool, enc_text, enc_uint

__all__ = [
    "MAX_PATH",
    "ErrorBody",
    "Method",
    "Request",
    "RequestHeader",
    "Response",
    "ResponseHeader",
    "Status",
    "fresh_id",
]

MAX_PATH: Final = 1024
"""Characters of a request path."""
_MAX_ERROR_TEXT: Final = 4096
_MAX_CAUSES: Final = 8
_U32: Final = 0xFFFF_FFFF


class Method(enum.IntEnum):
    GET = 0
    POST = 1
    PUT = 2
    DELETE = 3
    PATCH = 4


class Status(enum.IntEnum):
    OK = 200
    BAD_REQUEST = 400
    UNAUTHORIZED = 401
    FORBIDDEN = 403
    NOT_FOUND = 404
    METHOD_NOT_ALLOWED = 405
    TIMEOUT = 408
    CONFLICT = 409
    INTERNAL_SERVER_ERROR = 500
    NOT_IMPLEMENTED = 501


def fresh_id() -> int:
    """A random request/response id, never 0 (Ockam's ``Id::fresh``)."""
    return secrets.randbits(32) or 1


def _read_method(r: Reader, field: str) -> Method:
    at = r.pos
    n = r.uint(field)
    try:
        return Method(n)
    except ValueError:
        raise DecodeError(f"unknown method {n}", field=field, offset=at) from None


def _read_status(r: Reader, field: str) -> Status:
    at = r.pos
    n = r.uint(field)
    try:
        return Status(n)
    except ValueError:
        raise DecodeError(f"unknown status {n}", field=field, offset=at) from None


def _read_id(r: Reader, field: str) -> int:
    return r.uint(field, max_value=_U32)


def _read_path(r: Reader, field: str) -> str:
    at = r.pos
    path = r.text(field)
    if len(path) > MAX_PATH:
        raise DecodeError(f"a path is at most {MAX_PATH} characters", field=field, offset=at)
    return path


def _read_body(r: Reader, has_body: bool, field: str) -> bytes | None:
    body = r.raw_item(field) if has_body else None
    r.end(field)
    return body


def _check_u32(n: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= _U32:
        raise ValueError(f"{what} must be an unsigned 32-bit integer")
    return n


@dataclass(frozen=True, slots=True)
class RequestHeader:
    id: int
    path: str
    method: Method | None
    has_body: bool

    def encode(self) -> bytes:
        return encode_struct([
            (1, enc_uint(_check_u32(self.id, "id"))),
            (2, enc_text(self.path)),
            (3, None if self.method is None else enc_uint(int(self.method))),
            (4, enc_bool(self.has_body)),
        ])

    @classmethod
    def read(cls, r: Reader, field: str = "request") -> RequestHeader:
        f = read_struct(r, field, {1: _read_id, 2: _read_path, 3: _read_method, 4: Reader.bool},
                        required={1, 2, 4})
        return cls(f[1], f[2], f.get(3), f[4])


@dataclass(frozen=True, slots=True)
class Request:
    """A request: its header and, when it has one, the body's CBOR bytes."""

    header: RequestHeader
    body: bytes | None = None

    @classmethod
    def of(cls, method: Method, path: str, body: bytes | None = None, *,
           request_id: int | None = None) -> Request:
        if len(path) > MAX_PATH:
            raise ValueError(f"a path is at most {MAX_PATH} characters")
        return cls(RequestHeader(fresh_id() if request_id is None else request_id, path, method,
                                 body is not None), body)

    @property
    def id(self) -> int:
        return self.header.id

    @property
    def path(self) -> str:
        return self.header.path

    @property
    def method(self) -> Method | None:
        return self.header.method

    def encode(self) -> bytes:
        return self.header.encode() + (self.body or b"")

    @classmethod
    def decode(cls, data: bytes) -> Request:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError(f"expected bytes, got {type(data).__name__}", field="request")
        data = bytes(data)
        check_size(data, "request", MAX_MESSAGE_SIZE)
        r = Reader(data)
        header = RequestHeader.read(r)
        return cls(header, _read_body(r, header.has_body, "request.body"))


@dataclass(frozen=True, slots=True)
class ResponseHeader:
    id: int
    re: int
    status: Status | None
    has_body: bool

    def encode(self) -> bytes:
        return encode_struct([
            (1, enc_uint(_check_u32(self.id, "id"))),
            (2, enc_uint(_check_u32(self.re, "re"))),
            (3, None if self.status is None else enc_uint(int(self.status))),
            (4, enc_bool(self.has_body)),
        ])

    @classmethod
    def read(cls, r: Reader, field: str = "response") -> ResponseHeader:
        f = read_struct(r, field, {1: _read_id, 2: _read_id, 3: _read_status, 4: Reader.bool},
                        required={1, 2, 4})
        return cls(f[1], f[2], f.get(3), f[4])


@dataclass(frozen=True, slots=True)
class Response:
    """A response: its header and, when it has one, the body's CBOR bytes."""

    header: ResponseHeader
    body: bytes | None = None

    @classmethod
    def ok(cls, request: Request | int, body: bytes | None = None) -> Response:
        re = request if isinstance(request, int) else request.id
        return cls(ResponseHeader(fresh_id(), re, Status.OK, body is not None), body)

    @classmethod
    def error(cls, request: Request | int, status: Status, error: ErrorBody) -> Response:
        re = request if isinstance(request, int) else request.id
        return cls(ResponseHeader(fresh_id(), re, status, True), error.encode())

    @property
    def status(self) -> Status | None:
        return self.header.status

    @property
    def is_ok(self) -> bool:
        return self.header.status is Status.OK

    def encode(self) -> bytes:
        return self.header.encode() + (self.body or b"")

    @classmethod
    def decode(cls, data: bytes) -> Response:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError(f"expected bytes, got {type(data).__name__}", field="response")
        data = bytes(data)
        check_size(data, "response", MAX_MESSAGE_SIZE)
        r = Reader(data)
        header = ResponseHeader.read(r)
        return cls(header, _read_body(r, header.has_body, "response.body"))

    def error_body(self) -> ErrorBody:
        """The error of a failed response (Ockam also sends a bare text string; an empty body
        gives an error without message)."""
        if self.body is None:
            return ErrorBody()
        r = Reader(self.body)
        if self.body[:1] and self.body[0] >> 5 == 3:
            at = r.pos
            text = r.text("error")
            if len(text) > _MAX_ERROR_TEXT:
                raise DecodeError(f"an error message is at most {_MAX_ERROR_TEXT} characters",
                                  field="error", offset=at)
            return ErrorBody(message=text)
        body = ErrorBody.read(r)
        r.end("error")
        return body


def _read_error_text(r: Reader, field: str) -> str:
    at = r.pos
    text = r.text(field)
    if len(text) > _MAX_ERROR_TEXT:
        raise DecodeError(f"at most {_MAX_ERROR_TEXT} characters", field=field, offset=at)
    return text


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """Ockam's ``api::Error``, plus ``code`` (key 5): a stable error name."""

    path: str | None = None
    method: Method | None = None
    message: str | None = None
    cause: ErrorBody | None = None
    code: str | None = None

    def encode(self) -> bytes:
        return encode_struct([
            (1, None if self.path is None else enc_text(self.path)),
            (2, None if self.method is None else enc_uint(int(self.method))),
            (3, None if self.message is None else enc_text(self.message)),
            (4, None if self.cause is None else self.cause.encode()),
            (5, None if self.code is None else enc_text(self.code)),
        ])

    @classmethod
    def read(cls, r: Reader, field: str = "error", depth: int = 0) -> ErrorBody:
        if depth > _MAX_CAUSES:
            raise DecodeError(f"more than {_MAX_CAUSES} nested causes", field=field, offset=r.pos)

        def cause(r2: Reader, f2: str) -> ErrorBody:
            return cls.read(r2, f2, depth + 1)

        f = read_struct(r, field, {1: _read_path, 2: _read_method, 3: _read_error_text,
                                   4: cause, 5: _read_error_text})
        return cls(f.get(1), f.get(2), f.get(3), f.get(4), f.get(5))

    @classmethod
    def decode(cls, data: bytes) -> ErrorBody:
        check_size(bytes(data), "error", MAX_MESSAGE_SIZE)
        r = Reader(bytes(data))
        body = cls.read(r)
        r.end("error")
        return body
