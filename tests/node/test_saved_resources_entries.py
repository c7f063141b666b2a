"""``resources.json`` accepts exactly what the create commands accept (a relay name of up to 128
characters above all), and one malformed entry does not stop the node: it is skipped, listed
by ``node show`` under ``not_restored`` and removed by deleting the resource of that name."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.conftest import Cli, assert_one_line_error
from tests.fixtures.nodes import stop_all_nodes
from trust.errors import UsageError
from trust.node.portal_feature import via_route
from trust.node.saved_resources import FILE_NAME, SavedResources
from trust.relays.messages import MAX_NAME

LONGEST = "r" * MAX_NAME  # 128: the longest relay name relay create takes


def _write(directory: Path, doc: dict[str, object]) -> Path:
    path = directory / FILE_NAME
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    return path


def test_a_relay_name_relay_create_takes_is_saved_and_read_back(tmp_path: Path) -> None:
    saved = SavedResources(tmp_path)
    for name in ("a" * 65, LONGEST):
        saved.save("relay", name, {"name": name, "at": "/node/hub", "authorized": [],
                                   "timeout": 30.0})
    again = SavedResources(tmp_path)
    assert [n for n, _ in again.items("relay")] == ["a" * 65, LONGEST]
    assert again.malformed("relay") == []


@pytest.mark.parametrize(("kind", "name", "params", "why"), [
    ("tcp_inlet", "db", "not an object", "not an object"),
    ("tcp_inlet", "a b", {}, "'name' parameter is not the entry's name"),
    ("tcp_outlet", "db", {"to": "127.0.0.1:5432", "from": "other"}, "'from' parameter"),
    ("relay", "r", 1, "not an object"),
    ("relay", "register", {"name": "register", "at": "/node/hub"}, "ephemeral"),
    ("relay", "r" * 129, {"name": "r" * 129, "at": "/node/hub"}, "longer than 128"),
])
def test_a_malformed_entry_is_left_out_and_listed(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                  kind: str, name: str, params: object,
                                                  why: str) -> None:
    good = {"to": "127.0.0.1:5432", "from": "ok"}
    entries: dict[str, dict[str, object]] = {"tcp_outlet": {"ok": good}}
    entries.setdefault(kind, {})[name] = params
    path = _write(tmp_path, {"version": 1, **entries})
    before = path.read_bytes()
    saved = SavedResources(tmp_path)
    with caplog.at_level(logging.WARNING, "trust.node.saved_resources"):
        assert saved.items("tcp_outlet") == [("ok", good)]
    assert all(n != name for n, _ in saved.items(kind))
    ((shown, error),) = saved.malformed(kind)
    assert shown == name if len(name) <= MAX_NAME else shown.startswith(name[:MAX_NAME])
    assert len(shown) < MAX_NAME + 20
    assert error.startswith(f"{FILE_NAME} holds a malformed entry: ") and why in error
    assert "malformed entry" in caplog.text
    assert path.read_bytes() == before  # reading changes nothing
    saved.save("tcp_outlet", "new", {"to": "127.0.0.1:1", "from": "new"})  # kept when writing
    assert name in json.loads(path.read_text())[kind]
    assert saved.forget(kind, shown) == (shown == name)  # deleting it removes it
    if shown == name:
        assert name not in json.loads(path.read_text())[kind] and saved.malformed(kind) == []


def test_via_takes_the_relay_names_relay_create_takes() -> None:
    route = via_route("/ip4/127.0.0.1/tcp/4000/service/api", LONGEST)
    assert route.endswith(f"/service/forward_to_{LONGEST}/secure/api/service/outlet")
    for bad in ("r" * (MAX_NAME + 1), "a b", "register"):
        with pytest.raises(UsageError):
            via_route("/node/hub", bad)


def test_a_relay_with_the_longest_name_comes_back_after_a_restart(cli: Cli, home: Path) -> None:
    try:
        cli("node", "create", "hub")
        cli("node", "create", "bank")
        cli("relay", "create", LONGEST, "--to", "bank", "--at", "/node/hub")
        cli("node", "stop", "bank")
        cli("node", "start", "bank")  # (before: "'relay' holds a malformed entry", no start)
        shown = cli.json("node", "show", "bank")
        assert [r["name"] for r in shown["relays"]] == [LONGEST] and shown["not_restored"] == []
        cli("relay", "delete", LONGEST, "--at", "bank")
    finally:
        stop_all_nodes(home)


def test_a_node_with_a_malformed_entry_starts_and_reports_it(cli: Cli, home: Path) -> None:
    try:
        cli("node", "create", "n1")
        cli("tcp-outlet", "create", "--at", "n1", "--to", "127.0.0.1:5432", "--from", "db")
        cli("node", "stop", "n1")
        path = home / "nodes" / "n1" / FILE_NAME
        doc = json.loads(path.read_text())
        doc["tcp_inlet"] = {"web": "not an object"}
        path.write_text(json.dumps(doc))
        cli("node", "start", "n1")
        shown = cli.json("node", "show", "n1")
        assert [o["name"] for o in shown["outlets"]] == ["db"]  # the rest is made again
        (missing,) = shown["not_restored"]
        assert missing["kind"] == "tcp-inlet" and missing["name"] == "web"
        assert "malformed entry" in missing["error"]
        plain = cli("node", "show", "n1").stdout
        assert "Not made again at start: 1" in plain and "tcp-inlet web: " in plain
        cli("tcp-inlet", "delete", "web", "--at", "n1")  # the way out: delete it
        assert "web" not in json.loads(path.read_text())["tcp_inlet"]
        cli("node", "stop", "n1")
        cli("node", "start", "n1")
        shown = cli.json("node", "show", "n1")
        assert shown["not_restored"] == [] and [o["name"] for o in shown["outlets"]] == ["db"]
    finally:
        stop_all_nodes(home)


def test_an_inlet_via_a_relay_name_of_128_characters(cli: Cli, home: Path, tmp_path: Path) -> None:
    cli("identity", "create", "auth")
    history = tmp_path / "auth.hex"
    history.write_text(cli("identity", "export", "auth").out)
    try:
        cli("node", "create", "n1", "--authority", f"@{history}", "--authority-route",
            "/ip4/127.0.0.1/tcp/1/service/api")
        inlet = cli.json("tcp-inlet", "create", "--at", "n1", "--via", LONGEST, "--name", "db")
        assert inlet["via"] == LONGEST and f"forward_to_{LONGEST}/" in inlet["route"]
        too_long = cli("tcp-inlet", "create", "--at", "n1", "--via", LONGEST + "r", ok=False)
        assert too_long.returncode == 2
        assert_one_line_error(too_long, "--via: ", "1 to 128")
        cli("node", "stop", "n1")
        cli("node", "start", "n1")
        shown = cli.json("node", "show", "n1")
        assert [i["via"] for i in shown["inlets"]] == [LONGEST] and shown["not_restored"] == []
    finally:
        stop_all_nodes(home)
