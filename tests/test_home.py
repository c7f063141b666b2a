"""The home directory is private (issue 9, item 9): an existing home that others can read is
tightened to 0700; one that others can write to or another user owns is refused, in one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Cli, assert_one_line_error
from trust.errors import StorageError
from trust.home import ensure_home, state_db_path


def test_new_home_is_0700(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        home = ensure_home(tmp_path / "a" / "home")
    finally:
        os.umask(old)
    assert home.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o711, 0o700])
def test_readable_home_is_tightened(tmp_path: Path, mode: int) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(mode)
    state_db_path(home)
    assert home.stat().st_mode & 0o7777 == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757, 0o1777, 0o1700])
def test_home_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(mode)
    with pytest.raises(StorageError, match="chmod 0700"):
        ensure_home(home)
    assert home.stat().st_mode & 0o7777 == mode  # left as it was


def test_home_of_another_user_or_not_a_directory_is_refused(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.write_text("")
    with pytest.raises(StorageError, match="not a directory"):
        ensure_home(home)
    home.unlink()
    home.mkdir(mode=0o700)
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(home).st_uid + 1)
    with pytest.raises(StorageError, match="another user"):
        ensure_home(home)


def test_cli_refuses_a_shared_home_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o777)
    r = Cli(home)("vault", "list", ok=False)
    assert_one_line_error(r, "can be written by others", str(home))
    assert "internal error" not in r.stderr
    home.chmod(0o755)
    Cli(home)("vault", "list")
    assert home.stat().st_mode & 0o777 == 0o700
