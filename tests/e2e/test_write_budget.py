"""Many answers streaming at once under Discord-like limits: every final text exact, no 429.

The shared worlds' fake Discord enforces 5 message writes per 5 s per channel and 50 requests/s;
the rules checked after every e2e test (tests/e2e/rules.py) fail the test on any 429.
"""

from __future__ import annotations

import asyncio

from tests.conftest import World
from tests.e2e.harness import Chat
from tests.fakes.llm import Text


def story(tag: str, words: int) -> str:
    return " ".join(f"{tag}w{j}" for j in range(words))


async def ask_all(world: World, chats: list[Chat], key: str, texts: list[str]) -> None:
    for i, text in enumerate(texts):
        world.llm.script(f"{key}-{i}", Text(text, chunk_size=9, delay_s=0.05))
    users = [world.discord.add_user(f"{key}-u{i}") for i in range(len(texts))]
    asked = await asyncio.gather(
        *(chats[i % len(chats)].say(f"{key}-{i} go", user=users[i]) for i in range(len(texts)))
    )
    for i, message in enumerate(asked):
        chat = chats[i % len(chats)]
        parts = await chat.answer(int(message["id"]), lambda t, i=i: t == texts[i], timeout=120)
        assert "\n".join(p["content"] for p in parts) == texts[i]


async def test_six_users_in_one_channel(world: World) -> None:
    key = f"k-six-{world.backend}"
    chat = Chat(world.discord, key)
    await ask_all(world, [chat], key, [story(f"s{i}", 50) for i in range(6)])


async def test_thirty_conversations_over_three_channels(world: World) -> None:
    key = f"k-thirty-{world.backend}"
    chats = [Chat(world.discord, f"{key}-c{c}") for c in range(3)]
    await ask_all(world, chats, key, [story(f"t{i}", 25) for i in range(30)])
