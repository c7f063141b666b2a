"""A background node's record files are read strictly (issue 9): bounded, regular files only, known
fields typed; anything else is a StorageError naming the file, never a hang or another error."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, assert_one_line_error
from trust.errors import NotFoundError, StorageError
from trust.node.files import MAX_RECORD_BYTES, NodePaths, read_json


def node(home: Path, name: str = "n1", **config: Any) -> NodePaths:
    paths = NodePaths(name, home)
    paths.create_dir()
    (paths.config).write_text(json.dumps({"name": name, "identity": None,
                                          "tcp_listener_address": None, "created_at": 1, **config}))
    return paths


def test_a_valid_record_reads_back(tmp_path: Path) -> None:
    paths = node(tmp_path, future_field={"kept": True})
    assert paths.require()["future_field"] == {"kept": True}
    assert read_json(paths.state) is None
    assert paths.read_pid() is None
    paths.pid.write_text("1234\n")
    assert paths.read_pid() == 1234


@pytest.mark.timeout(10)
def test_fifo_symlink_directory_or_oversize_record_refused(tmp_path: Path) -> None:
    paths = node(tmp_path)
    good = paths.config.read_bytes()
    for make in ("fifo", "symlink", "directory", "oversize"):
        paths.config.unlink() if not paths.config.is_dir() else paths.config.rmdir()
        if make == "fifo":
            os.mkfifo(paths.config, 0o600)  # used to block `node show` forever
        elif make == "symlink":
            (tmp_path / "elsewhere.json").write_bytes(good)
            paths.config.symlink_to(tmp_path / "elsewhere.json")
        elif make == "directory":
            paths.config.mkdir()
        else:
            paths.config.write_bytes(good[:-1] + b" " * MAX_RECORD_BYTES + b"}")
        with pytest.raises(StorageError, match=r"node\.json"):
            paths.require()
    paths.config.unlink()
    with pytest.raises(NotFoundError):
        paths.require()
    for record in (paths.pid, paths.state, paths.control_tcp):
        os.mkfifo(record, 0o600)
        with pytest.raises(StorageError, match="not a regular file"):
            paths.read_pid() if record == paths.pid else read_json(record)
        record.unlink()


BAD_CONFIGS: list[Any] = [
    "[" * 100_000, "NaN", '{"name": "n1", "created_at": NaN}', "[1, 2]", "\"text\"", "\xff",
    {"name": 5}, {"name": "other"}, {"identity": 5}, {"identity": ["a"]},
    {"tcp_listener_address": {"a": 1}}, {"created_at": "yesterday"}, {"created_at": True},
    {"created_at": 10**30}, {"identifier": 1.5}, {"hop_allow": "*"}, {"hop_allow": [1]},
    {"max_connections": "many"}, {"max_connections": 0}, {"max_connections": 10**12},
    {"idle_timeout": -1}, {"idle_timeout": 1e300}, {"stall_timeout": "60s"}, {"stall_timeout": True},
]


@pytest.mark.parametrize("bad", BAD_CONFIGS, ids=[str(i) for i in range(len(BAD_CONFIGS))])
def test_malformed_node_json(tmp_path: Path, bad: Any) -> None:
    paths = node(tmp_path)
    if isinstance(bad, dict):
        doc = {"name": "n1", **bad}
        paths.config.write_text(json.dumps(doc))
    else:
        paths.config.write_bytes(bad.encode("latin-1"))
    with pytest.raises(StorageError, match=r"node\.json"):
        paths.require()


@pytest.mark.parametrize("text", ["abc", "\u0663\u0664", "-5", "0", "99999999999", "12 34", "1e3",
                                  "", " "])
def test_malformed_pid(tmp_path: Path, text: str) -> None:
    paths = node(tmp_path)
    paths.pid.write_text(text)
    if text == "":
        assert paths.read_pid() is None  # being written
        return
    with pytest.raises(StorageError, match="pid"):
        paths.read_pid()


@pytest.mark.parametrize("bad", [{"port": True}, {"port": 70000}, {"port": "80"}, {"host": 5},
                                 {"token": "not hex"}, {"token": 12}, {"token": "ab" * 300},
                                 {"transport": "udp"}])
def test_malformed_control_json(tmp_path: Path, bad: dict[str, Any]) -> None:
    paths = node(tmp_path)
    good = {"transport": "tcp", "host": "127.0.0.1", "port": 4000, "token": "ab" * 32}
    fd = os.open(paths.control_tcp, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, json.dumps({**good, **bad}).encode())
    os.close(fd)
    with pytest.raises(StorageError, match=r"control\.json"):
        paths.read_control()


def test_control_json_must_be_private(tmp_path: Path) -> None:
    paths = node(tmp_path)
    paths.control_tcp.write_text(json.dumps({"host": "127.0.0.1", "port": 4000, "token": "ab" * 32}))
    paths.control_tcp.chmod(0o644)
    with pytest.raises(StorageError, match="chmod 0600"):
        paths.read_control()
    paths.control_tcp.chmod(0o600)
    assert paths.read_control() is not None and paths.read_control()["port"] == 4000  # type: ignore[index]


@pytest.mark.parametrize("bad", [{"listeners": "127.0.0.1:1"}, {"listeners": [5]}, {"pid": -1},
                                 {"control": []}])
def test_malformed_state_json(tmp_path: Path, bad: dict[str, Any]) -> None:
    paths = node(tmp_path)
    paths.state.write_text(json.dumps({"name": "n1", "pid": 5, "listeners": [], **bad}))
    with pytest.raises(StorageError, match=r"state\.json"):
        paths.read_state()


@pytest.mark.timeout(30)
def test_cli_reports_a_tampered_record_in_one_line(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home")
    paths = node(tmp_path / "home")
    paths.config.write_text(json.dumps({"name": "n1", "identity": {"x": 1}}))
    r = cli("node", "show", "n1", ok=False)
    assert_one_line_error(r, "node.json")
    assert "internal error" not in r.stderr
    paths.config.unlink()
    os.mkfifo(paths.config, 0o600)
    r = cli("node", "show", "n1", ok=False, timeout=10)
    assert_one_line_error(r, "node.json", "not a regular file")
    r = cli("node", "delete", "n1")  # a broken node can still be removed
    assert not paths.dir.exists()
