"""The control endpoint server of a background node (asyncio).

Handlers are ``async def handler(params: dict) -> dict`` registered by method name
(``server.register("node.show", handler)``); errors they raise are sent back as typed errors
(see :mod:`trust.node.control`). The server listens on a Unix socket (mode 0600, inside the
node's 0700 directory) or, when that path is too long, on 127.0.0.1 with a random token that
every request must carry (compared in constant time, as bytes; a token that is not ASCII is
refused like a wrong one).

Input is bounded: a request line is at most :data:`~trust.node.control.MAX_LINE` bytes and
:data:`~trust.node.control.MAX_DEPTH` levels deep, at most :data:`MAX_CONNECTIONS` connections
are served at once (more are answered with an error and closed) and a connection that sends no
complete line for :data:`IDLE_TIMEOUT` seconds is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from trust.errors import NotFoundError, RemoteProtocolError, UntrustedError
from trust.node.control import MAX_LINE, decode_request, encode_error, encode_result

__all__ = ["IDLE_TIMEOUT", "MAX_CONNECTIONS", "ControlHandler", "ControlServer", "token_matches"]

log = logging.getLogger("trust.node.control")

ControlHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

#: Control connections served at once; one more is told so and closed.
MAX_CONNECTIONS = 64
#: Seconds a control connection may wait between complete request lines.
IDLE_TIMEOUT = 60.0
_LEFT_CHECK = 0.25
"""Seconds between checks, while a request runs, that its client is still connected."""


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a request's token with the node's (as ASCII bytes)."""
    if given is None or not given.isascii():
        return False
    return hmac.compare_digest(given.encode("ascii"), expected.encode("ascii"))


class ControlServer:
    """Serves the control protocol; register handlers, then :meth:`start_unix` or :meth:`start_tcp`."""

    def __init__(self, *, max_connections: int = MAX_CONNECTIONS,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.handlers: dict[str, ControlHandler] = {}
        self.token: str | None = None
        self.endpoint: dict[str, Any] = {}
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._unix_path: Path | None = None

    def register(self, method: str, handler: ControlHandler) -> None:
        """Serve ``method`` with ``handler`` (replacing any previous one)."""
        self.handlers[method] = handler

    @property
    def methods(self) -> list[str]:
        return sorted(self.handlers)

    async def start_unix(self, path: Path) -> dict[str, Any]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(path),
                                                           limit=MAX_LINE)
        finally:
            os.umask(old)
        self._unix_path = path
        self.endpoint = {"transport": "unix", "path": str(path)}
        return self.endpoint

    async def start_tcp(self, host: str = "127.0.0.1") -> dict[str, Any]:
        self.token = secrets.token_hex(32)
        self._server = await asyncio.start_server(self._serve, host, 0, limit=MAX_LINE)
        port = self._server.sockets[0].getsockname()[1]
        self.endpoint = {"transport": "tcp", "host": host, "port": port}
        return self.endpoint

    async def close(self) -> None:
        """Stop accepting, close open control connections and wait for their tasks."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for w in list(self._writers):
            w.close()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._unix_path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._tasks) >= self.max_connections:
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(encode_error(None, RemoteProtocolError(
                    f"too many control connections (at most {self.max_connections})")))
                writer.close()
            return
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        line = await reader.readline()
                except TimeoutError:
                    break
                except (asyncio.LimitOverrunError, ValueError):
                    writer.write(encode_error(None, RemoteProtocolError(
                        f"control request longer than {MAX_LINE} bytes")))
                    break
                if not line:
                    break
                answer = await self._answer_unless_left(line, reader)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            self._tasks.discard(task)

    async def _answer_unless_left(self, line: bytes, reader: asyncio.StreamReader
                                  ) -> bytes | None:
        """:meth:`_answer`, cancelled (``None``) when the client closes its connection first
        (e.g. Ctrl-C on ``relay create``, which waits for the registration): what it asked
        for is abandoned, and the handler's own clean-up runs, as on a timeout."""
        task = asyncio.ensure_future(self._answer(line))
        while True:
            done, _ = await asyncio.wait((task,), timeout=_LEFT_CHECK)
            if done:
                return task.result()
            if reader.at_eof():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                log.info("a control client left before its answer: its request was abandoned")
                return None

    async def _answer(self, line: bytes) -> bytes:
        req_id: int | None = None
        try:
            req_id, method, params, token = decode_request(line)
            if self.token is not None and not token_matches(token, self.token):
                raise UntrustedError("control request without the node's token")
            handler = self.handlers.get(method)
            if handler is None:
                raise NotFoundError(f"unknown control method {method!r} (known: "
                                    f"{', '.join(self.methods)})")
            return encode_result(req_id, await handler(params))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if not hasattr(e, "__module__") or not e.__class__.__module__.startswith(
                    ("trust", "policies", "vaults")):
                log.exception("control method failed")
            return encode_error(req_id, e)
