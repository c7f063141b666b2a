"""The truststack home directory: ``$TRUSTSTACK_HOME`` or ``~/.truststack`` (created 0700).

The home holds keys and state, so it must be private. A directory that already exists is
checked each time it is used: one owned by another user, or one that others can write to (they
may have planted files there), is refused with a :class:`~trust.errors.StorageError` saying what
to do; one that others can only read or enter (e.g. 0755, made under a loose umask) is tightened
to 0700.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from trust.errors import StorageError

ENV_VAR = "TRUSTSTACK_HOME"
STATE_DB = "state.sqlite"


def home_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """The home directory to use (not created)."""
    if home is not None:
        return Path(home)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path.home() / ".truststack"


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 if missing, else make sure it is private
    (see the module's documentation); return it."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise StorageError(f"{path} exists and is not a directory") from None
    except OSError as e:
        raise StorageError(f"cannot create {path}: {e.strerror or e}") from None
    secure_dir(path)
    return path


def secure_dir(path: Path) -> None:
    """Refuse or tighten an existing directory that is not private to this user."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise StorageError(f"cannot use {path}: {e.strerror or e}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise StorageError(f"{path} is not a directory")
    if st.st_uid != os.geteuid():
        raise StorageError(f"{path} is owned by another user (uid {st.st_uid}); truststack keeps "
                           f"keys there and uses only a directory of its own: set {ENV_VAR} to one")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022 or mode & stat.S_ISVTX:
        raise StorageError(f"{path} can be written by others (mode {mode:04o}); truststack keeps "
                           f"keys there: run chmod 0700 {path}, or set {ENV_VAR} to a private directory")
    if mode & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError as e:
            raise StorageError(f"{path} is accessible by others (mode {mode:04o}) and cannot be "
                               f"made private: {e.strerror or e}") from None


def ensure_home(home: str | os.PathLike[str] | None = None) -> Path:
    return ensure_dir(home_dir(home))


def state_db_path(home: str | os.PathLike[str] | None = None) -> Path:
    return ensure_home(home) / STATE_DB
