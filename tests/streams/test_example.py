"""examples/streams.py runs and tells what happened."""

from __future__ import annotations

from pathlib import Path

from tests.examples_helper import run_example


def test_streams_example_runs(tmp_path: Path) -> None:
    run_example("streams.py", tmp_path, [
        "channel over streams open, hub sees the sensor: True",
        "sensor pushed 1000 readings while the hub was offline",
        "hub caught up: True (1000 readings, each once)",
        "plaintext in them: False"])
