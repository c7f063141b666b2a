"""Parties, local TCP servers and two-node portals on 127.0.0.1 for the portal tests."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from tests.channels.node_helpers import party
from trust.channels import ChannelIdentity, IdentityAndCredentials, TrustIdentifier
from trust.credentials.issuance import issue_credential
from trust.identities.creation import create_identity
from trust.identities.identity import Identity
from trust.identities.purpose_keys import attest_purpose_key
from trust.models.purpose_key import PurposePublicKey
from trust.node import Node
from trust.portals import TcpInlet, TcpOutlet, create_inlet, create_outlet
from trust.portals.portal import KEEPALIVE_INTERVAL, SILENCE_TIMEOUT, Authorize
from trust.routing import Address, Route
from vaults.keys import KeyType
from vaults.software import SoftwareVault


@dataclass
class Parties:
    authority: Identity
    inlet: ChannelIdentity
    """Holds a credential from ``authority`` (role=analyst)."""
    outlet: ChannelIdentity
    """Holds a credential from ``authority`` (role=db)."""
    stranger: ChannelIdentity
    """No credential."""
    inlet_id: str = ""
    outlet_id: str = ""
    stranger_id: str = ""


async def _parties() -> Parties:
    now = int(time.time()) - 60
    vault = SoftwareVault()
    akey = await vault.generate_key(KeyType.ED25519)
    authority = await create_identity(vault, akey, now=now)
    sk = await vault.generate_key(KeyType.ED25519)
    satt = await attest_purpose_key(authority, vault, akey, PurposePublicKey.credential_signing(
        await vault.public_key(sk)), now=now, ttl=86_400)
    out = []
    for role in ("analyst", "db", None):
        ident, side = await party(vault, now)
        if role is not None:
            cred = await issue_credential(ident, {"role": role}, vault, sk, satt, now=now,
                                          ttl=3_600)
            side = ChannelIdentity(side.static, IdentityAndCredentials.of(
                ident.export(), side.payload.purpose_key_attestation, [cred]))
        out.append((ident, side))
    (i, inlet), (o, outlet), (s, stranger) = out
    return Parties(authority, inlet, outlet, stranger, i.identifier, o.identifier, s.identifier)


_PARTIES: list[Parties] = []


async def parties() -> Parties:
    """The parties (made once per test process: their keys live in memory only)."""
    if not _PARTIES:
        _PARTIES.append(await _parties())
    return _PARTIES[0]




# -- local servers -----------------------------------------------------------------------------
class _Echo(asyncio.Protocol):
    """Echoes; half-close aware (EOF from the client: close after echoing); pauses reading
    while its own write buffer is full."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.t.write(data)

    def pause_writing(self) -> None:
        self.t.pause_reading()

    def resume_writing(self) -> None:
        self.t.resume_reading()

    def eof_received(self) -> bool:
        return False


