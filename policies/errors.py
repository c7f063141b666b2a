"""Errors of the policy language. Stands alone: no import of trust/ or vaults/."""

from __future__ import annotations


class PolicyError(Exception):
    """A policy could not be parsed or stored. Carries the 1-based line and column when known."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        where = f"{line}:{column}: " if line is not None and column is not None else ""
        super().__init__(f"{where}{message}")
