"""Shared timing for the synchronous benchmarks: interleaved rounds, best window counts."""

from __future__ import annotations

import time
from collections.abc import Callable


def rates(fns: dict[str, tuple[Callable[[], object], int]], seconds: float,
          rounds: int = 5) -> dict[str, float]:
    """Operations per second of each ``name: (function, batch)``. The rounds alternate between
    the functions (a load that comes and goes hits all of them alike) and the best window of each
    counts; ``seconds`` is the total measuring time per function."""
    best = dict.fromkeys(fns, 0.0)
    window = seconds / rounds
    for _ in range(rounds):
        for name, (fn, batch) in fns.items():
            n = 0
            start = time.perf_counter()
            while True:
                for _ in range(batch):
                    fn()
                n += batch
                now = time.perf_counter()
                if now - start >= window:
                    break
            best[name] = max(best[name], n / (now - start))
    return best
