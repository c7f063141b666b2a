"""``AuditEntry`` (ours): one line of the authority's audit log, ``{1: seq u64, 2: at u64,
3: actor Identifier, 4: action text, 5: subject Identifier?, 6: ticket reference?,
7: {text: text} attributes?}``. A ticket appears by its reference, never its code."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from trust.enrollment.messages.common import (
    MAX_MESSAGE_SIZE,
    U64_MAX,
    check_identifier,
    check_text_attributes,
    enc_identifier,
    enc_text_map,
    encode_struct,
    read_identifier,
    read_struct,
    read_text_map,
)
from trust.enrollment.messages.one_time_code import check_reference
from trust.errors import DecodeError
from trust.models.cbor import Reader, check_size, enc_text, enc_uint

__all__ = ["ACTIONS", "AuditEntry"]

ACTIONS: Final = ("member.add", "member.update", "member.delete", "member.pre_trusted",
                  "ticket.create", "ticket.redeem")
"""What an audit entry records: an enroller or admin added, changed or deleted a member; the
authority loaded a pre-trusted member at start; a ticket was created or redeemed."""

_ACTION: Final = re.compile(r"[a-z_]{1,24}\.[a-z_]{1,24}", re.ASCII)


def _u64(r: Reader, f: str) -> int:
    return r.uint(f, max_value=U64_MAX)


def _action(r: Reader, f: str) -> str:
    at = r.pos
    text = r.text(f)
    if not _ACTION.fullmatch(text):
        raise DecodeError("an action is 'noun.verb' in lowercase ASCII", field=f, offset=at)
    return text


def _reference(r: Reader, f: str) -> str:
    at = r.pos
    text = r.text(f)
    try:
        return check_reference(text, f)
    except DecodeError as e:
        raise DecodeError(e.message, field=f, offset=at) from None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: int
    actor: str
    action: str
    subject: str | None = None
    ticket: str | None = None
    attributes: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "actor", check_identifier(self.actor, "audit.actor"))
        if not _ACTION.fullmatch(self.action):
            raise ValueError(f"invalid audit action {self.action!r}")
        if self.subject is not None:
            object.__setattr__(self, "subject", check_identifier(self.subject, "audit.subject"))
        if self.ticket is not None:
            check_reference(self.ticket, "audit.ticket")
        if self.attributes is not None:
            object.__setattr__(self, "attributes",
                               check_text_attributes(self.attributes, "audit.attributes"))

    def encode(self) -> bytes:
        return encode_struct([
            (1, enc_uint(self.seq)),
            (2, enc_uint(self.at)),
            (3, enc_identifier(self.actor)),
            (4, enc_text(self.action)),
            (5, None if self.subject is None else enc_identifier(self.subject)),
            (6, None if self.ticket is None else enc_text(self.ticket)),
            (7, None if self.attributes is None else enc_text_map(self.attributes)),
        ])

    @classmethod
    def read(cls, r: Reader, f: str = "audit_entry") -> AuditEntry:
        v = read_struct(r, f, {1: _u64, 2: _u64, 3: read_identifier, 4: _action,
                               5: read_identifier, 6: _reference, 7: read_text_map},
                        required={1, 2, 3, 4})
        return cls(v[1], v[2], v[3], v[4], v.get(5), v.get(6), v.get(7))

    @classmethod
    def decode(cls, data: bytes) -> AuditEntry:
        check_size(bytes(data), "audit_entry", MAX_MESSAGE_SIZE)
        r = Reader(bytes(data))
        out = cls.read(r)
        r.end("audit_entry")
        return out

    def as_json(self) -> dict[str, object]:
        return {"seq": self.seq, "at": self.at, "actor": self.actor, "action": self.action,
                "subject": self.subject, "ticket": self.ticket,
                "attributes": None if self.attributes is None else dict(self.attributes)}
