"""The channel_prompts table: system prompts set with /system, which outlive restarts."""

from __future__ import annotations

from collections.abc import Sequence

from bot.store.queries import Queries, now


class ChannelPromptQueries(Queries):
    async def channel_prompts(self, channel_ids: Sequence[int]) -> dict[int, str]:
        """The /system prompts set for these channels (a thread and its parent), by channel id."""
        ids = list(dict.fromkeys(channel_ids))
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        rows = await self._fetch(
            f"SELECT channel_id, system_prompt FROM channel_prompts WHERE channel_id IN ({marks})",
            ids,
        )
        return {int(row["channel_id"]): row["system_prompt"] for row in rows}

    async def set_channel_prompt(
        self, guild_id: int, channel_id: int, prompt: str, set_by: int
    ) -> None:
        await self._write(
            "INSERT INTO channel_prompts (channel_id, guild_id, system_prompt, set_by, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel_id) DO UPDATE SET"
            " system_prompt = excluded.system_prompt, set_by = excluded.set_by,"
            " updated_at = excluded.updated_at",
            (channel_id, guild_id, prompt, set_by, now()),
        )

    async def clear_channel_prompt(self, channel_id: int) -> bool:
        """Back to the configured prompt; False if none was set."""
        cursor = await self._write(
            "DELETE FROM channel_prompts WHERE channel_id = ?", (channel_id,)
        )
        return cursor.rowcount > 0
