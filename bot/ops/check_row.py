"""One line of `python -m bot check`'s table: shared by the general and the Discord checks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    name: str
    ok: bool
    detail: str