@asynccontextmanager
async def echo_server() -> AsyncIterator[int]:
    server = await asyncio.get_running_loop().create_server(_Echo, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class DigestServer:
    """Reads until EOF, then answers the SHA-256 of what it read and closes."""

    port: int = 0
    digests: list[bytes] = field(default_factory=list)
    stall: asyncio.Event | None = None
    """When set: the server reads nothing until the event is set."""


@asynccontextmanager
async def digest_server(stall: bool = False) -> AsyncIterator[DigestServer]:
    state = DigestServer(stall=asyncio.Event() if stall else None)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if state.stall is not None:
                await state.stall.wait()
            h = hashlib.sha256()
            while chunk := await reader.read(256 * 1024):
                h.update(chunk)
            digest = h.digest()
            state.digests.append(digest)
            writer.write(digest)
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if stall:  # a small receive window: what the kernel holds for the stalled server is small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(handle, sock=sock, limit=256 * 1024)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


def stream_bytes(seed: int, size: int) -> bytes:
    """Deterministic, non-repeating-looking bytes for one connection."""
    block = hashlib.sha256(seed.to_bytes(8, "big")).digest() * 2048  # 64 KiB
    reps, rest = divmod(size, len(block))
    return block * reps + block[:rest]


# -- a two-node portal -------------------------------------------------------------------------
@dataclass
class Pair:
    a: Node
    """The inlet's node."""
    b: Node
    """The outlet's node."""
    inlet: TcpInlet
    outlet: TcpOutlet
    tap: Wiretap | None = None

    @property
    def port(self) -> int:
        return self.inlet.port


@asynccontextmanager
async def portal_pair(target: str, *, channel: bool = True, inlet_side: str = "inlet",
                      inlet_authorize: Authorize | None = None,
                      outlet_authorize: Authorize | None = None,
                      mailbox_size: int | None = None, tapped: bool = False,
                      keepalive: float | None = KEEPALIVE_INTERVAL,
                      silence_timeout: float | None = SILENCE_TIMEOUT) -> AsyncIterator[Pair]:
    """Node ``a`` with an inlet, node ``b`` with an outlet to ``target``, joined by one TCP
    connection and (``channel``) one secure channel opened by ``a`` as party ``inlet_side``;
    ``tapped``: the channel's TCP connection goes through a :class:`Wiretap` (``Pair.tap``)."""
    p = await parties()
    size = 128 if mailbox_size is None else mailbox_size
    a, b = Node("a", mailbox_size=size), Node("b", mailbox_size=size)
    inlet: TcpInlet | None = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            listener = await b.create_tcp_listener("127.0.0.1:0", consumers=["api", "outlet"])
            if channel:
                await b.create_secure_channel_listener(p.outlet, authorities=[p.authority])
            outlet = await create_outlet(b, target, authorize=outlet_authorize,
                                         silence_timeout=silence_timeout)
            tap = await stack.enter_async_context(wiretap(listener.port)) if tapped else None
            tcp = Route([Address.tcp(f"127.0.0.1:{tap.port}" if tap else listener.address)])
            if channel:
                ch = await a.create_secure_channel(getattr(p, inlet_side), tcp / "api",
                                                   trust=TrustIdentifier(p.outlet_id),
                                                   authorities=[p.authority], timeout=10)
                route = ch.route / "outlet"
            else:
                await a.tcp.connect(listener.address)
                route = Route([a.tcp.connections[0].sender_address, "outlet"])
            inlet = await create_inlet(a, "127.0.0.1:0", route, authorize=inlet_authorize,
                                       keepalive=keepalive)
            yield Pair(a, b, inlet, outlet, tap)
    finally:
        if inlet is not None:
            await inlet.stop()
        await a.stop()
        await b.stop()


# -- the seed topology: a portal through a relay ----------------------------------------------------
@dataclass
class Wiretap:
    """A TCP proxy in front of a node's listener that keeps every byte it passes."""

    port: int = 0
    captured: bytearray = field(default_factory=bytearray)
    frozen: bool = False
    """Set: bytes are read and dropped both ways, the connections stay open (a peer that is
    gone without a word, as a crashed node behind a relay is to the far end)."""


@asynccontextmanager
async def wiretap(target_port: int) -> AsyncIterator[Wiretap]:
    tap = Wiretap()
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if tap.frozen:
                    continue
                tap.captured += data
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        for coro in (pipe(reader, up_writer), pipe(up_reader, writer)):
            task = asyncio.create_task(coro)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    tap.port = server.sockets[0].getsockname()[1]
    try:
        yield tap
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@dataclass
class Seed:
    project: Node
    bank: Node
    analysis: Node
    inlet: TcpInlet
    outlet: TcpOutlet
    tap: Wiretap


@asynccontextmanager
async def seed_topology(target: str) -> AsyncIterator[Seed]:
    """Bank Corp / Analysis Corp on one loop: ``project`` hosts the relay service; ``bank``
    registers relay ``bank`` there through a channel (1) and runs the outlet to ``target``;
    ``analysis`` opens a channel to ``project`` (2) and, through ``forward_to_bank``, an
    end-to-end channel to ``bank`` (3) inside it, and runs the inlet. Every byte of the
    project node's TCP transport passes through ``tap``."""
    from trust.relays import RelayClient, start_relay_service

    p = await parties()
    project, bank, analysis = Node("project"), Node("bank"), Node("analysis")
    inlet: TcpInlet | None = None
    client: RelayClient | None = None
    try:
        await start_relay_service(project)
        await project.create_secure_channel_listener(p.stranger)
        listener = await project.create_tcp_listener()
        async with wiretap(listener.port) as tap:
            via = Route([Address.tcp(f"127.0.0.1:{tap.port}"), "api"])
            await bank.create_secure_channel_listener(p.outlet, authorities=[p.authority])
            outlet = await create_outlet(bank, target)

            async def link() -> object:
                return await bank.create_secure_channel(p.outlet, via, timeout=10)

            client = RelayClient(bank, "bank", link)
            await client.start(wait=10)
            outer = await analysis.create_secure_channel(p.inlet, via, timeout=10)
            inner = await analysis.create_secure_channel(
                p.inlet, outer.route / "forward_to_bank" / "api",
                trust=TrustIdentifier(p.outlet_id), authorities=[p.authority], timeout=10)
            inlet = await create_inlet(analysis, "127.0.0.1:0", inner.route / "outlet")
            yield Seed(project, bank, analysis, inlet, outlet, tap)
    finally:
        if inlet is not None:
            await inlet.stop()
        if client is not None:
            await client.stop()
        for node in (analysis, bank, project):
            await node.stop()
