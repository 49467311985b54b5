"""The install_secrets table: this install's random secret, made at the first open, kept for good."""

from __future__ import annotations

import secrets

from bot.store.queries import Queries, now

_QUERY = "SELECT secret FROM install_secrets WHERE name = 'hmac'"


class InstallQueries(Queries):
    _install_secret: bytes | None = None

    def install_secret(self) -> bytes:
        """This install's random 32-byte secret for keyed hashes (`bot.core.keyed`): made at the
        first open and kept in the database, so a backup carries it. Never log or send it."""
        if self._install_secret is None:
            raise RuntimeError("this database has no install secret (an older schema)")
        return self._install_secret

    async def _load_install_secret(self) -> None:
        found = await self._fetch(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'install_secrets'"
        )
        if not found:
            return  # opened with fewer migrations (tests of old schemas)
        rows = await self._fetch(_QUERY)
        if not rows:
            # Another process opening the same new file may win this race: its secret then
            # stays, and both read that one.
            await self._write(
                "INSERT INTO install_secrets (name, secret, created_at) VALUES ('hmac', ?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (secrets.token_bytes(32), now()),
            )
            rows = await self._fetch(_QUERY)
        self._install_secret = bytes(rows[0]["secret"])
