"""``truststack credential`` and ``truststack schema`` through the real executable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import Cli, assert_one_line_error
from tests.vectors import by_name
from trust.models.credential import CredentialAndPurposeKey

SCENARIO = by_name("synthetic_rotation_ed25519_to_p256_with_credential")
REAL = by_name("elixir_refresh_credentials_credential_and_purpose_key")


def _rows(home: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(home / "state.sqlite") as c:
        try:
            return c.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []


@pytest.fixture
def people(cli: Cli) -> Cli:
    cli("identity", "create", "authority")
    cli("identity", "create", "alice")
    return cli


def test_issue_verify_show(people: Cli, tmp_path: Path, home: Path) -> None:
    cli = people
    cli("schema", "create", "7", "--attribute", "role:string", "--attribute", "level:int",
        "--attribute", "admin:bool", "--attribute", "groups:list")
    cred = cli("credential", "issue", "--identity", "authority", "--subject", "alice",
               "--attribute", "role=admin", "--attribute", "level=3", "--attribute", "admin=true",
               "--attribute", "groups=dev,ops", "--schema", "7", "--ttl", "1h").out
    assert "\n" not in cred and bytes.fromhex(cred)[:2] == b"\x82\x82"
    out = cli("credential", "verify", cred, "--authority", "authority").out
    assert out.splitlines()[0] == "valid" and "  level: 3" in out and '  groups: ["dev", "ops"]' in out
    v = cli.json("credential", "verify", cred, "--authority", "authority", "--subject", "alice")
    assert v["attributes"] == {"admin": True, "groups": ["dev", "ops"], "level": 3,
                               "role": "admin"}
    assert v["format"] == "ockam" and v["schema"] == 7
    assert v["expires_at"] - v["created_at"] == 3600
    alice = cli.json("identity", "show", "alice")["identifier"]
    assert v["subject"] == alice
    # @PATH, --file (hex and binary)
    (tmp_path / "c.hex").write_text(cred + "\n")
    (tmp_path / "c.bin").write_bytes(bytes.fromhex(cred))
    for args in (["@" + str(tmp_path / "c.hex")], ["--file", str(tmp_path / "c.hex")],
                 ["--file", str(tmp_path / "c.bin")]):
        assert cli.json("credential", "verify", *args, "--authority", "authority")["valid"]
    shown = cli.json("credential", "show", "@" + str(tmp_path / "c.hex"))
    assert shown["kind"] == "credential_and_purpose_key" and shown["subject"] == alice
    assert shown["attributes"]["level"] == "3"  # show does not type values
    assert shown["signing_key"]["type"] == "ed25519"
    assert cli("credential", "show", cred).out.startswith("Kind: credential_and_purpose_key")
    # boundaries through --time
    t = v["expires_at"]
    assert cli.json("credential", "verify", cred, "--authority", "authority", "--time", str(t))[
        "valid"]
    r = cli("credential", "verify", cred, "--authority", "authority", "--time", str(t + 1),
            ok=False)
    assert_one_line_error(r, "expired")
    r = cli("credential", "verify", cred, "--authority", "authority", "--time",
            str(v["created_at"] - 61), ok=False)
    assert_one_line_error(r, "created")  # the attestation, made with it, is in the future too
    # the verified attributes are in the attribute store
    attrs = cli.json("credential", "attributes", "alice")
    assert {a["name"]: a["value"] for a in attrs} == v["attributes"]
    assert all(a["expires_at"] == t for a in attrs)
    assert cli.json("credential", "attributes", "--time", str(t + 1)) == []
    assert "\tadmin\ttrue\t" in cli("credential", "attributes", alice).out


def test_bad_credentials_give_one_line_and_record_nothing(people: Cli, home: Path) -> None:
    cli = people
    cred = cli("credential", "issue", "--identity", "authority", "--subject", "alice",
               "--attribute", "role=admin").out
    cases = [
        (["--authority", "alice"], "not one of the given authorities"),
        (["--authority", "authority", "--subject", "authority"], "is about"),
    ]
    for args, needle in cases:
        assert_one_line_error(cli("credential", "verify", cred, *args, ok=False), needle)
    forged = cred[:300] + ("0" if cred[300] != "0" else "1") + cred[301:]
    assert_one_line_error(cli("credential", "verify", forged, "--authority", "authority",
                              ok=False), "signature")
    assert_one_line_error(cli("credential", "verify", cred[:-2], "--authority", "authority",
                              ok=False), "credential")
    assert_one_line_error(cli("credential", "verify", "zz", "--authority", "authority",
                              ok=False), "not a hex string")
    assert_one_line_error(cli("credential", "verify", cred + "00", "--authority", "authority",
                              ok=False), "trailing")
    r = cli("credential", "verify", cred, "--authority", "I" + "ab" * 32, ok=False)
    assert_one_line_error(r, "not known here")
    r = cli("credential", "verify", cred, ok=False)
    assert r.returncode == 2 and "--authority" in r.stderr
    assert _rows(home, "SELECT * FROM subject_attribute") == []
    # a store that fails keeps nothing either
    r = cli("credential", "store", "--identity", "authority", cred, "--authority", "authority",
            ok=False)
    assert_one_line_error(r, "is about")
    assert cli.json("credential", "list") == []


def test_authorities_and_subjects_by_history_identifier_and_file(people: Cli, home: Path,
                                                                 tmp_path: Path) -> None:
    cli = people
    issuer_home = Cli(tmp_path / "issuer-home")
    issuer_home("identity", "create", "ca")
    ca_hex = issuer_home("identity", "export", "ca").out
    alice_hex = cli("identity", "export", "alice").out
    (tmp_path / "alice.hex").write_text(alice_hex)
    cred = issuer_home("credential", "issue", "--identity", "ca", "--subject",
                       "@" + str(tmp_path / "alice.hex"), "--attribute", "k=v").out
    # the issuer's history as hex: verified and imported
    assert cli.json("credential", "verify", cred, "--authority", ca_hex)["valid"]
    ca = issuer_home.json("identity", "show", "ca")["identifier"]
    assert cli.json("identity", "show", ca)["identifier"] == ca
    # now known: by identifier, and from a file
    (tmp_path / "ca.hex").write_text(ca_hex)
    assert cli.json("credential", "verify", cred, "--authority", ca)["valid"]
    assert cli.json("credential", "verify", cred, "--authority", "@" + str(tmp_path / "ca.hex"),
                    "--authority", "authority")["valid"]
    assert cli.json("credential", "verify", cred, "--authority", ca, "--subject", alice_hex)[
        "valid"]


def test_schema_mismatch_is_refused_by_the_issuer(people: Cli) -> None:
    cli = people
    cli("schema", "create", "5", "--attribute", "level:int", "--attribute", "admin:bool")
    for attr, needle in [("level=high", "'level' must be an int"),
                         ("admin=maybe", "'admin' must be a bool"),
                         ("colour=red", "not in schema 5")]:
        r = cli("credential", "issue", "--identity", "authority", "--subject", "alice",
                "--schema", "5", "--attribute", attr, ok=False)
        assert_one_line_error(r, needle)
    for bad in (["--attribute", "novalue"], ["--attribute", "=x"], ["--ttl", "soon"],
                ["--schema", "-1"], ["--attribute", "a=1", "--attribute", "a=2"]):
        r = cli("credential", "issue", "--identity", "authority", "--subject", "alice", *bad,
                ok=False)
        assert r.returncode == 2
        assert_one_line_error(r)


def test_selective_store_list_present_verify(people: Cli, home: Path, tmp_path: Path) -> None:
    cli = people
    held = cli("credential", "issue", "--identity", "authority", "--subject", "alice",
               "--selective", "--decoys", "2", "--attribute", "role=admin", "--attribute",
               "clearance=ultraviolet", "--attribute", "team=blue").out
    issued = cli.json("credential", "show", held)
    assert issued["kind"] == "disclosable_credential" and len(issued["digests"]) == 5
    assert sorted(d["name"] for d in issued["disclosures"]) == ["clearance", "role", "team"]
    full = cli.json("credential", "verify", held, "--authority", "authority")
    assert full["format"] == "selective" and full["hidden_digests"] == 2
    assert full["attributes"] == {"clearance": "ultraviolet", "role": "admin", "team": "blue"}
    stored = cli.json("credential", "store", "--identity", "alice", held, "--authority",
                      "authority")
    assert stored["format"] == "selective" and stored["holder_name"] == "alice"
    assert cli("credential", "store", "--identity", "alice", held, "--authority",
               "authority").out == f"Stored credential {stored['id']} for alice"  # idempotent
    listed = cli.json("credential", "list", "--identity", "alice")
    assert [x["id"] for x in listed] == [stored["id"]] and listed[0]["credential"] == held
    assert cli.json("credential", "list", "--identity", "authority") == []
    assert "alice\tselective" in cli("credential", "list").out
    expires = listed[0]["expires_at"]
    assert cli.json("credential", "list", "--time", str(expires + 1))[0]["expired"] is True

    p = cli("credential", "present", "--identity", "alice", held, "--reveal", "role,team",
            "--audience", "api", "--nonce", "n1").out
    raw = bytes.fromhex(p)
    assert b"ultraviolet" not in raw and b"clearance" not in raw and b"admin" in raw
    (tmp_path / "p.hex").write_text(p)
    shown = cli.json("credential", "show", "@" + str(tmp_path / "p.hex"))
    assert shown["kind"] == "presentation" and shown["audience"] == "api"
    assert [d["name"] for d in shown["disclosures"]] == ["role", "team"]
    # wrong audience, wrong nonce, stale: refused, and the nonce is not used up
    for args, needle in [(["--audience", "web", "--nonce", "n1"], "audience"),
                         (["--audience", "api", "--nonce", "n2"], "nonce"),
                         (["--audience", "api", "--nonce", "n1", "--time",
                           str(shown["presented_at"] + 301)], "stale")]:
        r = cli("credential", "verify-presentation", p, "--authority", "authority", *args,
                ok=False)
        assert_one_line_error(r, needle)
    ok = cli.json("credential", "verify-presentation", "--file", str(tmp_path / "p.hex"),
                  "--authority", "authority", "--audience", "api", "--nonce", "n1",
                  "--subject", "alice")
    assert ok["attributes"] == {"role": "admin", "team": "blue"} and ok["hidden_digests"] == 3
    assert ok["holder"] == ok["subject"] and ok["nonce"] == "n1"
    # a second run sees the nonce: a replay
    r = cli("credential", "verify-presentation", p, "--authority", "authority", "--audience",
            "api", "--nonce", "n1", ok=False)
    assert_one_line_error(r, "already used")
    # plain output
    p2 = cli("credential", "present", "--identity", "alice", held, "--reveal", "team",
             "--audience", "api", "--nonce", "n3").out
    out = cli("credential", "verify-presentation", p2, "--authority", "authority",
              "--audience", "api", "--nonce", "n3").out
    assert out.startswith("valid") and "  team: blue" in out and "role" not in out
    # presenting needs a selective credential, a known attribute, and the subject's identity
    ockam = cli("credential", "issue", "--identity", "authority", "--subject", "alice").out
    assert_one_line_error(cli("credential", "present", "--identity", "alice", ockam,
                              "--audience", "a", "--nonce", "n", ok=False), "selective")
    assert_one_line_error(cli("credential", "present", "--identity", "alice", held, "--reveal",
                              "age", "--audience", "a", "--nonce", "n", ok=False), "'age'")
    assert_one_line_error(cli("credential", "present", "--identity", "authority", held,
                              "--audience", "a", "--nonce", "n", ok=False), "not the subject")
    assert_one_line_error(cli("credential", "verify-presentation", held, "--authority",
                              "authority", "--audience", "a", "--nonce", "n", ok=False),
                          "expected a presentation")


def test_key_vault(people: Cli, home: Path) -> None:
    cli = people
    cli("vault", "create", "signer")
    cred = cli.json("credential", "issue", "--identity", "authority", "--subject", "alice",
                    "--key-vault", "signer", "--attribute", "a=b")
    [(vault, handle)] = _rows(home, "SELECT vault, key_handle FROM purpose_key WHERE purpose = "
                                    "'credential_signing'")
    assert vault == "signer"
    assert any(handle in p.name for p in (home / "vaults" / "signer").iterdir())
    assert not any(handle in p.name for p in (home / "vaults" / "default").iterdir())
    assert cli.json("credential", "verify", cred["credential"], "--authority", "authority")[
        "valid"]
    # the key is reused from that vault
    again = cli.json("credential", "issue", "--identity", "authority", "--subject", "alice",
                     "--key-vault", "signer")
    assert again["credential"][-200:] == cred["credential"][-200:]  # same attestation
    r = cli("credential", "issue", "--identity", "authority", "--subject", "alice",
            "--key-vault", "nope", ok=False)
    assert_one_line_error(r, "no vault named 'nope'")


def test_vectors_through_the_cli(cli: Cli) -> None:
    spec = SCENARIO["spec"]
    art = SCENARIO["artefacts"]
    cred = art["credential_and_purpose_key:member_credential"]
    v = cli.json("credential", "verify", cred, "--authority", art["identity:authority"],
                 "--subject", art["identity:member"], "--time", str(spec["now"]))
    assert v["issuer"] == SCENARIO["expected"]["identity:authority"]["identifier"]
    assert v["attributes"]["ockam-role"] == "enroller"
    assert v["created_at"] == 1700000300
    shown = cli.json("credential", "show", REAL["hex"])
    assert shown["attributes"] == REAL["expected"]["credential"]["attributes"]
    assert shown["issuer"] == REAL["expected"]["purpose_key_attestation"]["subject"]
    bare = CredentialAndPurposeKey.decode(bytes.fromhex(REAL["hex"])).credential.encode().hex()
    shown = cli.json("credential", "show", bare)
    assert shown["kind"] == "credential" and shown["format"] == "ockam"
    assert shown["attributes"]["ockam-role"] == "enroller"
    assert_one_line_error(cli("credential", "verify", bare, "--authority", "authority", ok=False),
                          "credential with its purpose key")
    r = cli("credential", "verify", REAL["hex"], "--authority", art["identity:authority"],
            "--time", str(REAL["verify_at"]), ok=False)
    assert_one_line_error(r, "not one of the given authorities")


def test_schema_commands(cli: Cli) -> None:
    assert cli("schema", "create", "42", "--attribute", "a:int", "--attribute", "b:list",
               "--description", "demo").out == "Created schema 42"
    big = str((1 << 64) - 1)
    created = cli.json("schema", "create", big, "--attribute", "x:float")
    assert created == {"id": (1 << 64) - 1, "attributes": {"x": "float"}, "description": ""}
    assert cli.json("schema", "show", "42") == {"id": 42, "attributes": {"a": "int", "b": "list"},
                                                "description": "demo"}
    assert "  a: int" in cli("schema", "show", "42").out
    assert [s["id"] for s in cli.json("schema", "list")] == [42, (1 << 64) - 1]
    assert cli("schema", "list").out.splitlines()[0] == "42\ta:int,b:list\tdemo"
    assert_one_line_error(cli("schema", "create", "42", "--attribute", "a:int", ok=False),
                          "already exists")
    for bad in (["create", "43", "--attribute", "a:number"], ["create", "x", "--attribute", "a:int"],
                ["create", str(1 << 64), "--attribute", "a:int"], ["show", "abc"]):
        r = cli("schema", *bad, ok=False)
        assert r.returncode == 2
        assert_one_line_error(r)
    assert cli.json("schema", "delete", "42") == {"deleted": 42}
    assert_one_line_error(cli("schema", "show", "42", ok=False), "no schema 42")
    assert_one_line_error(cli("schema", "delete", "42", ok=False), "no schema 42")


@pytest.mark.parametrize("noun,verbs", [
    ("credential", ["issue", "verify", "show", "store", "list", "present", "verify-presentation",
                    "attributes"]),
    ("schema", ["create", "show", "list", "delete"]),
])
def test_help_has_examples(cli: Cli, noun: str, verbs: list[str]) -> None:
    top = cli(noun, "--help").out
    assert "Example" in top
    for verb in verbs:
        assert verb in top
        out = cli(noun, verb, "--help").out
        assert "Example" in out and "--output" in out


def test_bad_presentations_give_one_line_and_record_nothing(people: Cli, home: Path) -> None:
    cli = people
    cli("identity", "create", "mallory")
    held = cli("credential", "issue", "--identity", "authority", "--subject", "alice",
               "--selective", "--attribute", "role=admin", "--ttl", "10m").out
    p = cli.json("credential", "present", "--identity", "alice", held, "--reveal", "role",
                 "--audience", "api", "--nonce", "n1")
    hexp, at = p["presentation"], p["presented_at"]
    sig_byte = len(hexp) - 20  # inside the holder's signature
    forged = hexp[:sig_byte] + ("0" if hexp[sig_byte] != "0" else "1") + hexp[sig_byte + 1:]
    common = ["--audience", "api", "--nonce", "n1"]
    cases = [
        ([forged, "--authority", "authority"], "invalid holder signature"),
        ([hexp, "--authority", "mallory"], "not one of the given authorities"),
        ([hexp, "--authority", "authority", "--subject", "mallory"], "is about"),
        ([hexp, "--authority", "authority", "--time", str(at + 601)], "stale"),
        ([hexp, "--authority", "authority", "--time", str(at - 61)], "future"),
    ]
    for args, needle in cases:
        r = cli("credential", "verify-presentation", *args, *common, ok=False)
        assert_one_line_error(r, needle)
    assert _rows(home, "SELECT * FROM seen_nonce") == []
    assert _rows(home, "SELECT * FROM subject_attribute") == []
    # the credential inside expired (10 minutes), though the presentation is fresh
    late = cli("credential", "present", "--identity", "alice", held, "--reveal", "role",
               "--audience", "api", "--nonce", "n2", "--time", str(at + 601)).out
    r = cli("credential", "verify-presentation", late, "--authority", "authority", "--audience",
            "api", "--nonce", "n2", "--time", str(at + 601), ok=False)
    assert_one_line_error(r, "expired")
    assert _rows(home, "SELECT * FROM seen_nonce") == []
    # the genuine one still verifies once
    assert cli.json("credential", "verify-presentation", hexp, "--authority", "authority",
                    *common)["valid"]
    assert len(_rows(home, "SELECT * FROM seen_nonce")) == 1
