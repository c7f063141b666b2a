"""The truststack home directory: ``$TRUSTSTACK_HOME`` or ``~/.truststack`` (created 0700)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "TRUSTSTACK_HOME"
STATE_DB = "state.sqlite"


def home_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """The home directory to use (not created)."""
    if home is not None:
        return Path(home)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path.home() / ".truststack"


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 if missing; return it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def ensure_home(home: str | os.PathLike[str] | None = None) -> Path:
    return ensure_dir(home_dir(home))


def state_db_path(home: str | os.PathLike[str] | None = None) -> Path:
    return ensure_home(home) / STATE_DB
