"""``truststack identity`` and ``truststack vault`` through the real executable."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tests.conftest import Cli, assert_one_line_error
from tests.vectors import by_name

ROTATED_AUTHORITY = by_name("synthetic_rotation_ed25519_to_p256_with_credential")["artefacts"][
    "identity:authority"]
ONE = by_name("test_display_project_identity")


def _rows(home: Path, table: str) -> int:
    db = home / "state.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as c:
        try:
            return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_identity_lifecycle(cli: Cli, tmp_path: Path) -> None:
    ident = cli("identity", "create", "alice").out
    assert ident.startswith("I") and len(ident) == 65
    shown = cli.json("identity", "show", "alice")
    assert shown["identifier"] == ident and shown["name"] == "alice" and shown["is_default"]
    [change] = shown["changes"]
    assert change["key_type"] == "ed25519" and len(change["public_key"]) == 64
    assert change["valid_until"] - change["valid_from"] == 315_360_000
    assert change["revoke_all_purpose_keys"] is False and change["change_hash"] == ident[1:]
    assert cli.json("identity", "show")["identifier"] == ident  # the default identity
    assert cli.json("identity", "show", ident)["name"] == "alice"

    bob = cli.json("identity", "create", "bob", "--key-type", "p256")
    assert bob["changes"][0]["key_type"] == "p256" and len(bob["changes"][0]["public_key"]) == 130
    names = [i["name"] for i in cli.json("identity", "list")]
    assert names == ["alice", "bob"]

    rotated = cli.json("identity", "rotate", "alice", "--key-type", "p256", "--revoke-purpose-keys")
    assert rotated["identifier"] == ident and len(rotated["changes"]) == 2
    assert rotated["changes"][1]["key_type"] == "p256"
    assert rotated["changes"][1]["revoke_all_purpose_keys"] is True
    assert rotated["changes"][1]["previous_change"] == rotated["changes"][0]["change_hash"]

    exported = cli("identity", "export", "alice").out
    assert exported == rotated["change_history"]
    (tmp_path / "alice.hex").write_text(exported + "\n")
    cli("identity", "export", "alice", "--binary", str(tmp_path / "alice.bin"))

    other = Cli(tmp_path / "other-home")
    for args in (("identity", "verify", exported), ("identity", "verify", f"@{tmp_path}/alice.hex"),
                 ("identity", "verify", "--file", str(tmp_path / "alice.bin"))):
        assert other.json(*args)["identifier"] == ident
    assert not (tmp_path / "other-home" / "state.sqlite").exists() or \
        _rows(tmp_path / "other-home", "known_identity") == 0
    assert other.json("identity", "import", f"@{tmp_path}/alice.hex")["status"] == "imported"
    assert other.json("identity", "import", exported)["status"] == "unchanged"
    assert other.json("identity", "show", ident)["change_history"] == exported

    cli("identity", "delete", "bob")
    assert [i["name"] for i in cli.json("identity", "list")] == ["alice"]
    assert_one_line_error(cli("identity", "show", "bob", ok=False), "no identity named 'bob'")


def test_import_newer_older_conflict(cli: Cli, tmp_path: Path) -> None:
    a = cli("identity", "create", "a").out
    v1 = cli("identity", "export", "a").out
    other = Cli(tmp_path / "h2")
    other("identity", "import", v1)
    cli("identity", "rotate", "a")
    v2 = cli("identity", "export", "a").out
    assert other.json("identity", "import", v2)["status"] == "updated"
    r = other("identity", "import", v1, ok=False)
    assert_one_line_error(r, "older")
    assert r.returncode == 1
    # a fork of the same identity (same first change, different second change)
    fork_home = Cli(tmp_path / "fork")
    fork_home.home.mkdir()
    import shutil

    shutil.rmtree(fork_home.home)
    shutil.copytree(cli.home, fork_home.home)
    fork_home("identity", "rotate", "a")  # from v2: makes a 3-change history
    cli("identity", "rotate", "a")        # a different 3-change history
    other.json("identity", "import", cli("identity", "export", "a").out)
    r = other("identity", "import", fork_home("identity", "export", "a").out, ok=False)
    assert_one_line_error(r, "conflicts")
    assert other.json("identity", "show", a)["change_history"] == cli("identity", "export", "a").out


def test_bad_input_is_one_line_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    good = ONE["hex"]
    forged = good[:-2] + ("00" if good[-2:] != "00" else "01")
    for args, needle in [
        (("identity", "verify", forged), "invalid signature"),
        (("identity", "import", forged), "invalid signature"),
        (("identity", "import", good + "00"), "trailing"),
        (("identity", "import", good[:-10]), "past the end"),
        (("identity", "verify", "zz"), "hex"),
        (("identity", "verify", "@/nonexistent/file"), "cannot read"),
        (("identity", "import"), "missing"),
        (("identity", "show", "nobody"), "no identity"),
        (("identity", "rotate", "nobody"), "no identity"),
        (("identity", "create", "bad/name"), "invalid identity name"),
        (("identity", "create", "x", "--vault", "nope"), "no vault"),
        (("vault", "show", "nope"), "no vault"),
    ]:
        r = cli(*args, ok=False)
        assert_one_line_error(r, needle)
    assert _rows(cli.home, "known_identity") == 0
    assert _rows(cli.home, "local_identity") == 0
    assert cli("identity", "verify", forged, ok=False).returncode == 1
    assert cli("identity", "import", ok=False).returncode == 2


def test_vaults_with_passphrases(cli: Cli, tmp_path: Path) -> None:
    env = {"MY_PASS": "s3cret passphrase"}
    cli("vault", "create", "secure", "--passphrase-env", "MY_PASS", env=env)
    show = cli.json("vault", "show", "secure")
    assert show["backend"] == "file" and show["passphrase_env"] == "MY_PASS"
    assert "s3cret" not in (cli.home / "state.sqlite").read_bytes().decode("latin-1")
    ident = cli("identity", "create", "carol", "--vault", "secure", env=env).out
    assert cli.json("identity", "show", "carol")["vault"] == "secure"
    r = cli("identity", "rotate", "carol", ok=False)  # variable not set
    assert_one_line_error(r, "MY_PASS")
    r = cli("identity", "rotate", "carol", ok=False, env={"MY_PASS": "wrong"})
    assert_one_line_error(r, "wrong passphrase")
    assert len(cli.json("identity", "show", "carol")["changes"]) == 1
    cli("identity", "rotate", "carol", env=env)
    assert cli.json("identity", "show", ident)["name"] == "carol"

    pw = tmp_path / "pw"
    pw.write_text("file secret\n")
    pw.chmod(0o600)  # secret files are refused when others can read them, as key files are
    cli("vault", "create", "fromfile", "--passphrase-file", str(pw))
    cli("identity", "create", "dave", "--vault", "fromfile")
    assert {v["name"] for v in cli.json("vault", "list")} == {"secure", "fromfile"}
    assert_one_line_error(cli("vault", "delete", "secure", ok=False), "used by", "carol")
    assert_one_line_error(cli("vault", "create", "secure", ok=False), "already exists")
    cli("vault", "create", "scratch")
    cli("vault", "delete", "scratch")
    assert not (cli.home / "vaults" / "scratch").exists()
    assert (cli.home / "vaults").stat().st_mode & 0o777 == 0o700


def test_world_readable_key_file_is_refused(cli: Cli) -> None:
    cli("identity", "create", "eve")
    vault_dir = cli.home / "vaults" / "default"
    [key] = list(vault_dir.glob("*.key"))
    os.chmod(key, 0o644)
    r = cli("identity", "rotate", "eve", ok=False)
    assert_one_line_error(r, "accessible by others", "chmod 0600")
    assert len(cli.json("identity", "show", "eve")["changes"]) == 1


def test_every_command_has_help_with_example(cli: Cli) -> None:
    for noun, verbs in {"identity": ["create", "show", "list", "rotate", "export", "import",
                                     "verify", "delete"],
                        "vault": ["create", "list", "show", "delete"]}.items():
        for verb in verbs:
            r = cli(noun, verb, "--help")
            assert "Example" in r.stdout and "--output" in r.stdout, (noun, verb)


def test_known_rotated_vector_imports(cli: Cli) -> None:
    j = cli.json("identity", "import", ROTATED_AUTHORITY)
    assert j["identifier"] == "If7b6916768cf4de3262b5b2fb47f0c383aa6dcb267fd0fa7b5822456537caa75"
    assert [c["key_type"] for c in j["changes"]] == ["ed25519", "p256"]
