"""The control endpoint server of a background node (asyncio).

Handlers are ``async def handler(params: dict) -> dict`` registered by method name
(``server.register("node.show", handler)``); errors they raise are sent back as typed errors
(see :mod:`trust.node.control`). The server listens on a Unix socket (mode 0600, inside the
node's 0700 directory) or, when that path is too long, on 127.0.0.1 with a random token that
every request must carry (compared in constant time, as bytes; a token that is not ASCII is
refused like a wrong one).

Input is bounded: a request line is at most :data:`~trust.node.control.MAX_LINE` bytes and
:data:`~trust.node.control.MAX_DEPTH` levels deep, at most :data:`MAX_CONNECTIONS` connections
are served at once (more are answered with an error and closed), a connection that sends no
complete line for :data:`IDLE_TIMEOUT` seconds is closed, and so is one whose answer cannot be
written within that time (a client that does not read).

On a TCP endpoint, which any local user can reach, a connection is *unauthenticated* until one
of its requests carries the token: it must do so within :data:`AUTH_TIMEOUT` seconds of
connecting (requests without it are answered with an error meanwhile), or it is closed.
Unauthenticated connections have their own, smaller share of the slots
(:data:`MAX_UNAUTHENTICATED`; when it is full the oldest of them is closed to make room), so
connections without the token never take the :data:`MAX_CONNECTIONS` slots of those with it.
A Unix socket is reachable only by the node's owner: its connections count as authenticated.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from trust.errors import NotFoundError, RemoteProtocolError, UntrustedError
from trust.node.control import MAX_LINE, decode_request, encode_error, encode_result

__all__ = ["AUTH_TIMEOUT", "IDLE_TIMEOUT", "MAX_CONNECTIONS", "MAX_UNAUTHENTICATED", "ControlHandler",
           "ControlServer", "token_matches"]

log = logging.getLogger("trust.node.control")

ControlHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

#: Control connections served at once; one more is told so and closed.
MAX_CONNECTIONS = 64
#: Seconds a control connection may wait between complete request lines.
IDLE_TIMEOUT = 60.0
#: TCP connections without the token yet, served at once (besides the :data:`MAX_CONNECTIONS`).
MAX_UNAUTHENTICATED = 16
#: Seconds a TCP connection has, from connecting, to send a request that carries the token.
AUTH_TIMEOUT = 5.0
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
                 idle_timeout: float = IDLE_TIMEOUT, max_unauthenticated: int = MAX_UNAUTHENTICATED,
                 auth_timeout: float = AUTH_TIMEOUT) -> None:
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.max_unauthenticated = max_unauthenticated
        self.auth_timeout = auth_timeout
        self._authenticated: set[asyncio.Task[None]] = set()
        self._unauthenticated: OrderedDict[asyncio.Task[None], asyncio.StreamWriter] = OrderedDict()
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
            w.transport.abort()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        if tasks:
            # their connections are closed under them: each task sees the end of its stream (a
            # running request is abandoned within _LEFT_CHECK) and ends; those that do not are
            # cancelled (which asyncio's stream server logs as an error)
            _, pending = await asyncio.wait(tasks, timeout=_LEFT_CHECK * 4)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if self._unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._unix_path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self.token is None:
            if len(self._authenticated) >= self.max_connections:
                self._too_many(writer, None)
                return
            self._authenticated.add(task)
        else:
            while len(self._unauthenticated) >= self.max_unauthenticated:
                # closed under it: its task sees the end of the stream and ends (not cancelled,
                # which asyncio's stream server would log as an error)
                _, oldest_writer = self._unauthenticated.popitem(last=False)
                oldest_writer.transport.abort()
            self._unauthenticated[task] = writer
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            line: bytes | None = None
            if self.token is not None:
                line = await self._authenticate(reader, writer)
                if self._unauthenticated.pop(task, None) is None or line is None:
                    return  # made room for a newer connection, or no token in time
                if len(self._authenticated) >= self.max_connections:
                    req_id = decode_request(line)[0]
                    self._too_many(writer, req_id)
                    return
                self._authenticated.add(task)
            while True:
                if line is None:
                    line = await self._read_line(reader, writer, self.idle_timeout)
                    if line is None:
                        break
                answer = await self._answer_unless_left(line, reader)
                line = None
                if answer is None:
                    break
                writer.write(answer)
                if not await self._drained(writer, self.idle_timeout):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._unauthenticated.pop(task, None)
            self._authenticated.discard(task)
            self._writers.discard(writer)
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()  # what is left unwritten would hold the connection open
            else:
                writer.close()
            self._tasks.discard(task)

    def _too_many(self, writer: asyncio.StreamWriter, req_id: int | None) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            writer.write(encode_error(req_id, RemoteProtocolError(
                f"too many control connections (at most {self.max_connections})")))
            writer.close()

    async def _read_line(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         timeout: float | None) -> bytes | None:
        """The next request line; ``None`` at its end, after ``timeout`` or an over-long line."""
        try:
            async with asyncio.timeout(timeout):
                line = await reader.readline()
        except TimeoutError:
            return None
        except (asyncio.LimitOverrunError, ValueError):
            writer.write(encode_error(None, RemoteProtocolError(
                f"control request longer than {MAX_LINE} bytes")))
            return None
        return line or None

    @staticmethod
    async def _drained(writer: asyncio.StreamWriter, timeout: float | None) -> bool:
        """Whether what was written could be sent within ``timeout`` (else the client does not
        read, and its connection is to be closed)."""
        try:
            async with asyncio.timeout(timeout):
                await writer.drain()
        except TimeoutError:
            return False
        return True

    def _has_token(self, line: bytes) -> bool:
        assert self.token is not None
        try:
            token = decode_request(line)[3]
        except RemoteProtocolError:
            return False
        return token_matches(token, self.token)

    async def _authenticate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                            ) -> bytes | None:
        """The first request line of a TCP connection that carries the token, or ``None`` when
        none came within :attr:`auth_timeout` (or the connection ended); the requests before it
        are answered with their errors."""
        try:
            async with asyncio.timeout(self.auth_timeout):
                while True:
                    line = await self._read_line(reader, writer, self.idle_timeout)
                    if line is None or self._has_token(line):
                        return line
                    writer.write(await self._answer(line))
                    if not await self._drained(writer, self.idle_timeout):
                        return None
        except TimeoutError:
            return None

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
