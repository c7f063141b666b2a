"""The stream service's envelope. A request is ``[id: uint, op: uint, body]``; a response is
``[id: uint, status: uint, body]`` with status 0 (ok: the operation's reply) or the
:class:`~trust.streams.messages.error_reply.ErrorReply` code (body: an ``ErrorReply``). ``id``
is the client's, echoed so it can match replies to requests (at most 2**32 - 1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from trust.errors import DecodeError
from trust.models.cbor import Reader, enc_uint
from trust.streams.messages.common import MAX_MESSAGE
from trust.streams.messages.create_stream import CreateStream
from trust.streams.messages.delete_stream import DeleteStream
from trust.streams.messages.index_get import IndexGet
from trust.streams.messages.index_save import IndexSave
from trust.streams.messages.list_streams import ListStreams
from trust.streams.messages.pull import Pull
from trust.streams.messages.push import Push

__all__ = ["MAX_ID", "OPERATIONS", "Operation", "Request", "Response", "decode_request",
           "decode_response_head", "encode_request", "encode_response"]

MAX_ID: Final = 0xFFFF_FFFF
Operation = CreateStream | Push | Pull | IndexGet | IndexSave | ListStreams | DeleteStream
OPERATIONS: Final[dict[int, type[Operation]]] = {
    t.op: t for t in (CreateStream, Push, Pull, IndexGet, IndexSave, ListStreams, DeleteStream)
}


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    operation: Operation


@dataclass(frozen=True, slots=True)
class Response:
    id: int
    status: int
    body: bytes
    """The encoded body (decode it with the type the request expects)."""


def encode_request(req_id: int, operation: Operation) -> bytes:
    return b"\x83" + enc_uint(req_id) + enc_uint(operation.op) + operation.encode()


def decode_request(data: bytes) -> Request:
    """One request, strictly: a known operation, valid fields, nothing after it."""
    if len(data) > MAX_MESSAGE:
        raise DecodeError(f"a request of {len(data)} bytes is over the {MAX_MESSAGE}-byte limit",
                          field="request")
    r = Reader(data)
    r.array("request", 3)
    req_id = r.uint("id", max_value=MAX_ID)
    op = r.uint("op", max_value=255)
    kind = OPERATIONS.get(op)
    if kind is None:
        raise DecodeError(f"unknown stream operation {op}", field="op")
    operation = kind.read(r)
    r.end("request")
    return Request(req_id, operation)


def encode_response(req_id: int, status: int, body: bytes) -> bytes:
    return b"\x83" + enc_uint(req_id) + enc_uint(status) + body


def decode_response_head(data: bytes) -> tuple[int, int, Reader]:
    """``(id, status, reader at the body)``; the caller reads the body and calls ``end``."""
    if len(data) > MAX_MESSAGE:
        raise DecodeError(f"a response of {len(data)} bytes is over the {MAX_MESSAGE}-byte limit",
                          field="response")
    r = Reader(data)
    r.array("response", 3)
    req_id = r.uint("id", max_value=MAX_ID)
    status = r.uint("status", max_value=255)
    return req_id, status, r
