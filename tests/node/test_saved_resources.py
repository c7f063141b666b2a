"""A node makes its outlets, inlets and relays again when it starts (``resources.json`` in its
directory): through the CLI with background nodes (always stopped), and the file itself read
strictly (hostile contents change nothing and name the file)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli, assert_one_line_error
from tests.fixtures.echo import echo_server, through
from tests.fixtures.nodes import stop_all_nodes
from trust.errors import StorageError
from trust.node.saved_resources import FILE_NAME, MAX_BYTES, SavedResources


@pytest.fixture
def echo_port() -> Iterator[int]:
    with echo_server() as port:
        yield port


def _restart(cli: Cli, name: str) -> None:
    cli("node", "stop", name)
    cli("node", "start", name)


@contextlib.contextmanager
def _taken(address: str) -> Iterator[None]:
    """Something else listens on ``address`` (HOST:PORT) meanwhile."""
    host, _, port = address.rpartition(":")
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind((host, int(port)))
        taken.listen()
        yield


def test_portals_and_relays_come_back_after_a_restart(cli: Cli, home: Path,
                                                      echo_port: int) -> None:
    try:
        for name in ("hub", "bank", "analysis"):
            cli("node", "create", name)
        cli("tcp-outlet", "create", "--at", "bank", "--to", f"127.0.0.1:{echo_port}",
            "--silence-timeout", "45s")
        cli("relay", "create", "bank", "--to", "bank", "--at", "/node/hub")
        inlet = cli.json("tcp-inlet", "create", "--at", "analysis", "--to",
                         "/node/hub/secure/api/service/forward_to_bank/secure/api/service/outlet",
                         "--keepalive", "5s")
        assert through(inlet["address"], b"before") == b"before"
        saved = json.loads((home / "nodes" / "bank" / FILE_NAME).read_text())
        assert set(saved["tcp_outlet"]) == {"outlet"} and set(saved["relay"]) == {"bank"}
        assert stat.S_IMODE((home / "nodes" / "bank" / FILE_NAME).stat().st_mode) == 0o600

        for name in ("bank", "analysis"):  # both ends restart; the hub keeps running
            _restart(cli, name)
        bank = cli.json("node", "show", "bank")
        assert [(o["name"], o["silence_timeout"]) for o in bank["outlets"]] == [("outlet", 45)]
        assert [r["name"] for r in bank["relays"]] == ["bank"] and bank["not_restored"] == []
        (again,) = cli.json("node", "show", "analysis")["inlets"]
        assert again["address"] == inlet["address"]  # the port chosen at create is kept
        assert again["keepalive"] == 5
        # the relay registers again in the background: the first connections may find it
        # still registering (the inlet closes them), then data flows
        deadline = time.monotonic() + 20
        while True:
            try:
                if through(inlet["address"], b"after") == b"after":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "no data through the restored portal"
            time.sleep(0.1)

        # deleted resources are not made again
        cli("tcp-outlet", "delete", "outlet", "--at", "bank")
        cli("relay", "delete", "bank", "--at", "bank")
        _restart(cli, "bank")
        bank = cli.json("node", "show", "bank")
        assert bank["outlets"] == [] and bank["relays"] == []
    finally:
        stop_all_nodes(home)


def test_a_portal_that_cannot_come_back_is_shown_kept_and_deletable(cli: Cli, home: Path) -> None:
    try:
        cli("node", "create", "analysis")
        inlet = cli.json("tcp-inlet", "create", "--at", "analysis", "--name", "db", "--to",
                         "/node/nowhere/service/outlet")
        cli("node", "stop", "analysis")
        with _taken(inlet["address"]):  # the inlet's port is taken while the node is down
            cli("node", "start", "analysis")  # the node starts all the same
            shown = cli.json("node", "show", "analysis")
            assert shown["inlets"] == []
            (missing,) = shown["not_restored"]
            assert missing["kind"] == "tcp-inlet" and missing["name"] == "db"
            assert "address" in missing["error"] or "in use" in missing["error"]
            plain = cli("node", "show", "analysis").stdout
            assert "Not made again at start: 1" in plain and "tcp-inlet db: " in plain
            cli("node", "stop", "analysis")
        cli("node", "start", "analysis")  # kept: made again once the port is free
        assert [i["name"] for i in cli.json("node", "show", "analysis")["inlets"]] == ["db"]
        cli("node", "stop", "analysis")
        with _taken(inlet["address"]):
            cli("node", "start", "analysis")
            cli("tcp-inlet", "delete", "db", "--at", "analysis")  # deleting forgets it
            assert cli.json("node", "show", "analysis")["not_restored"] == []
            assert_one_line_error(cli("tcp-inlet", "delete", "db", "--at", "analysis",
                                      ok=False), "no inlet db")
        _restart(cli, "analysis")
        shown = cli.json("node", "show", "analysis")
        assert shown["inlets"] == [] and shown["not_restored"] == []
    finally:
        stop_all_nodes(home)


@pytest.mark.parametrize("content", [
    b"", b"not json", b"[]", b'{"version": 2}', b'{"version": 1, "other": {}}',
    b'{"version": 1, "tcp_inlet": []}', b'{"version": 1, "relay": {"r": 1}, "tcp_outlet": 2}',
    b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000,
], ids=lambda c: repr(c[:24]))
def test_a_hostile_file_is_a_storage_error_naming_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(StorageError) as e:
        SavedResources(tmp_path).items("tcp_inlet")
    assert FILE_NAME in str(e.value)
    assert path.read_bytes() == content  # nothing changed


def test_links_large_and_readable_files_are_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.json"
    real.write_text('{"version": 1}')
    (tmp_path / FILE_NAME).symlink_to(real)
    with pytest.raises(StorageError):
        SavedResources(tmp_path).items("relay")
    (tmp_path / FILE_NAME).unlink()
    big = tmp_path / FILE_NAME
    big.write_bytes(b" " * (MAX_BYTES + 1))
    big.chmod(0o600)
    with pytest.raises(StorageError):
        SavedResources(tmp_path).items("relay")
    big.write_text('{"version": 1}')
    big.chmod(0o644)  # others may read it: refused
    with pytest.raises(StorageError):
        SavedResources(tmp_path).items("relay")


def test_save_and_forget_write_atomically(tmp_path: Path) -> None:
    saved = SavedResources(tmp_path)
    assert saved.items("tcp_outlet") == []
    saved.save("tcp_outlet", "db", {"to": "127.0.0.1:5432", "from": "db"})
    saved.save("relay", "bank", {"name": "bank", "at": "/node/hub"})
    again = SavedResources(tmp_path)
    assert again.items("tcp_outlet") == [("db", {"to": "127.0.0.1:5432", "from": "db"})]
    assert again.forget("relay", "bank") and not again.forget("relay", "bank")
    assert SavedResources(tmp_path).items("relay") == []
    assert sorted(os.listdir(tmp_path)) == [FILE_NAME]  # no temporary file left


def test_a_tampered_file_fails_the_start_in_one_line_naming_it(cli: Cli, home: Path) -> None:
    """(A file that is not a resources file at all; one malformed entry does not stop the node:
    test_saved_resources_entries.py.)"""
    try:
        cli("node", "create", "n1")
        cli("node", "stop", "n1")
        path = home / "nodes" / "n1" / FILE_NAME
        path.write_text('{"version": 1, "tcp_inlet": ["db"]}')
        path.chmod(0o600)
        assert_one_line_error(cli("node", "start", "n1", ok=False), FILE_NAME)
        assert path.read_text() == '{"version": 1, "tcp_inlet": ["db"]}'
        path.unlink()
        cli("node", "start", "n1")
    finally:
        stop_all_nodes(home)
