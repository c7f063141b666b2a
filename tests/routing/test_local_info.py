"""Typed local info next to untyped (type, bytes) pairs on a message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from trust.routing import LocalInfo, LocalMessage, Route


@dataclass(frozen=True)
class Typed:
    type_identifier: ClassVar[str] = "typed"
    value: int


def test_typed_and_untyped_local_info() -> None:
    msg = LocalMessage(Route(["a"]), Route(), b"", (LocalInfo("tcp", b"1.2.3.4:5"), Typed(1), Typed(2)))
    assert msg.find_local_info("tcp") == b"1.2.3.4:5"
    assert msg.find_local_info("typed") is None  # a typed entry has no bytes to give
    assert msg.local_info_of(Typed) == Typed(2)  # the last (innermost) one
    assert msg.local_info_of(LocalInfo) == LocalInfo("tcp", b"1.2.3.4:5")
    assert LocalMessage(Route(["a"]), Route(), b"").local_info_of(Typed) is None
