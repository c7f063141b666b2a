"""The node's public delivery API, which contexts (and channel workers) use instead of the
node's private names: ``Node.deliver``, ``finish_send``, ``deliver_nowait``, ``queue_or_drop``,
``unregister``, ``Slot``; and ``Route.addresses`` / ``Route.from_tuple``. Plus a check that
the secure-channel and context code reaches into no other module's private names."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

from tests.node.helpers import arun
from trust.node import Context, Node
from trust.node.errors import UnknownAddressError
from trust.node.mailbox import Mailbox
from trust.node.node import Slot
from trust.node.worker import InlineWorker
from trust.routing import PREAMBLE, Address, LocalMessage, Route, encode_frame

ROOT = Path(__file__).resolve().parents[2]


def test_route_addresses_is_the_tuple_and_from_tuple_does_not_copy() -> None:
    addrs = (Address.parse("a"), Address.tcp("127.0.0.1:1"))
    r = Route.from_tuple(addrs)
    assert r.addresses is addrs and r == Route(["a", "1#127.0.0.1:1"])
    assert (r / "b").addresses == (*addrs, Address.parse("b"))
    assert r.pop_front().addresses == addrs[1:] and r[1:].addresses == addrs[1:]
    assert Route().addresses == () and not Route()
    assert Route.decode(r.encode()).addresses == addrs


def test_deliver_finish_send_and_deliver_nowait() -> None:
    async def main() -> None:
        async with Node("n") as node:
            got: list[bytes] = []

            async def slow(ctx: Context, msg: LocalMessage) -> None:
                got.append(msg.payload)
                await asyncio.sleep(0.01)

            await node.start_worker("slow", slow, mailbox_size=1)
            ctx = node.context()
            src = ctx.address
            assert isinstance(node.deliver(LocalMessage(Route(["slow"]), Route([src]), b"1"),
                                           src, None, None, None), bool)
            # fill the mailbox: deliver reports the full endpoint, never waits
            results = [node.deliver(LocalMessage(Route(["slow"]), Route([src]), b"x"), src, None,
                                    None, None) for _ in range(3)]
            full = next(r for r in results if r is not True)
            assert hasattr(full, "wait_space")
            # finish_send waits for space and delivers
            assert await node.finish_send(LocalMessage(Route(["slow"]), Route([src]), b"late"),
                                          src, None, full, False) is True
            # a shared sender (drop) never waits: the message is dropped and counted
            dropped = node.stats.dropped_full
            while node.deliver_nowait(LocalMessage(Route(["slow"]), Route([src]), b"d"), src,
                                      None, False):
                pass  # (until the mailbox is full: False, nothing sent)
            assert node.deliver_nowait(LocalMessage(Route(["slow"]), Route([src]), b"d"), src,
                                       None, True) is True
            assert node.stats.dropped_full == dropped + 1
            assert node.queue_or_drop(LocalMessage(Route(["slow"]), Route([src]), b"q"), src,
                                      None, full) is True
            assert node.stats.dropped_full == dropped + 2
            async with asyncio.timeout(5):
                while b"late" not in got:
                    await asyncio.sleep(0.01)
            try:
                node.deliver(LocalMessage(Route(["nobody"]), Route([src]), b"?"), src, None, None,
                             None)
                raise AssertionError("delivered to nobody")
            except UnknownAddressError:
                pass
            ctx.close()

    arun(main())


def test_flow_control_consumer_sets_are_live() -> None:
    async def main() -> None:
        async with Node("n") as node:
            fc = node.flow_controls
            flow = fc.new_id()
            sets = fc.consumer_sets
            fc.add_consumer("a", flow)
            assert sets[flow] == {Address.parse("a")} and fc.consumer_sets is sets
            fc.remove_flow(flow)
            assert flow not in sets

    arun(main())


def test_unregister_and_slot() -> None:
    async def main() -> None:
        async with Node("n") as node:
            ctx = node.context("here")
            slot = ctx.slot
            assert isinstance(slot, Slot)
            assert slot.addresses == (Address.parse("here"),) and isinstance(slot.mailbox, Mailbox)
            assert node.has_address("here")
            node.unregister(slot)
            assert not node.has_address("here") and slot.mailbox.closed
            node.unregister(slot)  # twice: nothing

    arun(main())


# -- no reach-ins ---------------------------------------------------------------------------------

_CHECKED = [*sorted((ROOT / "trust" / "channels").glob("*.py")),
            *(ROOT / "trust" / "node" / f for f in ("context.py", "node.py", "services.py")),
            ROOT / "trust" / "routing" / "tcp_frame.py"]
_HANDLES = {"node", "ctx", "context", "router", "transport", "route", "msg", "mailbox_owner"}


def _reaches(path: Path) -> list[str]:
    """``x._name`` where ``x`` is another module's object (a node, a context, a route...), and
    ``_addrs``/``_of``/``_Slot`` anywhere (the former private names of Route and Node)."""
    tree = ast.parse(path.read_text())
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__"):
            if n.attr in ("_addrs", "_of"):
                found.append(f"{path.name}:{n.lineno} .{n.attr}")
            elif (isinstance(n.value, ast.Name) and n.value.id in _HANDLES
                  and not (path.name == "node.py" and n.value.id == "node")):  # (node is self there)
                found.append(f"{path.name}:{n.lineno} {n.value.id}.{n.attr}")
            elif (isinstance(n.value, ast.Attribute) and n.value.attr in ("node", "flow_controls")
                  and (path.name != "node.py" or n.value.attr != "node")):
                found.append(f"{path.name}:{n.lineno} .{n.value.attr}.{n.attr}")
        elif isinstance(n, ast.alias) and n.name.startswith("_") and not n.name.startswith("__"):
            found.append(f"{path.name}:{n.lineno} import {n.name}")
    return found


def test_channels_and_contexts_use_no_private_names_of_other_modules() -> None:
    found = [r for p in _CHECKED for r in _reaches(p)]
    assert found == [], found


def test_the_reach_in_check_finds_reach_ins(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from trust.node.node import _Slot\n"
                   "def f(node, ctx, route, self):\n"
                   "    node._deliver; ctx._slot; route._addrs; self.node._send_slow; self._ok\n"
                   "    self.flow_controls._consumers\n")
    assert sorted(r.split(" ", 1)[1] for r in _reaches(bad)) == sorted([
        "import _Slot", "node._deliver", "ctx._slot", "._addrs", ".node._send_slow",
        ".flow_controls._consumers"])


def test_a_view_payload_reaches_as_a_view_only_an_endpoint_that_takes_views() -> None:
    from trust.node import Worker

    class Keep(Worker):
        def __init__(self, got: list[object]) -> None:
            self.got = got

        async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
            self.got.append(msg.payload)

    class KeepViews(Keep):
        takes_views = True

    async def main() -> None:
        async with Node("n") as node:
            plain: list[object] = []
            views: list[object] = []
            await node.start_worker("plain", Keep(plain))
            await node.start_worker("views", KeepViews(views))
            ctx = node.context()
            data = b"z" * 20_000
            for name in ("plain", "views"):
                msg = LocalMessage(Route([name]), Route([ctx.address]), memoryview(data))  # type: ignore[arg-type]
                assert node.deliver(msg, ctx.address, None, None, None) is True
            # over TCP: a large frame of a known route is a view of the read (see FrameDecoder)
            listener = await node.create_tcp_listener(consumers=["plain", "views"])
            _reader, writer = await asyncio.open_connection(*listener.address.split(":"))
            writer.write(PREAMBLE)
            for name in ("plain", "views"):  # (the routes become known)
                writer.write(encode_frame(Route([name]), Route(["x"]), b"first"))
            await writer.drain()
            async with asyncio.timeout(5):
                while len(plain) + len(views) < 4:
                    await asyncio.sleep(0.01)
            for n, name in enumerate(("plain", "views")):  # (a read each)
                writer.write(encode_frame(Route([name]), Route(["x"]), data))
                await writer.drain()
                async with asyncio.timeout(5):
                    while len(plain) + len(views) < 5 + n:
                        await asyncio.sleep(0.01)
            # a view pinning a much larger buffer is copied when it is queued (here: a worker's
            # mailbox), so a queue holds what its messages weigh, not the reads they came in
            big = memoryview(b"q" * 100_000)[:20_000]
            msg = LocalMessage(Route(["views"]), Route([ctx.address]), big)  # type: ignore[arg-type]
            assert node.deliver(msg, ctx.address, None, None, None) is True
            async with asyncio.timeout(5):
                while len(views) < 4:
                    await asyncio.sleep(0.01)
            writer.close()
            ctx.close()
        assert [type(p) for p in plain] == [bytes, bytes, bytes]
        assert [type(p) for p in views] == [memoryview, bytes, memoryview, bytes]
        assert plain[0] == plain[2] == views[0] == views[2] == data
        assert views[3] == b"q" * 20_000

    arun(main())


class _Inline(InlineWorker):
    """Takes views; records the payloads it handles at once (and their bytes, read then) and
    those that reached it through its mailbox."""

    takes_views = True

    def __init__(self) -> None:
        self.now: list[object] = []
        self.read: list[bytes] = []
        self.later: list[object] = []
        self.refuse = False

    def handle_now(self, ctx: Context, msg: LocalMessage) -> bool:
        if self.refuse:
            return False  # (cannot finish now: the message goes to the mailbox)
        self.now.append(msg.payload)
        self.read.append(bytes(msg.payload))
        return True

    async def handle_message(self, ctx: Context, msg: LocalMessage) -> None:
        self.later.append(msg.payload)


def test_an_inline_worker_gets_views_at_once_and_owned_bytes_when_queued() -> None:
    async def main() -> None:
        async with Node("n") as node:
            w = _Inline()
            await node.start_worker("inline", w)
            ctx = node.context()
            read = b"r" * 100_000  # (a whole read, of which a record is a part)

            def send() -> None:
                msg = LocalMessage(Route(["inline"]), Route([ctx.address]),
                                   memoryview(read)[10:30_000])  # type: ignore[arg-type]
                assert node.deliver(msg, ctx.address, None, None, None) is True

            send()
            w.refuse = True
            send()
            async with asyncio.timeout(5):
                while not w.later:
                    await asyncio.sleep(0.01)
            ctx.close()
        assert type(w.now[0]) is memoryview and type(w.later[0]) is bytes
        assert w.now[0] == w.later[0] == read[10:30_000]

    arun(main())


def test_a_writable_view_reaches_only_a_worker_that_takes_transient_views_and_only_at_once(
        ) -> None:
    """A writable view (a portal inlet's reused read buffer) is valid during its delivery
    only: a worker declaring ``takes_transient_views`` gets it inside ``handle_now``; every
    other endpoint, and every queued message, gets a copy, which the sender's later changes to
    its buffer do not reach."""
    class Transient(_Inline):
        takes_transient_views = True

    async def main() -> None:
        async with Node("n") as node:
            views, transient = _Inline(), Transient()
            await node.start_worker("views", views)
            await node.start_worker("transient", transient)
            ctx = node.context()
            buf = bytearray(b"a" * 40_000)

            def send(to: str) -> None:
                msg = LocalMessage(Route([to]), Route([ctx.address]),
                                   memoryview(buf)[100:30_000])  # type: ignore[arg-type]
                assert node.deliver(msg, ctx.address, None, None, None) is True
                buf[:] = b"b" * len(buf)  # the sender reuses its buffer at once

            send("views")  # takes only read-only views: a copy
            send("transient")  # at once: the view itself
            buf[:] = b"c" * len(buf)
            transient.refuse = True
            send("transient")  # queued: a copy, made before the sender's next read
            async with asyncio.timeout(5):
                while not transient.later:
                    await asyncio.sleep(0.01)
            ctx.close()
        assert type(views.now[0]) is bytes and views.now[0] == b"a" * 29_900
        assert type(transient.now[0]) is memoryview and transient.read[0] == b"b" * 29_900
        assert type(transient.later[0]) is bytes and transient.later[0] == b"c" * 29_900

    arun(main())


def test_before_queue_sees_each_waiting_message_in_order_while_the_mailbox_has_room() -> None:
    """A message that must wait behind others first goes to the worker's ``before_queue``
    (a transient view is still valid then): what it returns is queued (no copy when it
    replaced the payload), ``None`` queues nothing; with the mailbox full it is not called
    (the sender is told to wait and offers the same message again later)."""
    class Early(_Inline):
        takes_transient_views = True

        def __init__(self) -> None:
            super().__init__()
            self.early: list[bytes] = []

        def before_queue(self, ctx: Context, msg: LocalMessage) -> LocalMessage | None:
            data = bytes(msg.payload)
            self.early.append(data[:4])
            if data.startswith(b"drop"):
                return None
            if data.startswith(b"boom"):
                raise ValueError("a worker's bug")
            msg.payload = b"kept " + data[:4]
            return msg

    async def main() -> None:
        async with Node("n") as node:
            w = Early()
            await node.start_worker("early", w, mailbox_size=2)
            ctx = node.context()
            buf = bytearray(20_000)

            def send(head: bytes) -> object:
                buf[:4] = head
                msg = LocalMessage(Route(["early"]), Route([ctx.address]),
                                   memoryview(buf)[:20_000])  # type: ignore[arg-type]
                result = node.deliver(msg, ctx.address, None, None, None)
                buf[:] = bytes(len(buf))  # the sender reuses its buffer at once
                return result

            w.refuse = True
            assert send(b"one ") is True  # refused by handle_now: queued as a copy
            assert send(b"drop") is True  # before_queue: nothing queued
            assert send(b"boom") is True  # before_queue failed: counted, nothing queued
            assert send(b"two ") is True  # before_queue: its own payload queued
            assert send(b"full") is not True  # the mailbox is full: the sender waits
            assert w.early == [b"drop", b"boom", b"two "]
            assert node.stats.worker_errors == 1
            async with asyncio.timeout(5):
                while len(w.later) < 2:
                    await asyncio.sleep(0.01)
            ctx.close()
        assert w.later == [b"one " + bytes(19_996), b"kept two "]

    arun(main())
