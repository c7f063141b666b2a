"""Fuzz every on-disk file the toolkit reads (issue 9, "Done when"): the file vault's ``vault.json``
and key files (encrypted and not, signing and X25519), and a node's records (``node.json``,
``state.json``, ``pid``, ``control.json``). Each is mutated (byte flips, truncation, inserted
bytes, wrong JSON types, deep nesting, huge numbers, replacement by a FIFO, a symbolic link or a
directory) and then used through the public Python API and the CLI. Only typed errors may come
out (TrustError, VaultError, PolicyError; on the CLI one line and exit 1 or 2, never ``internal
error``), each case quickly, the whole test within a time bound. Fixed seed, bounded counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from policies.errors import PolicyError
from tests.conftest import Cli
from trust.errors import TrustError
from vaults.errors import VaultError
from vaults.file import FileVault
from vaults.keys import KeyType

SEED = 9
PER_FILE = 60  # mutations per file (plus every structural one)
CASE_LIMIT = 2.0  # seconds any one case may take
TOTAL_LIMIT = 20.0
FAST_KDF = {"iterations": 1, "memory_kib": 8192, "lanes": 1}
TYPED = (TrustError, VaultError, PolicyError)

WRONG_VALUES: list[Any] = [None, True, False, 0, -1, 1.5, 10**30, -(10**30), 1e308, "", "x" * 5000,
                           "\x00\u202e", [], [1, "a"], {}, {"a": {"b": None}}, "AAAA", "AA==",
                           "[" * 3000 + "]" * 3000]


# -- mutations -----------------------------------------------------------------------------------
Mutation = Callable[[Path, bytes, random.Random], None]


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def flip(path: Path, data: bytes, rng: random.Random) -> None:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if b:
            b[rng.randrange(len(b))] ^= rng.randint(1, 255)
    _write(path, bytes(b))


def truncate(path: Path, data: bytes, rng: random.Random) -> None:
    _write(path, data[: rng.randrange(len(data) + 1)])


def insert(path: Path, data: bytes, rng: random.Random) -> None:
    at = rng.randrange(len(data) + 1)
    _write(path, data[:at] + rng.randbytes(rng.randint(1, 16)) + data[at:])


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def retype(path: Path, data: bytes, rng: random.Random) -> None:
    """Replace a random field's value with a value of another type (or drop or add a field)."""
    doc = json.loads(data)
    where = list(_paths(doc))
    if not where:
        _write(path, json.dumps(rng.choice(WRONG_VALUES)).encode())
        return
    at = rng.choice(where)
    parent = doc
    for k in at[:-1]:
        parent = parent[k]
    action = rng.random()
    if action < 0.1 and isinstance(parent, dict):
        del parent[at[-1]]
    elif action < 0.15 and isinstance(parent, dict):
        parent["extra"] = rng.choice(WRONG_VALUES)
    else:
        parent[at[-1]] = rng.choice(WRONG_VALUES)
    _write(path, json.dumps(doc).encode())


def whole(text: bytes) -> Mutation:
    def replace(path: Path, data: bytes, rng: random.Random) -> None:
        _write(path, text)
    replace.__name__ = f"whole({text[:12]!r})"
    return replace


def fifo(path: Path, data: bytes, rng: random.Random) -> None:
    path.unlink()
    os.mkfifo(path, 0o600)


def symlink(path: Path, data: bytes, rng: random.Random) -> None:
    target = path.with_name(".fuzz-target")
    _write(target, data)
    path.unlink()
    path.symlink_to(target.name)


def dangling(path: Path, data: bytes, rng: random.Random) -> None:
    path.unlink()
    path.symlink_to("/nonexistent/fuzz")


def directory(path: Path, data: bytes, rng: random.Random) -> None:
    path.unlink()
    path.mkdir(mode=0o700)


def loose_mode(path: Path, data: bytes, rng: random.Random) -> None:
    path.chmod(0o644)


def missing(path: Path, data: bytes, rng: random.Random) -> None:
    path.unlink()


STRUCTURAL: list[Mutation] = [
    fifo, symlink, dangling, directory, loose_mode, missing,
    whole(b""), whole(b"[" * 200_000), whole(b'{"a":' * 50_000), whole(b"9" * 100_000),
    whole(b"1e999999"), whole(b"NaN"), whole(b"\xff\xfe\x00"), whole(os.urandom(1 << 20)),
    whole(b"null"), whole(b"[]"), whole(b'"text"'), whole(b"123\n"), whole(b"-1"),
]
RANDOM: list[Mutation] = [flip, truncate, insert, retype, retype]


