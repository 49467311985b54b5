"""Who may talk to the bot, manage shared conversations and count as an admin (discord.permissions)."""

from __future__ import annotations

from typing import Any

import discord

from bot.config.discord_sections import AllowBlock, PermissionsConfig


def _passes(rule: AllowBlock, ids: set[int]) -> bool:
    if ids & set(rule.block):
        return False
    return not rule.allow or bool(ids & set(rule.allow))


def role_ids(user: discord.abc.User | Any) -> set[int]:
    return {role.id for role in getattr(user, "roles", [])}


class Access:
    """One rule, the same for mentions and slash commands: `block` always wins, except for ids in
    `admin_ids`, which bypass every list. Members with Discord's Administrator permission count as
    admins for deciding approvals and managing conversations, but follow the lists like everyone.
    """

    def __init__(self, permissions: PermissionsConfig) -> None:
        self._permissions = permissions

    def is_owner(self, user: discord.abc.User | Any) -> bool:
        """Listed in admin_ids: above every list."""
        return user.id in self._permissions.admin_ids

    def is_admin(self, user: discord.abc.User | Any) -> bool:
        if self.is_owner(user):
            return True
        # Server administrators are admins of the bot too, as Discord users expect.
        perms = getattr(user, "guild_permissions", None)
        return bool(perms and perms.administrator)

    def is_manager(self, user: discord.abc.User | Any) -> bool:
        """May change or reset a conversation shared by a channel or thread."""
        return self.is_admin(user) or bool(role_ids(user) & set(self._permissions.manager_roles))

    def allows(self, user: discord.abc.User | Any, channel: Any) -> bool:
        if self.is_owner(user):
            return True
        if channel is None:
            return False
        channels = {channel.id}
        parent_id = getattr(channel, "parent_id", None)
        if parent_id:
            channels.add(parent_id)  # a thread follows its channel's rule
        rules = self._permissions
        return (
            _passes(rules.users, {user.id})
            and _passes(rules.roles, role_ids(user))
            and _passes(rules.channels, channels)
        )
