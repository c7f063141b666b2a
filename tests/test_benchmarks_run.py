"""Every benchmark script runs and prints one JSON object with figures and ratios.

Benchmarks are not tests: this only guards the scripts against rot (imports, arguments, output
shape), with the shortest measuring time; it asserts no speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py") if p.name != "timing.py")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bench_prints_one_json_object(script: Path, tmp_path: Path) -> None:
    extra = ["--rounds", "1"] if script.name == "routing.py" else []
    p = subprocess.run([sys.executable, str(script), "--json", "--seconds", "0.05", *extra],
                       capture_output=True, text=True, cwd=tmp_path, timeout=240)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stdout[-2000:]
    report = json.loads(lines[0])
    assert set(report) == {"figures", "ratios"}
    assert report["figures"] and report["ratios"]
    assert all(isinstance(v, (int, float)) for v in report["ratios"].values())


def test_portal_bench_names_its_loop_and_scales_its_bytes(tmp_path: Path) -> None:
    """bench/portal.py: the event loop is named, the bulk byte count follows --seconds, every
    configuration (direct, stunnel, 2-node portal, portal via a relay) is measured."""
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "portal.py"), "--json",
                        "--seconds", "0.05"], capture_output=True, text=True, cwd=tmp_path,
                       timeout=240)
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.loads(p.stdout)
    figures, ratios = report["figures"], report["ratios"]
    assert figures["event_loop"] in ("uvloop", "asyncio")
    assert figures["bulk_bytes"] == int((1 << 30) * 0.05 / 10)
    assert figures["relay_measured"] is True
    for config in ("stunnel", "portal", "relay_portal"):
        assert figures[f"{config}_cpu_s_per_gb"] > 0
    assert set(ratios) >= {"portal_bulk/stunnel_bulk", "portal_rtt/stunnel_rtt",
                           "relay_portal_bulk/stunnel_bulk", "relay_portal_rtt/stunnel_rtt"}


def test_portal_bench_target_finds_lost_repeated_and_reordered_bytes() -> None:
    """The bulk check compares every byte with the client's stream at its offset: a byte
    changed, lost, repeated, or two pieces swapped are each found (here on the stream as the
    target receives it, in reads of any size)."""
    script = """
import bench.portal as p
stream = (p._BLOCK * 4)[:3 * p.PERIOD + 1000]

def check(data, read=65536):
    return all(p.matches(data[i:i + read], i) for i in range(0, len(data), read))

assert check(stream)
assert check(stream, 3 * p.PERIOD)  # (a read longer than the block)
changed = bytearray(stream)
changed[p.PERIOD + 5] ^= 1
assert not check(bytes(changed))
assert not check(stream[:100000] + stream[100001:])  # one byte lost
assert not check(stream[:100000] + stream[99999:])  # one byte repeated
a, b = stream[:49152], stream[49152:98304]
assert not check(b + a + stream[98304:])  # two 48 KiB chunks swapped
print("ok")
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]
