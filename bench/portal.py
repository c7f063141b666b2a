"""Portal benchmark: bulk MB/s and 64-byte round trips/s through TCP portals, next to direct
loopback TCP and a stunnel TLS 1.3 tunnel on the same machine.

Configurations (each tunnel runs in processes of its own; the client and the target server in
two more, the same for all):

* ``direct``: the client connects to the target;
* ``stunnel``: stunnel4 (one process: a TLS 1.3 client service and a server service);
* ``portal``: a 2-node portal: node ``analysis`` (inlet) opens a secure channel to node
  ``bank`` (outlet) over TCP: two processes (each tunes its allocator at start as a node
  process does: :func:`trust.node.allocator.tune_allocator`);
* ``relay_portal``: the seed topology, three node processes: ``project`` runs the relay
  service; ``bank`` registers relay ``bank`` there through a channel it opens (channel 1) and
  runs the outlet; ``analysis`` opens a channel to ``project`` (channel 2), then through
  ``forward_to_bank`` an end-to-end channel to ``bank`` (channel 3) inside it, and its inlet
  goes through that.

Bulk: one connection carries ``bulk_bytes`` (1 GiB at ``--seconds 10``; the count scales with
``--seconds``) to the target, which checks every byte and the length (answered at EOF; see
:data:`PERIOD`), in :data:`BULK_REPEATS` rounds of one transfer per configuration
(all tunnels are up at once; figures are medians, ratios medians of the rounds' ratios).
Round trips: sequential 64-byte requests echoed by the target on one connection, for
``--seconds`` per configuration, in :data:`BULK_REPEATS` rounds as bulk (each configuration
``--seconds / BULK_REPEATS`` per round; the figure is the median of the rounds, the ratio
the median of the rounds' ratios).
``<config>_cpu_s_per_gb``: CPU seconds (user + system) of the tunnel's processes during the
bulk transfer, per GB moved (stunnel measured about 2.4 in the issue). Targets (issue 13):
portal bulk >= 1.3x stunnel, round trips >= 0.6x stunnel; relay portal bulk >= 0.5x stunnel.
Run ``python bench/portal.py`` (``--json``: one JSON object; the event loop is named in
``figures.event_loop``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [str(_BENCH.parent), *(p for p in sys.path if Path(p or ".").resolve() != _BENCH)]

from bench.timing import report

GIB = 1 << 30
PERIOD = 262139
"""The client sends a fixed pseudo-random block of this many bytes (a prime: no portal chunk
or TLS record size divides it, so bytes lost, repeated or reordered land out of phase) over
and over; the target compares every byte it receives with the block at its offset (a
``memcmp``, about 30 GB/s). Before, both ends computed a CRC-32 (2 GB/s here): about 1 CPU
second per GB of the harness's own, which on a 2-CPU host competed with the tunnel it
measured."""
RTT_SIZE = 64
_BLOCK = random.Random(13).randbytes(PERIOD)
_TWICE = _BLOCK + _BLOCK  # (any window of up to PERIOD bytes is contiguous here)
NO_ERROR = (1 << 64) - 1


def _loop_run(coro: Awaitable[Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


def loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of processes ``pids`` (all their threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the target server (its own process) -----------------------------------------------------------
def matches(data: bytes, offset: int) -> bool:
    """``data`` is the client's stream (the block repeated) at ``offset``."""
    view = memoryview(data)
    pos = offset % PERIOD
    while view:
        part = view[:PERIOD]
        if not _TWICE.startswith(part, pos):
            return False
        pos = (pos + len(part)) % PERIOD
        view = view[PERIOD:]
    return True


class _Target(asyncio.Protocol):
    """First byte ``B``: check what follows against the client's stream (:data:`PERIOD`),
    answer ``length u64 || first bad offset u64`` (``2**64 - 1``: none) at EOF. ``E``: echo."""

    def connection_made(self, transport: Any) -> None:
        self.t = transport
        self.mode = b""
        self.bad = NO_ERROR
        self.n = 0
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if not self.mode:
            self.mode, data = data[:1], data[1:]
        if self.mode == b"E":
            self.t.write(data)
        else:
            if self.bad == NO_ERROR and not matches(data, self.n):
                self.bad = self.n
            self.n += len(data)

    def eof_received(self) -> bool:
        if self.mode == b"B":
            self.t.write(struct.pack(">QQ", self.n, self.bad))
        self.t.close()
        return True


