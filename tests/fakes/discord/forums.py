"""Forum channels: a post is a public thread whose starter message has the thread's id."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from .messages import new_message
from .state import PUBLIC_THREAD

if TYPE_CHECKING:
    from .fake import FakeDiscord

FORUM = 15


def add_forum(fake: FakeDiscord, name: str) -> int:
    channel = fake.world.add_channel(name, FORUM)
    fake._dispatch_soon("CHANNEL_CREATE", fake.world.channel_payload(channel.id))
    return channel.id


async def post(fake: FakeDiscord, forum_id: int, author_id: int, title: str, content: str) -> dict:
    """A user opens a post: THREAD_CREATE for the post, then MESSAGE_CREATE for its starter
    message, which carries the thread's id (as on Discord)."""
    world = fake.world
    if world.channels[forum_id].type != FORUM:
        raise ValueError(f"channel {forum_id} is not a forum")
    thread = world.add_channel(
        title,
        PUBLIC_THREAD,
        guild_id=world.channels[forum_id].guild_id,
        parent_id=forum_id,
        owner_id=author_id,
        auto_archive_duration=4320,
    )
    await fake.dispatch(
        "THREAD_CREATE", {**world.channel_payload(thread.id), "newly_created": True}
    )
    msg = new_message(world, thread.id, author_id, {"content": content}, message_id=thread.id)
    fake.counters["user_messages"] += 1
    await fake.dispatch("MESSAGE_CREATE", msg)
    return copy.deepcopy(msg)
