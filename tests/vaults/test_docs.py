"""docs/vaults.md runs as written: every code block, in order, in one fresh session (a new home,
working directory and environment, as a reader would start), with the SoftHSM token the page
itself sets up. Blocks that need a cloud account are marked ``*Not run: …*`` (the convention of
tests/test_docs.py, which also runs this page after the others)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.test_docs import RUN, Block, Session, blocks_of

DOC = Path(__file__).resolve().parents[2] / "docs" / "vaults.md"


def test_every_block_runs_in_order(tmp_path: Path) -> None:
    blocks = blocks_of(DOC)
    skipped = [b for b in blocks if b.skipped]
    # only the cloud examples may be left out, and each says why
    assert skipped and all(re.search(r"--(aws|gcp)-kms", b.code) for b in skipped), skipped
    runnable = [b for b in blocks if not b.skipped and b.lang in RUN]
    assert {b.lang for b in runnable} == {"sh", "python"}
    assert not [b for b in blocks if b.lang not in RUN and b.lang != "text"]
    session = Session(tmp_path)
    ran: list[Block] = []
    try:
        for b in runnable:
            if b.lang == "python":
                session.run_python(b, b.page)
            else:
                session.run_sh(b)
            ran.append(b)
        session.end_python()
    finally:
        session.stop_nodes()
    assert ran == runnable and len(ran) >= 4
    # what the blocks did is really there: a pkcs11 vault and identities with keys on the token
    state = session.session()
    env, cwd = state["env"], state["cwd"]
    assert isinstance(env, dict) and isinstance(cwd, str)
    p = subprocess.run(["truststack", "identity", "list", "--output", "json"], capture_output=True,
                       text=True, env=env, cwd=cwd, timeout=60)
    assert p.returncode == 0, p.stderr
    by_name = {i["name"]: i for i in json.loads(p.stdout)}
    assert by_name["operator"]["vault"] == by_name["legacy"]["vault"] == "softhsm"
    assert by_name["dana"]["vault"] == "default"


def test_the_page_explains_its_variables_before_use() -> None:
    text = DOC.read_text()
    for var in ("HSM_URI", "HSM_PIN", "HSM_MODULE"):
        assert f"`{var}`:" in text, var
        assert text.index(f"`{var}`:") < text.index(f"${var}"), var


def test_error_table_names_real_error_classes() -> None:
    import vaults.errors as errors

    names = set(re.findall(r"`(\w+Error)`", DOC.read_text())) - {"MissingExtraError"}
    assert names and all(hasattr(errors, n) for n in names), names - set(dir(errors))