def _serve_target(conn: Connection) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Target, "127.0.0.1", 0)
        conn.send(server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        server.close()

    _loop_run(main())


# -- node processes ---------------------------------------------------------------------------------
async def _party() -> Any:
    from trust.channels import ChannelIdentity, IdentityAndCredentials, VaultX25519Key
    from trust.identities.creation import create_identity
    from trust.identities.purpose_keys import attest_purpose_key
    from trust.models.purpose_key import PurposePublicKey
    from vaults.keys import KeyType
    from vaults.software import SoftwareVault

    vault = SoftwareVault()
    key = await vault.generate_key(KeyType.ED25519)
    identity = await create_identity(vault, key)
    static = VaultX25519Key(vault, vault.generate_x25519(persist=False))
    att = await attest_purpose_key(identity, vault, key,
                                   PurposePublicKey.secure_channel(static.public))
    return ChannelIdentity(static, IdentityAndCredentials.of(identity.export(), att))


def _node_process(conn: Connection, role: str, args: dict[str, Any]) -> None:
    from trust.node.allocator import tune_allocator

    tune_allocator()  # (as a node process started by `truststack node create` does)

    async def main() -> None:
        from trust.node import Node
        from trust.portals import create_inlet, create_outlet
        from trust.routing import Address, Route

        node = Node(role)
        try:
            me = await _party()
            await node.start_services()
            if role in ("bank", "project"):
                await node.create_secure_channel_listener(me)
            if role == "project":
                from trust.relays import start_relay_service

                await start_relay_service(node)
                listener = await node.create_tcp_listener()
                conn.send(listener.address)
            elif role == "bank":
                await create_outlet(node, f"127.0.0.1:{args['target']}")
                if args.get("project"):
                    from trust.relays import RelayClient

                    project = Route([Address.tcp(args["project"]), "api"])

                    async def link() -> Any:
                        return await node.create_secure_channel(me, project, timeout=10)

                    client = RelayClient(node, "bank", link)
                    await client.start(wait=20)
                    conn.send("registered")
                else:
                    listener = await node.create_tcp_listener(consumers=["api", "outlet"])
                    conn.send(listener.address)
            else:  # analysis
                if args.get("project"):
                    outer = await node.create_secure_channel(
                        me, Route([Address.tcp(args["project"]), "api"]), timeout=10)
                    inner = await node.create_secure_channel(
                        me, outer.route / "forward_to_bank" / "api", timeout=10)
                else:
                    inner = await node.create_secure_channel(
                        me, Route([Address.tcp(args["bank"]), "api"]), timeout=10)
                inlet = await create_inlet(node, "127.0.0.1:0", inner.route / "outlet")
                conn.send(inlet.port)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        except BaseException as e:
            with contextlib.suppress(Exception):
                conn.send(f"error: {type(e).__name__}: {e}")
            raise
        finally:
            await node.stop()

    _loop_run(main())


class Processes:
    """Child processes, each told to stop (and joined) at exit."""

    def __init__(self) -> None:
        self.children: list[tuple[Any, Connection]] = []
        self.pids: list[int] = []

    def start(self, target: Callable[..., None], *args: Any) -> Any:
        ctx = mp.get_context("fork")
        parent, child = ctx.Pipe()
        p = ctx.Process(target=target, args=(child, *args), daemon=True)
        p.start()
        self.children.append((p, parent))
        if not parent.poll(60):
            raise RuntimeError(f"{target.__name__}{args[:1]} did not start")
        value = parent.recv()
        if isinstance(value, str) and value.startswith("error:"):
            raise RuntimeError(value)
        self.pids.append(p.pid or 0)
        return value

    def stop(self) -> None:
        for _p, conn in reversed(self.children):
            with contextlib.suppress(OSError):
                conn.send("stop")
        for p, _ in reversed(self.children):
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
        self.children.clear()


@contextlib.contextmanager
def processes() -> Iterator[Processes]:
    procs = Processes()
    try:
        yield procs
    finally:
        procs.stop()


# -- stunnel ----------------------------------------------------------------------------------------
def _self_signed(directory: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2)).sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@contextlib.contextmanager
def stunnel(target: int) -> Iterator[tuple[int, list[int]]]:
    """A stunnel process: ``client`` (plain in, TLS 1.3 out) to ``server`` (TLS 1.3 in, plain
    out to ``target``); yields the client's port and the process's pid."""
    exe = shutil.which("stunnel4") or shutil.which("stunnel")
    if exe is None:
        raise RuntimeError("stunnel4 is not installed (apt-get install stunnel4; .ci/run does)")
    with tempfile.TemporaryDirectory(prefix="bench-stunnel-") as d:
        cert, key = _self_signed(Path(d))
        front, back = free_port(), free_port()
        conf = Path(d) / "stunnel.conf"
        conf.write_text(
            f"foreground = yes\npid =\nsyslog = no\noutput = {d}/stunnel.log\n"
            f"[client]\nclient = yes\naccept = 127.0.0.1:{front}\nconnect = 127.0.0.1:{back}\n"
            "sslVersionMin = TLSv1.3\n"
            f"[server]\naccept = 127.0.0.1:{back}\nconnect = 127.0.0.1:{target}\n"
            f"cert = {cert}\nkey = {key}\nsslVersionMin = TLSv1.3\n")
        proc = subprocess.Popen([exe, str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", front), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("stunnel did not start") from None
                    time.sleep(0.05)
            yield front, [proc.pid]
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- the client ---------------------------------------------------------------------------------------
async def bulk(port: int, nbytes: int) -> float:
    """Send ``nbytes`` through ``port`` to the target, which checks them (:data:`PERIOD`);
    return the seconds it took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.perf_counter()
    writer.write(b"B")
    left = nbytes
    while left:
        chunk = _BLOCK if left >= PERIOD else _BLOCK[:left]
        writer.write(chunk)
        left -= len(chunk)
        await writer.drain()
    writer.write_eof()
    answer = await reader.readexactly(16)
    elapsed = time.perf_counter() - start
    writer.close()
    got_n, bad = struct.unpack(">QQ", answer)
    if got_n != nbytes or bad != NO_ERROR:
        where = "" if bad == NO_ERROR else f", wrong bytes from offset {bad}"
        raise RuntimeError(f"bulk check failed: {got_n} of {nbytes} bytes arrived{where}")
    return elapsed


async def round_trips(port: int, seconds: float) -> float:
    """Sequential 64-byte request/response round trips per second on one connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    writer.write(b"E")
    request = bytes(range(RTT_SIZE))
    for _ in range(20):  # warm up (channels, connections, caches)
        writer.write(request)
        await reader.readexactly(RTT_SIZE)
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        writer.write(request)
        if await reader.readexactly(RTT_SIZE) != request:
            raise RuntimeError("round trip answer differs")
        n += 1
        if n % 16 == 0 and time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - start
    writer.close()
    return n / elapsed


BULK_REPEATS = 5
"""Rounds of bulk transfers and of round trips: every configuration makes one transfer (and one
run of round trips) per round, so a machine whose speed drifts (a shared host's varies by
10-30% from minute to minute) slows every configuration of a round alike. Figures are the
medians; a ratio is the median of the rounds' ratios. (Five, not three: with three, one round
at a bad minute of the host moved a run's ratio by 10%.)"""


def bulk_once(port: int, pids: list[int], nbytes: int) -> tuple[float, float]:
    """MB/s and the tunnel's CPU seconds per GB of one checked transfer."""
    cpu0 = cpu_seconds(pids)
    elapsed = _loop_run(bulk(port, nbytes))
    return nbytes / elapsed / 1e6, (cpu_seconds(pids) - cpu0) / (nbytes / 1e9)


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def run(seconds: float) -> tuple[dict[str, Any], dict[str, float]]:
    nbytes = max(1 << 20, min(GIB, int(GIB * seconds / 10)))
    figures: dict[str, Any] = {"event_loop": loop_name(), "bulk_bytes": nbytes,
                               "rtt_payload_bytes": RTT_SIZE, "bulk_rounds": BULK_REPEATS}
    tunnels: dict[str, tuple[int, list[int]]] = {}
    relay_error = None
    with contextlib.ExitStack() as stack:
        procs = stack.enter_context(processes())
        target = procs.start(_serve_target)
        tunnels["direct"] = (target, [])
        tunnels["stunnel"] = stack.enter_context(stunnel(target))
        nodes = stack.enter_context(processes())
        bank = nodes.start(_node_process, "bank", {"target": target})
        tunnels["portal"] = (nodes.start(_node_process, "analysis", {"bank": bank}), nodes.pids)
        try:
            relayed = stack.enter_context(processes())
            project = relayed.start(_node_process, "project", {})
            relayed.start(_node_process, "bank", {"target": target, "project": project})
            port = relayed.start(_node_process, "analysis", {"project": project})
            tunnels["relay_portal"] = (port, relayed.pids)
        except Exception as e:  # (the relay is reported as missing, the rest stands)
            relay_error = str(e)
        rounds: dict[str, list[tuple[float, float]]] = {c: [] for c in tunnels}
        for _ in range(BULK_REPEATS):
            for config, (port, pids) in tunnels.items():
                rounds[config].append(bulk_once(port, pids, nbytes))
        rtts: dict[str, list[float]] = {c: [] for c in tunnels}
        for _ in range(BULK_REPEATS):
            for config, (port, _pids) in tunnels.items():
                rtts[config].append(_loop_run(round_trips(port, seconds / BULK_REPEATS)))
    for config, runs in rounds.items():
        figures[f"{config}_bulk_mb_s"] = round(_median([mb for mb, _ in runs]), 1)
        figures[f"{config}_rtt_per_s"] = round(_median(rtts[config]), 1)
        if config != "direct":
            figures[f"{config}_cpu_s_per_gb"] = round(_median([cpu for _, cpu in runs]), 2)
    figures["relay_measured"] = relay_error is None
    if relay_error is not None:
        figures["relay_error"] = relay_error[:200]

    def bulk_ratio(a: str, b: str) -> float:
        return round(_median([x[0] / y[0] for x, y in zip(rounds[a], rounds[b], strict=True)]), 3)

    ratios: dict[str, float] = {}
    for config in ("portal", "relay_portal"):
        if config in rounds:
            ratios[f"{config}_bulk/stunnel_bulk"] = bulk_ratio(config, "stunnel")
            ratios[f"{config}_rtt/stunnel_rtt"] = round(_median(
                [x / y for x, y in zip(rtts[config], rtts["stunnel"], strict=True)]), 3)
    ratios["portal_bulk/direct_bulk"] = bulk_ratio("portal", "direct")
    return figures, ratios


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--seconds", type=float, default=10.0,
                    help="round-trip measuring time; the bulk transfer is 1 GiB x seconds/10")
    args = ap.parse_args()
    if not args.seconds > 0:
        ap.error("--seconds must be positive")
    figures, ratios = run(args.seconds)
    targets = ("targets: portal_bulk/stunnel_bulk >= 1.3, portal_rtt/stunnel_rtt >= 0.6, "
               "relay_portal_bulk/stunnel_bulk >= 0.5")
    if args.json:
        report(figures, ratios, as_json=True, targets=targets)
        return 0
    for k, v in figures.items():
        print(f"{k:34} {v:>14,}" if isinstance(v, (int, float)) and not isinstance(v, bool)
              else f"{k:34} {v!s:>14}")
    for k, v in ratios.items():
        print(f"{k:34} {v:>14.3f}x")
    print(targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
