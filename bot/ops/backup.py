"""`python -m bot backup <file>`: a consistent copy of the database while the bot runs, for cron.

The copy (bot/store/backup.py) is consistent and one self-contained file (no WAL beside it),
readable only by its owner: it holds every conversation.
"""

from __future__ import annotations

import os
from pathlib import Path

from bot.config import Settings
from bot.store.backup import copy_database


def backup(settings: Settings, target: Path) -> tuple[bool, str]:
    """(done, what to print)."""
    source = Path(settings.storage.path)
    if not source.exists():
        return False, f"no database at {source}: run backup with the bot's own config"
    target = target.resolve()
    if target == source.resolve():
        return False, "the backup file must not be the database itself"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    # Created 0600 before SQLite opens it, so the copy is never readable by others, not even
    # while it is written.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        counts = copy_database(source, partial)
        os.chmod(partial, 0o600)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    rows = ", ".join(f"{table} {count}" for table, count in counts.items())
    return True, f"wrote {target} ({target.stat().st_size:,} bytes): {rows}"
