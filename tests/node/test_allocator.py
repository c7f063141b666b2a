"""trust.node.allocator: a node process keeps its heap instead of faulting pages in again."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHURN = """
import resource, sys
sys.path.insert(0, {root!r})
if {tune}:
    from trust.node.allocator import tune_allocator
    assert tune_allocator() and tune_allocator()  # (applied once; again is a no-op)
def churn(n):
    for _ in range(n):  # buffers of a bulk transfer: allocated together, freed together
        bufs = [bytearray(200_000) for _ in range(4)]
        del bufs
churn(50)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn(300)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 300)
"""


def _faults_per_round(tune: bool) -> float:
    out = subprocess.run([sys.executable, "-c", CHURN.format(root=str(ROOT), tune=tune)],
                         capture_output=True, text=True, timeout=60, check=True)
    return float(out.stdout)


def test_tuned_allocator_stops_the_page_fault_churn() -> None:
    assert sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    default, tuned = _faults_per_round(False), _faults_per_round(True)
    assert default > 50  # glibc's defaults: the heap's top is given back and faulted in again
    assert tuned < 5, (default, tuned)


def test_a_node_process_tunes_its_allocator() -> None:
    source = (ROOT / "trust" / "node" / "daemon.py").read_text()
    main = source[source.index("def main("):]
    assert "tune_allocator()" in main.split("uvloop.run(")[0]
