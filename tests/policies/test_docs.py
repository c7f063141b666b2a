"""The console examples of docs/policies.md run as shown, through the real executable.

Each ```console block holds `$ truststack ...` lines, each followed by its expected output. The
blocks run in order in one home (later ones use policies the earlier ones stored)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def console_examples(path: Path) -> list[tuple[str, list[str]]]:
    examples: list[tuple[str, list[str]]] = []
    inside = False
    for line in path.read_text().splitlines():
        if line.startswith("```console"):
            inside = True
        elif line.startswith("```"):
            inside = False
        elif inside and line.startswith("$ "):
            examples.append((line[2:], []))
        elif inside:
            examples[-1][1].append(line)
    return examples


def test_the_docs_have_ten_worked_examples_and_more() -> None:
    examples = console_examples(ROOT / "docs" / "policies.md")
    assert len([c for c, _ in examples if c.startswith("truststack policy test --allow")]) >= 10


def test_docs_console_examples(cli: Any) -> None:
    examples = console_examples(ROOT / "docs" / "policies.md")
    assert examples
    for command, expected in examples:
        argv = shlex.split(command)
        assert argv[0] == "truststack"
        r = cli(*argv[1:])
        assert r.stdout.rstrip("\n").splitlines() == expected, command


def test_cli_doc_policy_section_runs(tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    text = (ROOT / "docs" / "cli.md").read_text()
    section = text.split("\n## policy\n", 1)[1].split("\n## ", 1)[0]
    [script] = re.findall(r"```sh\n(.*?)```", section, re.S)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "TRUSTSTACK_HOME": str(tmp_path / "home")}
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                       text=True, cwd=tmp_path, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert 'denied (false: argument 2 is false: subject.role is "ops", not "billing")' in p.stdout
    assert '"valid": true' in p.stdout
