"""What the per-table query mixins need from Store: its locked primitives and one timestamp form."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import aiosqlite


def timestamp(moment: datetime) -> str:
    # Always UTC with microseconds, so every stored timestamp has the same shape and text
    # comparison in SQL orders them correctly.
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one (e.g. datetime.now(UTC))")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def now() -> str:
    return timestamp(datetime.now(UTC))


class Queries:
    """Store implements these (under its connection lock); mixins only call them."""

    async def _fetch(self, sql: str, parameters: Iterable[Any] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError

    async def _write(self, sql: str, parameters: Iterable[Any] = ()) -> aiosqlite.Cursor:
        raise NotImplementedError

    def _transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        raise NotImplementedError

    def install_secret(self) -> bytes:
        raise NotImplementedError
