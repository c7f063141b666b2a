"""The runnable example of docs/vaults.md runs against the test token."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.fixtures.softhsm import SoftHsm

DOC = Path(__file__).resolve().parents[2] / "docs" / "vaults.md"


def test_python_example_in_docs_runs(softhsm: SoftHsm, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                       env={"HSM_URI": softhsm.uri(), "HSM_PIN": softhsm.pin,
                            "SOFTHSM2_CONF": str(softhsm.conf), "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    handle, signature = p.stdout.split()
    assert handle.startswith("id=") and len(bytes.fromhex(signature)) == 64


def test_error_table_names_real_error_classes() -> None:
    import vaults.errors as errors

    names = set(re.findall(r"`(\w+Error)`", DOC.read_text()))
    assert names and all(hasattr(errors, n) for n in names), names - set(dir(errors))
