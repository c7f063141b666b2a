"""Shared fixtures: a temporary home and the real ``truststack`` executable."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests.fixtures.postgres import PostgresServer, start_postgres

# Property tests draw the same examples on every run, so a CI run is reproducible and a red
# run means a change broke something. To explore new examples locally (and turn what they find
# into explicit tests): HYPOTHESIS_PROFILE=explore python -m pytest ...
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BIN_DIR = Path(sys.executable).parent
TRUSTSTACK = str(BIN_DIR / "truststack")

_SIGINT_DEFAULT_THEN_EXEC = ("import os, signal, sys; signal.signal(signal.SIGINT, "
                             "signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])")


def popen_interruptible(args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    """``subprocess.Popen(args, text=True, **kwargs)`` for a process the test interrupts with
    SIGINT (Ctrl-C). A process started with SIGINT ignored keeps it ignored, and Python then
    installs no KeyboardInterrupt handler: a test worker's SIGINT may be ignored (set so by a
    library an earlier test in the same worker used), so the Ctrl-C a test sends would do
    nothing, in some runs only. A small exec wrapper restores the default first (a preexec_fn
    would run Python in a forked child of this multi-threaded process, where gRPC's fork
    hooks, from the GCP KMS tests, abort it)."""
    return subprocess.Popen([sys.executable, "-c", _SIGINT_DEFAULT_THEN_EXEC, *args],
                            text=True, **kwargs)


SLOW_FILES_FIRST = (
    "tests/test_docs.py",  # 114 s
    "tests/vaults/test_cli_backends.py",  # 68 s
    "tests/node/test_enforcement.py",  # 60 s
    "tests/relays/test_cli_relays.py",  # 54 s
    "tests/credentials/test_cli.py",  # 54 s
    "tests/enrollment_cli/test_cli_flow.py",  # 42 s
    "tests/channels/test_cli_channels.py",  # 39 s
    "tests/node/test_cli.py",  # 37 s
    "tests/credentials/test_tamper.py",  # 36 s
    "tests/identities/test_cli.py",  # 35 s
    "tests/policies/test_cli.py",  # 34 s
    "tests/test_benchmarks_run.py",  # 33 s
    "tests/portals/test_cli_relay.py",  # 27 s
    "tests/portals/test_cli.py",  # 25 s
    "tests/test_self_contained.py",  # 23 s
    "tests/node/test_saved_resources.py",  # 23 s
    "tests/streams/test_cli.py",  # 22 s
    "tests/cli/test_conventions.py",  # 22 s
    "tests/test_demo.py",  # 21 s
    "tests/test_file_fuzz.py",  # 18 s
    "tests/relays/test_cli_authority_relays.py",  # 17 s
    "tests/node/test_saved_resources_entries.py",  # 15 s
    "tests/node/test_cli_limits.py",  # 15 s
    "tests/enrollment_cli/test_review_cli.py",  # 15 s
    "tests/enrollment_cli/test_cli_lifecycle.py",  # 15 s
    "tests/policies/test_properties.py",  # 14 s
    "tests/enrollment_client/test_e2e_cli.py",  # 14 s
    "tests/relays/test_relays.py",  # 13 s
    "tests/policies/test_hostile.py",  # 13 s
    "tests/node/test_cli_untrusted_output.py",  # 13 s
    "tests/storage/test_policies.py",  # 12 s
    "tests/portals/test_portal.py",  # 12 s
    "tests/enrollment_cli/test_replicas.py",  # 12 s
    "tests/portals/test_liveness.py",  # 11 s
    "tests/identities/test_negative.py",  # 11 s
    "tests/test_postgres_portal_example.py",  # 10 s
    "tests/node/test_node_files_safety.py",  # 10 s
    "tests/models/test_decode_caches.py",  # 10 s
    "tests/enrollment_client/test_cli_ticket.py",  # 10 s
)
"""The files that take longest (10 s or more, measured with 3 workers on 2 cores; all of them:
one of 15 s left to the default order may start last), longest first: with several workers
(pytest-xdist, one file per worker at a time) a long file started last would make everyone
wait for it at the end."""


def pytest_configure(config: pytest.Config) -> None:
    """Schedule files in :data:`SLOW_FILES_FIRST` order; compile the packages' bytecode once,
    before any test (in the controller, not in each xdist worker). The suite starts some
    thousand ``truststack`` and node processes; where ``PYTHONDONTWRITEBYTECODE`` is set (as
    in many CI images) no process writes its ``.pyc`` files, so each compiled every module it
    imported from source again: ``identity create`` took 0.50 s instead of 0.25, ``node
    create`` 1.15 s instead of 0.68 (compiling once takes about 0.8 s)."""
    if hasattr(config, "workerinput"):
        return
    # pytest-xdist >= 3.6 hands out --dist loadfile's files by their number of tests, most
    # first, unless told to keep the collection order: then test_docs.py (2 tests, 100 s) ran
    # last and the whole run waited for it. Keep SLOW_FILES_FIRST's order.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    import compileall

    root = Path(str(config.rootpath))
    for package in ("trust", "vaults", "policies"):
        compileall.compile_dir(root / package, quiet=1)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than the cores. Much of the suite waits on node processes
    and servers it started, so a spare worker fills that time (on 2 cores, 3 workers: 5 min
    26 s against 6 min 20 s)."""
    return (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FILES_FIRST)}
    root = Path(str(config.rootpath))

    def key(item: pytest.Item) -> int:
        try:
            rel = Path(str(item.path)).relative_to(root).as_posix()
        except ValueError:
            return len(rank)
        return rank.get(rel, len(rank))

    items.sort(key=key)  # stable: the order inside a file and among the rest is kept


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ``$TRUSTSTACK_HOME`` for this test (also set in this process)."""
    h = tmp_path / "home"
    monkeypatch.setenv("TRUSTSTACK_HOME", str(h))
    yield h


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout.strip()


class Cli:
    """Runs the installed ``truststack`` executable in a subprocess with a given home."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["TRUSTSTACK_HOME"] = str(self.home)
        if extra:
            env.update(extra)
        return env

    def __call__(self, *args: str, ok: bool | None = True, input: str | None = None,
                 env: dict[str, str] | None = None, timeout: float = 60) -> CliResult:
        p = subprocess.run([TRUSTSTACK, *args], capture_output=True, text=True, input=input,
                           env=self.env(env), timeout=timeout)
        r = CliResult(p.returncode, p.stdout, p.stderr)
        if ok is True and r.returncode != 0:
            raise AssertionError(f"truststack {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        if ok is False and r.returncode == 0:
            raise AssertionError(f"truststack {' '.join(args)} unexpectedly succeeded: {r.stdout}")
        return r

    def json(self, *args: str, **kw: object):  # type: ignore[no-untyped-def]
        import json

        r = self(*args, "--output", "json", **kw)  # type: ignore[arg-type]
        return json.loads(r.stdout)


@pytest.fixture
def cli(home: Path) -> Cli:
    return Cli(home)


def assert_one_line_error(r: CliResult, *needles: str) -> None:
    """A failed command printed exactly one line on stderr, no traceback, containing needles."""
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {r.stderr!r}"
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n.lower() in lines[0].lower(), f"{n!r} not in {lines[0]!r}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for this test process (tests/fixtures/postgres.py)."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A URL to a fresh, empty PostgreSQL namespace for this test (a new schema, which is all
    that unqualified table names see; ``postgres_server.create_database()`` makes a whole
    database when a test needs one)."""
    return postgres_server.create_schema()