def mutations(rng: random.Random, data: bytes) -> list[Mutation]:
    chosen = [rng.choice(RANDOM) for _ in range(PER_FILE)]
    try:
        json.loads(data)
    except ValueError:
        chosen = [m for m in chosen if m is not retype]  # the pid file is not JSON
    return STRUCTURAL + chosen


def restore(path: Path, data: bytes, mode: int = 0o600) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    with contextlib.suppress(FileNotFoundError):
        path.with_name(".fuzz-target").unlink()


def attempt(use: Callable[[], Any], label: str) -> str:
    """Run ``use``; only success or a typed error is allowed, within CASE_LIMIT."""
    start = time.monotonic()
    try:
        use()
        outcome = "ok"
    except TYPED as e:
        outcome = type(e).__name__
    except BaseException as e:
        raise AssertionError(f"{label}: {type(e).__name__}: {str(e)[:200]}") from e
    took = time.monotonic() - start
    assert took < CASE_LIMIT, f"{label} took {took:.2f}s"
    return outcome


def fuzz_file(path: Path, use: Callable[[], Any], rng: random.Random, *,
              mode: int = 0o600) -> dict[str, int]:
    original = path.read_bytes()
    attempt(use, f"{path.name} (unmodified)")  # the action works on the intact file
    outcomes: dict[str, int] = {}
    for i, mutate in enumerate(mutations(rng, original)):
        restore(path, original, mode)
        mutate(path, original, rng)
        outcome = attempt(use, f"{path.name} #{i} {mutate.__name__}")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    restore(path, original, mode)
    return outcomes


# -- the Python API ------------------------------------------------------------------------------
def make_vault(directory: Path, passphrase: bytes | None) -> dict[str, str]:
    v = FileVault.create(directory, passphrase, kdf=FAST_KDF)
    return {"ed25519": asyncio.run(v.generate_key(KeyType.ED25519)),
            "p256": asyncio.run(v.generate_key(KeyType.P256)),
            "x25519": v.generate_x25519(persist=True)}


def use_vault(directory: Path, passphrase: bytes | None, handles: dict[str, str]) -> Callable[[], Any]:
    def use() -> None:
        v = FileVault.open(directory, passphrase)
        for kind, h in handles.items():
            if kind == "x25519":
                v.x25519_public_key(h)
            else:
                asyncio.run(v.sign(h, b"m" * 32))
        asyncio.run(v.list_keys())
    return use


def make_node(home: Path) -> Any:
    from trust.node.files import NodePaths, write_json

    paths = NodePaths("n1", home)
    paths.create_dir()
    write_json(paths.config, {"name": "n1", "identity": None, "tcp_listener_address": None,
                              "hop_allow": ["127.0.0.1:4000"], "max_connections": 10000,
                              "idle_timeout": 300.0, "stall_timeout": 60.0,
                              "created_at": 1700000000, "identifier": "I" + "ab" * 32})
    write_json(paths.state, {"name": "n1", "pid": os.getpid(), "status": "running",
                             "listeners": ["127.0.0.1:4000"], "identity": "n1",
                             "identifier": "I" + "ab" * 32,
                             "control": {"transport": "tcp", "host": "127.0.0.1", "port": 4001},
                             "started_at": 1700000000})
    write_json(paths.control_tcp, {"transport": "tcp", "host": "127.0.0.1", "port": 4001,
                                   "token": "ab" * 32})
    paths.pid.write_text(f"{os.getpid()}\n")
    return paths


def use_node(paths: Any, home: Path) -> Callable[[], Any]:
    from trust.node.control_client import ControlClient
    from trust.node.launcher import list_nodes, node_status
    from trust.node.resolve import node_listener_address

    def use() -> None:
        paths.require()
        paths.read_pid()
        node_status("n1", home)   # not running: reads node.json only
        list_nodes(home)
        lock = paths.acquire_lock()  # "running" from here: the readers of the runtime records
        assert lock is not None
        try:
            ControlClient.for_node("n1", home)  # reads control.json, connects to nothing
            node_listener_address("n1", home)   # reads state.json
        finally:
            os.close(lock)
    return use


