"""RFC 7512 PKCS#11 URIs: ``pkcs11:token=truststack;serial=...?module-path=/usr/lib/...so``.

Pure parsing, no PKCS#11 library needed. A PIN inside the URI (``pin-value``, or ``pin-source``
naming a file) is refused: PINs are read from an environment variable or a file named by the
vault configuration, each time the token is opened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from vaults.errors import VaultError

BACKEND = "pkcs11"

_PATH_ATTRS = frozenset({
    "token", "manufacturer", "serial", "model", "library-manufacturer", "library-description",
    "library-version", "slot-manufacturer", "slot-description", "slot-id", "object", "id", "type",
})
_QUERY_ATTRS = frozenset({"module-path", "module-name", "pin-source", "pin-value"})
_OBJECT_ATTRS = frozenset({"object", "id", "type"})
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
MAX_URI_LENGTH = 4096


def _decode(value: str, attr: str) -> bytes:
    # RFC 7512: pchar plus percent-encoding; a bare '%' not followed by two hex digits is invalid.
    if re.search(r"%(?![0-9A-Fa-f]{2})", value):
        raise VaultError(f"malformed percent-encoding in the URI attribute {attr!r}", backend=BACKEND)
    return unquote_to_bytes(value)


@dataclass(frozen=True)
class Pkcs11Uri:
    """The attributes of a PKCS#11 URI (values percent-decoded). ``path`` holds token, slot,
    library and object attributes; ``query`` holds ``module-path`` / ``module-name``."""

    path: dict[str, bytes] = field(default_factory=dict)
    query: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Pkcs11Uri:
        if len(text) > MAX_URI_LENGTH:
            raise VaultError("the PKCS#11 URI is too long", backend=BACKEND)
        if not text.lower().startswith("pkcs11:"):
            raise VaultError(f"not a PKCS#11 URI (must start with 'pkcs11:'): {text[:60]!r}",
                             backend=BACKEND)
        rest = text[len("pkcs11:"):]
        path_part, _, query_part = rest.partition("?")
        path = cls._attributes(path_part, ";", _PATH_ATTRS, "path")
        query = cls._attributes(query_part, "&", _QUERY_ATTRS, "query")
        if "pin-value" in query or "pin-source" in query:
            raise VaultError("a PIN inside the URI is refused; give it with --pin-env VAR or "
                             "--pin-file PATH", backend=BACKEND)
        if "slot-id" in path and not path["slot-id"].isdigit():
            raise VaultError("slot-id in the URI must be a decimal number", backend=BACKEND)
        return cls(path, query)

    @staticmethod
    def _attributes(part: str, sep: str, known: frozenset[str], where: str) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        if not part:
            return out
        for item in part.split(sep):
            if not item:
                continue
            name, eq, value = item.partition("=")
            name = name.strip().lower()
            if not eq or not _NAME_RE.match(name):
                raise VaultError(f"malformed URI attribute {item[:40]!r}", backend=BACKEND)
            if name not in known and not name.startswith("x-"):
                raise VaultError(f"unknown {where} attribute {name!r} in the PKCS#11 URI",
                                 backend=BACKEND)
            if name in out:
                raise VaultError(f"the URI attribute {name!r} is given twice", backend=BACKEND)
            out[name] = _decode(value, name)
        return out

    # -- convenient views ---------------------------------------------------------------------
    def text(self, name: str) -> str | None:
        raw = self.path.get(name, self.query.get(name))
        if raw is None:
            return None
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise VaultError(f"the URI attribute {name!r} is not UTF-8", backend=BACKEND) from None

    @property
    def module_path(self) -> str | None:
        return self.text("module-path")

    @property
    def module_name(self) -> str | None:
        return self.text("module-name")

    @property
    def names_object(self) -> bool:
        return any(a in self.path for a in _OBJECT_ATTRS)

    @property
    def token_filters(self) -> dict[str, str]:
        """The token/slot attributes to match (token, manufacturer, serial, model, slot-id,
        slot-description, slot-manufacturer)."""
        names = ("token", "manufacturer", "serial", "model", "slot-id", "slot-description",
                 "slot-manufacturer")
        return {n: v for n in names if (v := self.text(n)) is not None}
