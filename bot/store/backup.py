"""The database copied with SQLite's online backup API: consistent while the bot writes."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path


def copy_database(source: Path, target: Path) -> dict[str, int]:
    """Copy `source` into the (existing, empty) file `target`; return its row counts by table.

    The backup API copies the pages under a read transaction, so turns saved meanwhile are
    either wholly in the copy or not at all."""
    with (
        closing(sqlite3.connect(source, timeout=30)) as db,
        closing(sqlite3.connect(target)) as copy,
    ):
        db.backup(copy)
        # The source is in WAL mode and the copy inherits it: back to a rollback journal, so
        # the copy is one self-contained file that opens read-only anywhere.
        copy.execute("PRAGMA journal_mode = DELETE")
        tables = [
            row[0]
            for row in copy.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {t: int(copy.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]) for t in tables}