@pytest.mark.timeout(90)
def test_fuzz_every_file_through_the_api(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    start = time.monotonic()
    report: dict[str, dict[str, int]] = {}
    for passphrase in (None, b"fuzz passphrase"):
        d = tmp_path / ("enc" if passphrase else "plain")
        handles = make_vault(d, passphrase)
        use = use_vault(d, passphrase, handles)
        report[f"{d.name}/vault.json"] = fuzz_file(d / "vault.json", use, rng)
        for kind, h in handles.items():
            report[f"{d.name}/{kind}.key"] = fuzz_file(d / f"{h}.key", use, rng)
    home = tmp_path / "home"
    paths = make_node(home)
    use = use_node(paths, home)
    for record in (paths.config, paths.state, paths.control_tcp):
        report[f"nodes/{record.name}"] = fuzz_file(record, use, rng)
    report["nodes/pid"] = fuzz_file(paths.pid, use, rng, mode=0o644)
    took = time.monotonic() - start
    assert took < TOTAL_LIMIT, f"the fuzz run took {took:.1f}s"
    # every file was really exercised: some mutations were refused, and typed errors only
    for name, outcomes in report.items():
        assert sum(n for k, n in outcomes.items() if k != "ok") >= len(STRUCTURAL) - 3, (name, outcomes)


# -- the CLI -------------------------------------------------------------------------------------
def run_main(args: list[str], home: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """``trust.cli.main.main`` in this process: (exit code, stderr)."""
    from trust.cli.main import main

    monkeypatch.setenv("TRUSTSTACK_HOME", str(home))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(args)
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
    return code, err.getvalue()


def assert_cli_typed(code: int, stderr: str, label: str) -> None:
    assert "internal error" not in stderr and "Traceback" not in stderr, f"{label}: {stderr!r}"
    if code != 0:
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        assert code in (1, 2) and len(lines) == 1 and lines[0].startswith("error: "), \
            f"{label}: exit {code}: {stderr!r}"


@pytest.mark.timeout(120)
def test_fuzz_files_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(SEED + 1)
    pristine = tmp_path / "pristine"
    cli = Cli(pristine)
    cli("identity", "create", "alice")
    cli("vault", "create", "secure", "--passphrase-env", "FUZZ_PASS", env={"FUZZ_PASS": "pw"})
    cli("identity", "create", "bob", "--vault", "secure", env={"FUZZ_PASS": "pw"})
    make_node(pristine)
    monkeypatch.setenv("FUZZ_PASS", "pw")
    vault_files = sorted((pristine / "vaults").glob("*/*"))
    node_files = [pristine / "nodes" / "n1" / n for n in ("node.json", "state.json", "pid")]
    start = time.monotonic()
    cases = 0
    for original in vault_files + node_files:
        rel = original.relative_to(pristine)
        data = original.read_bytes()
        if original.parent.name == "default":
            commands = [["identity", "rotate", "alice"], ["identity", "create", "carol"]]
        elif original.parent.name == "secure":
            commands = [["identity", "rotate", "bob"]]
        else:
            commands = [["node", "show", "n1"], ["node", "list"]]
        for mutate in [*STRUCTURAL[:6], *(rng.choice(RANDOM) for _ in range(6))]:
            if mutate is retype and original.name == "pid":
                mutate = flip
            home = tmp_path / "case"
            shutil.rmtree(home, ignore_errors=True)
            shutil.copytree(pristine, home, symlinks=True)
            mutate(home / rel, data, rng)
            for args in commands:
                code, stderr = run_main(args, home, monkeypatch)
                assert_cli_typed(code, stderr, f"{rel} {mutate.__name__} {' '.join(args)}")
                cases += 1
    assert cases > 50
    # and a few through the real executable, in a subprocess
    for rel, mutate in ((Path("vaults/secure/vault.json"), fifo), (Path("nodes/n1/node.json"), fifo),
                        (Path("vaults/secure/vault.json"), whole(b'{"format": 1, "encryption": '
                                                                   b'"argon2id-aes256gcm", "kdf": '
                                                                   b'{"iterations": 99999999}}'))):
        home = tmp_path / "case"
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(pristine, home, symlinks=True)
        mutate(home / rel, (pristine / rel).read_bytes(), rng)
        args = ["node", "show", "n1"] if rel.parts[0] == "nodes" else ["identity", "rotate", "bob"]
        r = Cli(home)(*args, ok=False, env={"FUZZ_PASS": "pw"}, timeout=15)
        assert_cli_typed(r.returncode, r.stderr, f"{rel} {mutate.__name__} (subprocess)")
    assert time.monotonic() - start < TOTAL_LIMIT + 20
