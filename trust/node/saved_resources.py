"""What a node makes again when it starts: the TCP outlets, TCP inlets and relays created
through its control API (``tcp-outlet create``, ``tcp-inlet create``, ``relay create``).

Each is kept as the parameters it was created with, in ``resources.json`` in the node's
directory (mode 0600, written atomically, read strictly: a file that is not a regular file,
is larger than :data:`MAX_BYTES`, or does not have the shape below is a
:class:`~trust.errors.StorageError` naming it)::

    {"version": 1,
     "tcp_outlet": {"NAME": {...}}, "tcp_inlet": {"NAME": {...}}, "relay": {"NAME": {...}}}

A resource is saved once it exists and forgotten when it is deleted (not when the node stops).
The features re-create them at start; one that fails (a port taken meanwhile) is logged, kept
for the next start, and listed by ``node show`` under ``not_restored`` until it is deleted.
Policies given with ``--allow`` are not part of this file: they are in the node's policy store
already.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

from trust.errors import StorageError
from trust.node.files import read_record, write_json

__all__ = ["FILE_NAME", "KINDS", "MAX_BYTES", "MAX_PER_KIND", "SavedResources"]

FILE_NAME: Final = "resources.json"
KINDS: Final = ("tcp_outlet", "tcp_inlet", "relay")
MAX_BYTES: Final = 4 * 1024 * 1024
MAX_PER_KIND: Final = 1024
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_VERSION: Final = 1


class SavedResources:
    """The saved resources of one node (``directory``: its directory). Read on first use,
    then kept in memory and written through."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / FILE_NAME
        self._doc: dict[str, dict[str, dict[str, Any]]] | None = None

    def _load(self) -> dict[str, dict[str, dict[str, Any]]]:
        if self._doc is None:
            self._doc = self._read()
        return self._doc

    def _read(self) -> dict[str, dict[str, dict[str, Any]]]:
        empty: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        data = read_record(self.path, limit=MAX_BYTES, private=True)
        if data is None:
            return empty
        try:
            doc = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError):
            raise StorageError(f"{self.path} is not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("version") != _VERSION:
            raise StorageError(f"{self.path} is not a version {_VERSION} resources file")
        unknown = set(doc) - {"version", *KINDS}
        if unknown:
            raise StorageError(f"{self.path} has unknown keys ({len(unknown)})")
        for kind in KINDS:
            items = doc.get(kind, {})
            if not isinstance(items, dict) or len(items) > MAX_PER_KIND:
                raise StorageError(f"{self.path}: {kind!r} must be an object of at most "
                                   f"{MAX_PER_KIND} resources")
            for name, params in items.items():
                if not _NAME.match(name) or not isinstance(params, dict):
                    raise StorageError(f"{self.path}: {kind!r} holds a malformed entry")
            empty[kind] = items
        return empty

    def items(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """The saved resources of ``kind`` (one of :data:`KINDS`), by name."""
        return sorted(self._load()[kind].items())

    def save(self, kind: str, name: str, params: dict[str, Any]) -> None:
        doc = self._load()
        self._write({**doc, kind: {**doc[kind], name: params}})

    def forget(self, kind: str, name: str) -> bool:
        """Remove a saved resource; ``False`` when there was none of that name."""
        doc = self._load()
        if name not in doc[kind]:
            return False
        self._write({**doc, kind: {n: p for n, p in doc[kind].items() if n != name}})
        return True

    def _write(self, doc: dict[str, dict[str, dict[str, Any]]]) -> None:
        """Write ``doc``, then keep it (a failed write changes nothing, in memory either)."""
        write_json(self.path, {"version": _VERSION, **doc})
        self._doc = doc
