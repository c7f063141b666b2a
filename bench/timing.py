"""Shared pieces of the benchmarks: interleaved rounds with best-window counts, the report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping


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


def report(figures: Mapping[str, float], ratios: Mapping[str, float], *, as_json: bool,
           targets: str, width: int = 10) -> None:
    """Print ``{"figures": ..., "ratios": ...}`` as one JSON object, or as aligned lines ending
    with the ``targets`` line."""
    if as_json:
        print(json.dumps({"figures": figures, "ratios": ratios}))
        return
    for k, v in figures.items():
        print(f"{k:42} {v:>{width},}")
    for k, v in ratios.items():
        print(f"{k:42} {v:>{width}.3f}x")
    print(targets)
