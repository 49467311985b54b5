"""Who may talk to the bot, and who counts as an admin, from discord.permissions in config."""

from __future__ import annotations

from typing import Any

import discord

from bot.config import AllowBlock, PermissionsConfig


def _passes(rule: AllowBlock, ids: set[int]) -> bool:
    if ids & set(rule.block):
        return False
    return not rule.allow or bool(ids & set(rule.allow))


class Access:
    def __init__(self, permissions: PermissionsConfig) -> None:
        self._permissions = permissions

    def is_admin(self, user: discord.abc.User | Any) -> bool:
        if user.id in self._permissions.admin_ids:
            return True
        # Server administrators are admins of the bot too, as Discord users expect.
        perms = getattr(user, "guild_permissions", None)
        return bool(perms and perms.administrator)

    def allows(self, user: discord.abc.User | Any, channel: Any) -> bool:
        if self.is_admin(user):
            return True
        roles = {role.id for role in getattr(user, "roles", [])}
        channels = {channel.id}
        parent_id = getattr(channel, "parent_id", None)
        if parent_id:
            channels.add(parent_id)  # a thread follows its channel's rule
        rules = self._permissions
        return (
            _passes(rules.users, {user.id})
            and _passes(rules.roles, roles)
            and _passes(rules.channels, channels)
        )
