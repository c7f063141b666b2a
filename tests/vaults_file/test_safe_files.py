"""vaults.safe_files.read_bounded_file: the one bounded, non-blocking read of a hostile file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vaults.safe_files import REASONS, FileRefused, read_bounded_file


def _reason(path: Path, **options: object) -> str:
    with pytest.raises(FileRefused) as info:
        read_bounded_file(path, limit=16, **options)  # type: ignore[arg-type]
    assert info.value.reason in REASONS and "\n" not in info.value.message
    return info.value.reason


def test_each_kind_of_refusal(tmp_path: Path) -> None:
    ok = tmp_path / "ok"
    ok.write_bytes(b"x" * 16)
    ok.chmod(0o600)
    assert read_bounded_file(ok, limit=16, private=True) == b"x" * 16
    assert _reason(tmp_path / "absent") == "missing"
    link = tmp_path / "link"
    link.symlink_to(ok)
    assert _reason(link) == "link"
    assert read_bounded_file(link, limit=16, follow_symlinks=True) == b"x" * 16
    assert _reason(tmp_path) == "directory"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert _reason(fifo) == "not_regular"  # and the open did not block
    big = tmp_path / "big"
    big.write_bytes(b"x" * 17)
    assert _reason(big) == "too_large"
    loose = tmp_path / "loose"
    loose.write_bytes(b"x")
    loose.chmod(0o644)
    assert read_bounded_file(loose, limit=16) == b"x"
    assert _reason(loose, private=True) == "not_private"
