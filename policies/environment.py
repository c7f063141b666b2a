"""The environment a policy is evaluated in: a flat, read-only map of attribute names to values.

Names: ``subject.identifier`` (the peer's identifier), ``subject.has_credential`` (a credential
was verified), ``subject.<attr>`` (credential attributes), ``resource.id``, ``resource.type``,
``resource.<attr>``, ``action.id``, ``action.<attr>``, ``env.now`` (unix seconds) and
``env.<attr>``.

:meth:`Environment.build` keeps the reserved names (``subject.identifier``,
``subject.has_credential``, ``resource.id``, ``resource.type``, ``action.id``, ``env.now``) out of
reach of attribute maps: an attribute named ``identifier`` or ``has_credential`` is dropped and
listed in :attr:`Environment.dropped`, never written over the real one.

Credential attributes arrive as bytes (names and values, UTF-8 in practice):
:meth:`Environment.build` takes them as they are, or as text (:func:`text_attributes`, which
verified credentials offer as ``policy_subject()``). A name or value that is not UTF-8 is dropped
and listed in :attr:`Environment.dropped` (and in ``explain``), never compared. Untyped, text
attributes still compare numerically with numeric literals when they read as numbers (see
:mod:`policies.values`). A *schema* (attribute name -> ``string``, ``int``, ``float``, ``bool``
or ``list``) types them when the environment is built; a ``list`` attribute is a
comma-separated string (``"dev, prod"`` -> ``["dev" "prod"]``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from typing import Any, Final

from policies.errors import PolicyError
from policies.values import Value, as_number

__all__ = ["RESERVED", "SCHEMA_TYPES", "Environment", "TextAttributes", "check_schema", "convert",
           "key_cache_size", "text_attributes"]

SCHEMA_TYPES: Final = frozenset({"string", "int", "float", "bool", "list"})

# namespace -> attribute names an attribute map may not set
RESERVED: Final[dict[str, frozenset[str]]] = {
    "subject": frozenset({"identifier", "has_credential"}),
    "resource": frozenset({"id", "type"}),
    "action": frozenset({"id"}),
    "env": frozenset({"now"}),
}

_ATTR_KEY = re.compile(r"[a-zA-Z0-9!$%&*/<=>?~_^.+\-:@]+")
_NAME = re.compile(r"[a-zA-Z!$%&*/<=>?~_^][a-zA-Z0-9!$%&*/<=>?~_^.+\-:@]*")
_INT = re.compile(r"[+-]?[0-9]{1,300}")
_KEY_CACHE_LIMIT: Final = 4096
_KEY_CACHE_MAX_KEY: Final = 128
# namespace -> {attribute key -> full name, or "" when the key is unusable or reserved}
_KEY_CACHE: dict[str, dict[object, str]] = {ns: {} for ns in RESERVED}
_SUBJECT_KEYS = _KEY_CACHE["subject"]
_RESOURCE_KEYS = _KEY_CACHE["resource"]
_new = object.__new__


def _full_name(ns: str, key: object) -> str:
    cache = _KEY_CACHE[ns]
    if len(cache) >= _KEY_CACHE_LIMIT:
        cache.clear()
    if not isinstance(key, str) or _ATTR_KEY.fullmatch(key) is None or key in RESERVED[ns]:
        full = ""
    else:
        full = f"{ns}.{key}"
    if isinstance(key, str) and len(key) <= _KEY_CACHE_MAX_KEY:
        cache[key] = full  # short keys only: the cache holds at most 4096 x 128 characters
    return full


AttributeMap = Mapping[str, object] | Mapping[bytes, object] | Mapping[str | bytes, object]
"""Attribute names (text, or UTF-8 bytes as credentials carry them) to values."""


def key_cache_size() -> int:
    """Characters held by the attribute-name cache (bounded: at most 4096 keys of 128)."""
    return sum(len(k) + len(v) for cache in _KEY_CACHE.values() for k, v in cache.items()
               if isinstance(k, str))


def _shown(raw: bytes) -> str:
    """An undecodable name as it is listed in ``dropped`` (invalid bytes as ``\\xNN``)."""
    return raw.decode("utf-8", "backslashreplace")


class TextAttributes(dict[str, str]):
    """Attribute names and values as text, and the names of the attributes left out because
    their name or value is not UTF-8 (:attr:`dropped`, invalid bytes shown as ``\\xNN``).

    :meth:`Environment.build` lists those names in its own ``dropped`` (with the namespace).
    """

    __slots__ = ("dropped",)

    def __init__(self, items: Mapping[str, str] | None = None,
                 dropped: tuple[str, ...] = ()) -> None:
        super().__init__(items or {})
        self.dropped = dropped


def text_attributes(attributes: Mapping[bytes, bytes] | Mapping[str, str]
                    | Mapping[str | bytes, str | bytes]) -> TextAttributes:
    """Attributes as text: names and values decoded as UTF-8; those that are not UTF-8 are left
    out and named in ``dropped``."""
    out: dict[str, str] = {}
    dropped: list[str] = []
    for k, v in attributes.items():
        if isinstance(k, str):
            name = k
        else:
            raw = bytes(k)
            try:
                name = raw.decode("utf-8")
            except UnicodeDecodeError:
                dropped.append(_shown(raw))
                continue
        try:
            out[name] = v if isinstance(v, str) else bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            dropped.append(name)
    return TextAttributes(out, tuple(dropped))


def check_schema(schema: Mapping[str, str]) -> dict[str, str]:
    """Validate a schema (attribute name -> type name); return it as a plain dict."""
    out: dict[str, str] = {}
    for key, kind in schema.items():
        if not isinstance(key, str) or not isinstance(kind, str) or kind not in SCHEMA_TYPES:
            raise PolicyError(f"schema entry {key!r}: type must be one of "
                              f"{', '.join(sorted(SCHEMA_TYPES))}, not {kind!r}")
        out[key] = kind
    return out


def _plain(v: object) -> Value | None:
    """A value as the evaluator holds it; None when it is not a policy value."""
    t = type(v)
    if t is str or t is bool or t is int or t is float:
        return v  # type: ignore[return-value]
    if isinstance(v, bytes | bytearray):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(v, list | tuple | set | frozenset):
        items = sorted(v, key=repr) if isinstance(v, set | frozenset) else v
        out = []
        for x in items:
            p = _plain(x)
            if p is None:
                return None
            out.append(p)
        return tuple(out)
    if isinstance(v, bool | int | float | str):  # subclasses (e.g. IntEnum, str enums)
        for base in (bool, int, float, str):
            if isinstance(v, base):
                return base(v)  # type: ignore[no-any-return]
    return None


def convert(value: object, kind: str) -> Value | None:
    """``value`` as the schema type ``kind``; None when it does not fit."""
    v = _plain(value)
    if v is None:
        return None
    if kind == "string":
        return v if type(v) is str else None
    if kind == "int":
        if type(v) is int:
            return v
        if type(v) is str and _INT.fullmatch(v.strip()):
            return int(v.strip())
        return None
    if kind == "float":
        if type(v) is float or type(v) is int:
            return float(v)
        if type(v) is str:
            n = as_number(v.strip())
            return None if n is None else float(n)
        return None
    if kind == "bool":
        if type(v) is bool:
            return v
        if type(v) is str and v.strip().lower() in ("true", "false"):
            return v.strip().lower() == "true"
        return None
    if kind == "list":
        if type(v) is tuple:
            return v
        if type(v) is str:
            return tuple(p.strip() for p in v.split(",")) if v.strip() else ()
        return None
    raise PolicyError(f"unknown schema type {kind!r}")


class Environment(Mapping[str, Value]):
    """Attribute name -> value. Build one with :meth:`build` (or :meth:`of` from full names)."""

    __slots__ = ("_values", "dropped")

    def __init__(self, values: dict[str, Value] | None = None,
                 dropped: tuple[str, ...] = ()) -> None:
        self._values: dict[str, Value] = values if values is not None else {}
        self.dropped = dropped

    @classmethod
    def build(
        cls,
        *,
        identifier: str | None = None,
        has_credential: bool | None = None,
        subject: AttributeMap | None = None,
        schema: Mapping[str, str] | None = None,
        resource_id: str | None = None,
        resource_type: str | None = None,
        resource: AttributeMap | None = None,
        action: str | None = None,
        action_attributes: Mapping[str, object] | None = None,
        now: int | float | None = None,
        env: Mapping[str, object] | None = None,
        strict: bool = True,
    ) -> Environment:
        """The environment of one decision.

        ``subject``, ``resource``, ``action_attributes`` and ``env`` are attribute maps (keys
        without the namespace; names and values as text, or as UTF-8 bytes as credentials carry
        them: ``subject=verified.attributes`` works, and so does
        ``subject=verified.policy_subject()``). ``schema`` types subject attributes. A name or
        value that is not UTF-8 is dropped and named in :attr:`dropped`. An attribute whose key is
        reserved, unusable in a policy (e.g. holds a space) or whose value is not a policy value is
        dropped and named in :attr:`dropped`; with ``strict`` (the default) a value that does not
        fit its schema type raises :class:`PolicyError`, without it the value is dropped (and so
        is *missing*: comparisons on it are unknown, the policy fails closed). ``now`` defaults to
        the current time.
        """
        values: dict[str, Value] = {}
        dropped: list[str] = []
        if subject or (isinstance(subject, TextAttributes) and subject.dropped):
            if schema is None and isinstance(subject, TextAttributes) and subject.dropped:
                _add(values, "subject", subject, None, strict, dropped)
            elif schema is None:
                cache = _SUBJECT_KEYS
                for key, v in subject.items():
                    full = cache.get(key)
                    if full and type(v) is str:
                        values[full] = v  # the common case: a usable key, a string value
                    else:
                        _add(values, "subject", {key: v}, None, strict, dropped)
            else:
                _add(values, "subject", subject, schema, strict, dropped)
        if isinstance(resource, TextAttributes):
            dropped.extend(f"resource.{name}" for name in resource.dropped)
        if resource:
            cache = _RESOURCE_KEYS
            for key, v in resource.items():
                full = cache.get(key)
                if full and type(v) is str:
                    values[full] = v
                else:
                    _add(values, "resource", {key: v}, None, strict, dropped)
        if action_attributes:
            _add(values, "action", action_attributes, None, strict, dropped)
        if env:
            _add(values, "env", env, None, strict, dropped)
        if identifier is not None:
            values["subject.identifier"] = _text(identifier, "identifier")
        if has_credential is not None:
            if type(has_credential) is not bool:
                raise PolicyError("has_credential must be a bool")
            values["subject.has_credential"] = has_credential
        if resource_id is not None:
            values["resource.id"] = _text(resource_id, "resource_id")
        if resource_type is not None:
            values["resource.type"] = _text(resource_type, "resource_type")
        if action is not None:
            values["action.id"] = _text(action, "action")
        if now is None:
            values["env.now"] = int(time.time())
        elif type(now) is int or type(now) is float:
            values["env.now"] = now
        else:
            raise PolicyError("now must be a number of unix seconds")
        self = _new(cls)
        self._values = values
        self.dropped = tuple(dropped) if dropped else ()
        return self

    @classmethod
    def of(cls, values: Mapping[str, object]) -> Environment:
        """An environment from full names (``{"subject.role": "admin"}``), as given.

        No name is reserved here: the caller sets each name directly. Values must be policy values
        (str, int, float, bool or a list/tuple of them); ``None`` means missing.
        """
        if isinstance(values, Environment):
            return values
        out: dict[str, Value] = {}
        for name, v in values.items():
            if not isinstance(name, str) or _NAME.fullmatch(name) is None:
                raise PolicyError(f"invalid attribute name {name!r}")
            if v is None:
                continue
            p = _plain(v)
            if p is None:
                raise PolicyError(f"{name}: {type(v).__name__} is not a policy value")
            out[name] = p
        return cls(out)

    def __getitem__(self, name: str) -> Value:
        return self._values[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Environment({self._values!r})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: sequences as lists, names sorted."""
        from policies.explain import json_value

        return {k: json_value(self._values[k]) for k in sorted(self._values)}


