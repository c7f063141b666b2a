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

The file holds what the create commands accepted, and nothing here adds a rule of its own: an
entry's parameters are checked when it is made again, by the same code that checked them at
create (a relay name, for instance, by :func:`trust.relays.messages.check_relay_name`). Only
an entry that create could never have saved is *malformed*: parameters that are not an object,
a name field (``name``; ``from`` for an outlet) that is not the entry's key, a relay name that
:func:`~trust.relays.messages.check_relay_name` refuses, or a key longer than any resource name
(:data:`MAX_NAME`). A malformed entry does not stop the node: it is skipped, logged, kept in the
file, and listed by :meth:`SavedResources.malformed` (``node show``'s ``not_restored``) until
it is deleted.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Final

from trust.errors import StorageError, UsageError
from trust.logsafe import safe_text
from trust.node.files import read_record, write_json
from trust.relays.messages import MAX_NAME, check_relay_name

__all__ = ["FILE_NAME", "KINDS", "MAX_BYTES", "MAX_NAME", "MAX_PER_KIND", "NAME_FIELDS",
           "SavedResources"]

log = logging.getLogger("trust.node.saved_resources")

FILE_NAME: Final = "resources.json"
KINDS: Final = ("tcp_outlet", "tcp_inlet", "relay")
MAX_BYTES: Final = 4 * 1024 * 1024
MAX_PER_KIND: Final = 1024
NAME_FIELDS: Final = {"tcp_outlet": "from", "tcp_inlet": "name", "relay": "name"}
"""The parameter of each kind that holds its name (the entry's key)."""
_VERSION: Final = 1


def _problem(kind: str, name: str, params: Any) -> str | None:
    """Why entry ``name`` of ``kind`` is malformed (``None``: it is not)."""
    if len(name) > MAX_NAME:
        return f"its name is longer than {MAX_NAME} characters"
    if not isinstance(params, dict):
        return "its parameters are not an object"
    if params.get(NAME_FIELDS[kind]) != name:
        return f"its {NAME_FIELDS[kind]!r} parameter is not the entry's name"
    if kind == "relay":
        try:
            check_relay_name(name)
        except UsageError as e:
            return str(e)
    return None


class SavedResources:
    """The saved resources of one node (``directory``: its directory). Read on first use,
    then kept in memory and written through."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / FILE_NAME
        self._doc: dict[str, dict[str, Any]] | None = None
        """Every entry as read (malformed ones too: they are kept until deleted)."""
        self._malformed: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._doc is None:
            self._doc = self._read()
        return self._doc

    def _read(self) -> dict[str, dict[str, Any]]:
        empty: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
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
                problem = _problem(kind, name, params)
                if problem is not None:
                    shown = safe_text(name, MAX_NAME)
                    self._malformed[kind][shown] = f"{FILE_NAME} holds a malformed entry: {problem}"
                    log.warning("%s: %s %s is not made again: a malformed entry (%s)", self.path,
                                kind.replace("_", "-"), shown, problem)
            empty[kind] = items
        return empty

    def items(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """The saved resources of ``kind`` (one of :data:`KINDS`), by name; malformed entries
        are left out (see :meth:`malformed`)."""
        return sorted((name, params) for name, params in self._load()[kind].items()
                      if _problem(kind, name, params) is None)

    def malformed(self, kind: str) -> list[tuple[str, str]]:
        """The malformed entries of ``kind`` in the file as read: ``(name, why)``, by name (a
        name longer than :data:`MAX_NAME` is cut and escaped). Deleting the resource of that
        name (:meth:`forget`) removes one from the file."""
        self._load()
        return sorted(self._malformed[kind].items())

    def save(self, kind: str, name: str, params: dict[str, Any]) -> None:
        doc = self._load()
        self._write({**doc, kind: {**doc[kind], name: params}})
        self._malformed[kind].pop(name, None)

    def forget(self, kind: str, name: str) -> bool:
        """Remove a saved resource; ``False`` when there was none of that name."""
        doc = self._load()
        if name not in doc[kind]:
            return False
        self._write({**doc, kind: {n: p for n, p in doc[kind].items() if n != name}})
        self._malformed[kind].pop(name, None)
        return True

    def _write(self, doc: dict[str, dict[str, Any]]) -> None:
        """Write ``doc``, then keep it (a failed write changes nothing, in memory either)."""
        write_json(self.path, {"version": _VERSION, **doc})
        self._doc = doc
