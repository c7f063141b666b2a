"""The control protocol of a background node (sans-IO part), documented in ``docs/node.md``.

One JSON object per line (UTF-8, ``\\n``-terminated, at most :data:`MAX_LINE` bytes) over the
node's control endpoint (a Unix socket, or loopback TCP with a token).

Request::

    {"id": 1, "method": "node.show", "params": {}, "token": "<hex, TCP endpoints only>"}

Response (same ``id``)::

    {"id": 1, "ok": true, "result": {...}}
    {"id": 1, "ok": false, "error": {"kind": "not_found", "message": "no worker at 0#x"}}

Error kinds map to the :mod:`trust.errors` classes (:data:`ERROR_KINDS`), so a client raises
the same error the node raised.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from trust.errors import (
    ConflictError,
    DecodeError,
    NotFoundError,
    PolicyError,
    RemoteProtocolError,
    StorageError,
    TrustError,
    UntrustedError,
    UsageError,
    VaultError,
    VerificationError,
)
from trust.node.errors import NodeStoppedError, ReceiveTimeoutError

__all__ = [
    "ERROR_KINDS",
    "MAX_DEPTH",
    "MAX_LINE",
    "ControlError",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_request",
    "encode_result",
    "error_from_wire",
]

MAX_LINE: Final = 1024 * 1024
#: The deepest nesting of arrays and objects a control line may have (checked before parsing).
MAX_DEPTH: Final = 32
#: Request ids are JSON integers in this range (a client counts up from 1).
MAX_ID: Final = 2**53

_STRING_OR_BRACKET: Final = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


class ControlError(TrustError):
    """The node reported an error of a kind this client does not know."""


ERROR_KINDS: Final[dict[str, type[Exception]]] = {
    "usage": UsageError,
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "decode": DecodeError,
    "verification": VerificationError,
    "untrusted": UntrustedError,
    "remote_protocol": RemoteProtocolError,
    "storage": StorageError,
    "timeout": ReceiveTimeoutError,
    "stopped": NodeStoppedError,
    "vault": VaultError,
    "policy": PolicyError,
    "error": TrustError,
}


def _kind_of(e: BaseException) -> str:
    for kind, cls in ERROR_KINDS.items():
        if kind != "error" and isinstance(e, cls):
            return kind
    return "error" if isinstance(e, TrustError) else "internal"


def _line(obj: dict[str, Any]) -> bytes:
    data = json.dumps(obj, separators=(",", ":")).encode("utf-8") + b"\n"
    if len(data) > MAX_LINE:
        raise UsageError(f"control message of {len(data)} bytes exceeds {MAX_LINE} bytes")
    return data


def encode_request(req_id: int, method: str, params: dict[str, Any] | None = None,
                   token: str | None = None) -> bytes:
    obj: dict[str, Any] = {"id": req_id, "method": method, "params": params or {}}
    if token is not None:
        obj["token"] = token
    return _line(obj)


def too_deep(line: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether ``[``/``{`` nest deeper than ``limit`` in ``line`` (outside JSON strings).

    A linear scan that never recurses, run before parsing so that a hostile line cannot exhaust
    the parser's stack.
    """
    if line.count(b"[") + line.count(b"{") <= limit:
        return False
    depth = 0
    for m in _STRING_OR_BRACKET.finditer(line):
        c = m.group()
        if c == b"[" or c == b"{":
            depth += 1
            if depth > limit:
                return True
        elif c == b"]" or c == b"}":
            depth -= 1
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(line: bytes, what: str) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise RemoteProtocolError(f"control {what} longer than {MAX_LINE} bytes")
    if too_deep(line):
        raise RemoteProtocolError(f"control {what} nested deeper than {MAX_DEPTH} levels")
    try:
        obj = json.loads(line, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RemoteProtocolError(f"control {what} is not JSON") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError(f"control {what} is not a JSON object")
    return obj


def decode_request(line: bytes) -> tuple[int, str, dict[str, Any], str | None]:
    """``(id, method, params, token)`` of a request line; :class:`RemoteProtocolError` if bad."""
    obj = _parse(line, "request")
    req_id = obj.get("id")
    method = obj.get("method")
    params = obj.get("params", {})
    token = obj.get("token")
    if not isinstance(req_id, int) or isinstance(req_id, bool) or not 0 <= req_id <= MAX_ID:
        raise RemoteProtocolError(f"control request needs an integer 'id' from 0 to {MAX_ID}")
    if not isinstance(method, str) or not method:
        raise RemoteProtocolError("control request needs a 'method' string")
    if not isinstance(params, dict):
        raise RemoteProtocolError("control request 'params' must be an object")
    if token is not None and not isinstance(token, str):
        raise RemoteProtocolError("control request 'token' must be a string")
    return req_id, method, params, token


def encode_result(req_id: int, result: dict[str, Any]) -> bytes:
    return _line({"id": req_id, "ok": True, "result": result})


def encode_error(req_id: int | None, e: BaseException) -> bytes:
    kind = _kind_of(e)
    message = str(e) if kind != "internal" else f"internal error ({type(e).__name__}): {e}"
    return _line({"id": req_id, "ok": False,
                  "error": {"kind": kind, "message": " ".join(message.split())}})


def error_from_wire(error: Any) -> Exception:
    """The exception a client raises for a response's ``error`` object."""
    if not isinstance(error, dict):
        return RemoteProtocolError("malformed error in control response")
    kind = error.get("kind")
    message = str(error.get("message", "unknown error"))
    cls = ERROR_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return ControlError(message)
    if cls is DecodeError:
        return DecodeError(message)
    return cls(message)


def decode_response(line: bytes, req_id: int) -> dict[str, Any]:
    """The ``result`` of a response line, or raise the error it carries."""
    obj = _parse(line, "response")
    if obj.get("id") is None and obj.get("ok") is False:
        # an error about the connection rather than a request (e.g. too many connections)
        raise error_from_wire(obj.get("error"))
    if obj.get("id") != req_id:
        raise RemoteProtocolError("control response does not answer the request")
    if obj.get("ok") is True:
        result = obj.get("result")
        if not isinstance(result, dict):
            raise RemoteProtocolError("control response 'result' must be an object")
        return result
    raise error_from_wire(obj.get("error"))
