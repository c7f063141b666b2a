"""Large writes of one event-loop turn leave in one system call, in order, bounded."""

from __future__ import annotations

import asyncio
from typing import Any

from trust.transports.stream import WRITE_BATCH_MAX, StreamConnection


class _Transport:
    """Records what is written (a stand-in for an asyncio transport)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, parts: list[Any]) -> None:
        self.calls.append(("writelines", [bytes(p) for p in parts]))

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def get_extra_info(self, name: str) -> None:
        return None

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def test_writes_of_one_turn_go_out_together_at_its_end_in_order() -> None:
    async def main() -> None:
        conn = StreamConnection()
        t = _Transport()
        conn.attach(t)  # type: ignore[arg-type]
        conn.write_batched(b"h1", 0)
        conn.write_batched(b"a" * 100, 100)
        conn.write_batched(b"h2", 0)
        conn.write_batched(b"b" * 100, 100)
        assert t.calls == []  # (nothing before the end of the turn)
        await asyncio.sleep(0)
        assert t.calls == [("writelines", [b"h1", b"a" * 100, b"h2", b"b" * 100])]
        # the next turn starts a new batch
        conn.write_batched(b"c", 1)
        await asyncio.sleep(0)
        assert t.calls[1:] == [("writelines", [b"c"])]

    asyncio.run(main())


def test_a_full_batch_is_written_at_once_and_close_flushes_first() -> None:
    async def main() -> None:
        conn = StreamConnection()
        t = _Transport()
        conn.attach(t)  # type: ignore[arg-type]
        big = bytes(WRITE_BATCH_MAX)
        conn.write_batched(b"x", 1)
        conn.write_batched(big, len(big))
        assert t.calls == [("writelines", [b"x", big])]  # (bounded: no more waits)
        conn.write_batched(b"y", 1)  # (still this turn: waits for its end)
        assert len(t.calls) == 1
        conn.close()
        assert t.calls[1:] == [("writelines", [b"y"])] and t.closed
        await asyncio.sleep(0)
        assert len(t.calls) == 2
        # after abort nothing waiting is written
        conn2 = StreamConnection()
        t2 = _Transport()
        conn2.attach(t2)  # type: ignore[arg-type]
        conn2.write_batched(b"z", 1)
        conn2.abort()
        await asyncio.sleep(0)
        assert t2.calls == []

    asyncio.run(main())