def _text(v: object, what: str) -> str:
    if not isinstance(v, str):
        raise PolicyError(f"{what} must be a string, not {type(v).__name__}")
    return str(v)


def _add(values: dict[str, Value], ns: str, attrs: AttributeMap,
         schema: Mapping[str, str] | None, strict: bool, dropped: list[str]) -> None:
    cache = _KEY_CACHE[ns]
    if isinstance(attrs, TextAttributes):
        dropped.extend(f"{ns}.{name}" for name in attrs.dropped)
    for given, v in attrs.items():
        key: object = given
        if isinstance(given, bytes | bytearray):
            try:
                key = bytes(given).decode("utf-8")
            except UnicodeDecodeError:
                dropped.append(f"{ns}.{_shown(bytes(given))}")
                continue
        full = cache.get(key) if type(key) is str else None
        if full is None:
            full = _full_name(ns, key)
        if not full:
            dropped.append(f"{ns}.{key}")
            continue
        if isinstance(v, bytes | bytearray):
            try:
                v = bytes(v).decode("utf-8")
            except UnicodeDecodeError:
                dropped.append(full)  # never compared, whatever the schema says
                continue
        if schema is not None and isinstance(key, str) and key in schema:
            kind = schema[key]
            if kind not in SCHEMA_TYPES:
                raise PolicyError(f"schema entry {key!r}: unknown type {kind!r}")
            typed = convert(v, kind)
            if typed is None:
                if v is None:
                    continue
                if strict:
                    raise PolicyError(f"attribute {key!r}: {v!r} is not a valid {kind}")
                dropped.append(full)
                continue
            values[full] = typed
        elif type(v) is str:
            values[full] = v  # type: ignore[assignment]
        else:
            if v is None:
                continue
            p = _plain(v)
            if p is None:
                dropped.append(full)
                continue
            values[full] = p
