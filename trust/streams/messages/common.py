"""Limits and field readers shared by the stream messages (``docs/streams.md`` lists them)."""

from __future__ import annotations

import re
from typing import Final

from trust.errors import DecodeError
from trust.models.cbor import Reader

__all__ = [
    "MAX_BATCH_BYTES", "MAX_BATCH_RECORDS", "MAX_GROUP", "MAX_INDEX", "MAX_MESSAGE",
    "MAX_NAME", "MAX_PARTITIONS", "MAX_PULL_LIMIT", "MAX_RECORD", "MAX_TIMEOUT_MS",
    "check_group", "check_name", "read_group", "read_name",
]

MAX_NAME: Final = 200
"""Characters of a stream name (ASCII letters, digits, ``.``, ``_``, ``-``: a valid Kafka topic)."""
MAX_GROUP: Final = 200
"""Characters of a consumer-group name (same alphabet)."""
MAX_PARTITIONS: Final = 64
MAX_RECORD: Final = 256 * 1024
"""Bytes of one record."""
MAX_BATCH_RECORDS: Final = 1000
"""Records one push or one pull carries at most."""
MAX_BATCH_BYTES: Final = 4 * 1024 * 1024
"""Record bytes one push carries, or one pull returns, at most."""
MAX_PULL_LIMIT: Final = MAX_BATCH_RECORDS
MAX_TIMEOUT_MS: Final = 60_000
"""Longest long-poll a pull may ask for."""
MAX_INDEX: Final = (1 << 63) - 1
"""Indexes are Kafka offsets: signed 64-bit, never negative here."""
MAX_MESSAGE: Final = MAX_BATCH_BYTES + 64 * 1024
"""Bytes of one encoded request or response."""

_NAME = re.compile(r"[A-Za-z0-9._-]+")


def check_name(name: str, what: str = "stream name", limit: int = MAX_NAME) -> str:
    """``name`` if it is a valid stream (or group) name, else :class:`DecodeError`."""
    if not (0 < len(name) <= limit) or not _NAME.fullmatch(name) or name in {".", ".."}:
        raise DecodeError(f"a {what} is 1 to {limit} ASCII letters, digits, '.', '_' or '-'",
                          field=what.replace(" ", "_"))
    return name


def check_group(group: str) -> str:
    return check_name(group, "group name", MAX_GROUP)


def read_name(r: Reader, field: str = "name") -> str:
    return check_name(r.text(field))


def read_group(r: Reader, field: str = "group") -> str:
    return check_group(r.text(field))
