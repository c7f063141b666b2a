"""Hypothesis strategies shared by the decoder property tests."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st


def mutations_of(seeds: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """Valid objects from ``seeds`` with 1-4 random edits (byte flips, insertions, deletions,
    truncation): inputs that get past the first bytes of a decoder."""

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        raw = bytearray(draw(st.sampled_from(list(seeds))))
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
            i = draw(st.integers(0, max(len(raw) - 1, 0)))
            if op == "flip" and raw:
                raw[i] = draw(st.integers(0, 255))
            elif op == "insert":
                raw[i:i] = draw(st.binary(min_size=1, max_size=4))
            elif op == "delete" and raw:
                del raw[i]
            elif op == "truncate":
                del raw[i:]
        return bytes(raw)

    return mutated()
