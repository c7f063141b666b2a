"""Package attributes loaded on first use (PEP 562), so importing a package does not import
everything it offers: ``truststack`` commands that only read files start without the node
runtime, and ``from trust.node import Node`` still works.

>>> ns = {"__name__": "pkg"}
>>> getter = lazy_getattr("pkg", {"dumps": "json"}, ns)
>>> getter("dumps").__name__
'dumps'
>>> "dumps" in ns  # (kept: the next lookup is a plain attribute)
True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, exports: Mapping[str, str],
                 namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: name ``n`` of ``exports`` is imported from
    module ``exports[n]`` when first asked for and kept in ``namespace`` (the package's
    ``globals()``); any other name is an ``AttributeError``."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
