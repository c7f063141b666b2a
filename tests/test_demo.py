"""``truststack demo`` runs end to end through the real executable."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import Cli, assert_one_line_error


def test_demo_plain_leaves_nothing_behind(cli: Cli) -> None:
    r = cli("demo")
    assert r.stdout.count("✔") == 7 and r.stdout.rstrip().endswith("All steps passed.")
    assert "per round trip over two TCP hops" in r.stdout
    assert "alice allowed, bob denied" in r.stdout
    # the summary names each identity's own key type
    line = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("authority I"))
    assert re.search(r"authority I[0-9a-f]{12}… \(Ed25519\), alice I[0-9a-f]{12}… \(Ed25519\), "
                     r"bob I[0-9a-f]{12}… \(P-256\)", line), line
    assert not cli.home.exists()  # the demo used a temporary home, not $TRUSTSTACK_HOME


def test_demo_json_in_a_kept_home(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    report = json.loads(cli("demo", "--home", str(home), "--output", "json").stdout)
    assert report["ok"] is True and report["home"] == str(home)
    titles = [s["title"] for s in report["steps"]]
    assert "Decide access with a policy" in titles and "Rotate and revoke" in titles
    made = next(s for s in report["steps"] if s["title"] == "Create three identities")
    decide = next(s for s in report["steps"] if s["title"] == "Decide access with a policy")
    assert decide["decisions"] == {"alice": True, "bob": False}
    # the kept home is a normal home: its identities are usable afterwards
    kept = Cli(home)
    names = [i["name"] for i in kept.json("identity", "list")]
    assert names == ["alice", "authority", "bob"]
    assert len(kept.json("identity", "show", "authority")["changes"]) == 3
    for name in ("alice", "bob"):  # the key types the summary gave are the histories' own
        assert kept.json("identity", "show", name)["changes"][-1]["key_type"] == \
            made["key_types"][name]
    assert_one_line_error(cli("demo", "--home", str(home), ok=False), "not empty")
