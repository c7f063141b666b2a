"""Local stand-ins used by ``truststack demo`` (:mod:`trust.demo`), all on 127.0.0.1 and all
stopped by their ``close()``:

* :class:`Wiretap`: a TCP proxy in front of a node's listener that keeps a copy of every byte it
  passes (bounded), so the demo can show what the node's transport carried;
* :class:`BankService`: a small HTTP server (Bank Corp's application) whose answer carries a
  marker that must never appear on the wire between the nodes;
* :class:`LocalPostgres`: a throwaway PostgreSQL server (``initdb`` + ``pg_ctl`` from Debian's
  ``postgresql`` package, in a temporary directory, as the ``postgres`` user when run as root).
"""

from __future__ import annotations

import contextlib
import glob
import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from trust.errors import TrustError

__all__ = ["BankService", "LocalPostgres", "Wiretap", "postgres_binary"]


class Wiretap:
    """Listens on a free 127.0.0.1 port and relays each connection to ``target_port``, keeping
    the first ``limit`` bytes that pass (both directions, in arrival order) in
    :attr:`captured` and counting all of them in :attr:`total`."""

    def __init__(self, target_port: int, *, limit: int = 16 << 20) -> None:
        self.target = ("127.0.0.1", target_port)
        self.limit = limit
        self.captured = bytearray()
        self.total = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = False
        self._server = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="wiretap", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self.connections += 1
                self._sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), name="wiretap-pump",
                                 daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    self.total += len(data)
                    room = self.limit - len(self.captured)
                    if room > 0:
                        self.captured += data[:room]
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def snapshot(self) -> bytes:
        with self._lock:
            return bytes(self.captured)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, set()
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        with contextlib.suppress(OSError):
            self._server.close()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._thread.join(timeout=2)


class BankService:
    """Bank Corp's application: an HTTP server on a free 127.0.0.1 port that answers every
    ``GET`` with a short ledger page containing :attr:`marker`."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.requests = 0
        body = (f"Bank Corp ledger\naccount 4711 balance 1,250,000.00 EUR\n{marker}\n").encode()
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="bank-service", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)


def postgres_binary(name: str) -> str | None:
    """Debian's PostgreSQL program ``name`` (newest version first), else one on ``PATH``."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return found[0] if found else shutil.which(name)


class LocalPostgres:
    """A throwaway PostgreSQL server on a free 127.0.0.1 port (trust authentication, user
    ``postgres``), in a temporary directory removed by :meth:`close`."""

    def __init__(self) -> None:
        initdb, self._pg_ctl = postgres_binary("initdb"), postgres_binary("pg_ctl")
        if initdb is None or self._pg_ctl is None:
            raise TrustError("--postgres needs PostgreSQL's initdb and pg_ctl (Debian: apt-get "
                             "install postgresql), or a server: --postgres-url URL")
        root = os.geteuid() == 0
        # (as root, the server runs as the postgres user, who must reach its directory)
        self.root = Path(tempfile.mkdtemp(prefix="truststack-demo-pg-",
                                          dir="/tmp" if root else None))  # noqa: S108 (mkdtemp)
        self._as: list[str] = []
        if root:  # initdb refuses to run as root
            shutil.chown(self.root, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self.port = 0
        self.user = "postgres"
        try:
            self._run([initdb, "-D", str(self.root / "data"), "-A", "trust", "-U", "postgres",
                       "--no-sync", "-E", "UTF8", "--locale=C"], "initdb")
            for attempt in range(3):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    self.port = s.getsockname()[1]
                opts = (f"-k {self.root} -p {self.port} -c listen_addresses=127.0.0.1 "
                        "-c fsync=off -c shared_buffers=16MB")
                try:
                    self._run([self._pg_ctl, "-D", str(self.root / "data"), "-o", opts, "-l",
                               str(self.root / "log"), "-w", "-t", "30", "start"], "pg_ctl start")
                    break
                except TrustError:
                    if attempt == 2:
                        raise
        except BaseException:
            self.close()
            raise

    def _run(self, cmd: list[str], what: str) -> None:
        p = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise TrustError(f"{what} failed: {(p.stderr or p.stdout).strip()[-300:]}")

    def close(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                subprocess.run([*self._as, self._pg_ctl or "pg_ctl", "-D",
                                str(self.root / "data"), "-m", "immediate", "-w", "stop"],
                               capture_output=True, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)
