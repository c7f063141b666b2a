"""TCP addresses as users write them (``HOST:PORT``) and a node's ``hop_allow`` entries:
checked without importing the transport (the CLI checks its arguments with these)."""

from __future__ import annotations

from collections.abc import Iterable

from trust.errors import UsageError
from trust.logsafe import safe_text

__all__ = ["check_hop_allow", "split_host_port"]


def split_host_port(text: str) -> tuple[str, int]:
    """``"127.0.0.1:4000"`` → ``("127.0.0.1", 4000)``; ``"[::1]:4000"`` → ``("::1", 4000)``.

    The port is 0-65535 in ASCII digits (0: a free port, for listeners)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or len(text) > 300:
        raise UsageError(f"invalid TCP address '{safe_text(text, 80)}' (expected HOST:PORT)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > 65535:
        raise UsageError(f"invalid TCP address '{safe_text(text, 80)}': bad port "
                         f"'{safe_text(port, 20)}' (0-65535)")
    if not host or not host.isprintable() or any(c.isspace() for c in host):
        raise UsageError(f"invalid TCP address '{safe_text(text, 80)}': bad host")
    return host, int(port)


def check_hop_allow(entries: Iterable[str]) -> list[str]:
    """Validate ``hop_allow`` entries: ``HOST:PORT`` or ``*`` (any destination)."""
    out = []
    for e in entries:
        if not isinstance(e, str):
            raise UsageError("a hop-allow entry is HOST:PORT or *")
        if e != "*":
            try:
                split_host_port(e)
            except UsageError:
                raise UsageError(f"invalid hop-allow entry '{safe_text(e, 80)}' (expected "
                                 "HOST:PORT or *)") from None
        out.append(e)
    return out
