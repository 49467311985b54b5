"""Many answers streaming at once under Discord-like limits: every final text exact, no 429.

The shared worlds' fake Discord enforces 5 message writes per 5 s per channel and 50 requests/s;
the rules checked after every e2e test (tests/e2e/rules.py) fail the test on any 429.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import World, bot_config, bot_running
from tests.e2e import rules
from tests.e2e.harness import Chat
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text


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


async def test_a_long_answer_is_edited_at_its_interval_not_at_the_budgets_pace(
    chat_world: World,
) -> None:
    # The budget alone holds even an edit-on-every-delta bot to Discord's average pace, but it
    # hands over a channel's free writes at once: such a bot edits in bursts each time the 5 s
    # window frees up, which the rules (tests/e2e/rules.py) catch. About 7 s of streaming crosses
    # that window twice; one backend is enough, the renderer is the same.
    world = chat_world
    key = "k-edit-pace"
    chat = Chat(world.discord, key)
    text = story("p", 200)
    world.llm.script(key, Text(text, chunk_size=8, delay_s=0.05))
    asked = await chat.say(f"{key} go")
    parts = await chat.answer(int(asked["id"]), lambda t: t == text, timeout=60)
    assert [p["content"] for p in parts] == [text]
    edits = world.discord.requests_to("PATCH", f"/messages/{parts[0]['id']}")
    assert len(edits) >= 3  # it did stream; how closely the edits came is the rules' business


async def test_write_budget_false_turns_the_budget_off(llm: ScriptedLLM, tmp_path: Path) -> None:
    # Discord's limits off (declared): with them on, discord.py's own limiter would hold the
    # writes back too, and a bot without its budget would look like one with it.
    discord = FakeDiscord(rate_limits=False)
    await discord.start()
    config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", "chat", mcp={"servers": {}})
    config["discord"]["write_budget"] = False
    key = "k-budget-off"
    chat = Chat(discord, key)
    async with bot_running(discord, config, tmp_path):
        before = rules.snapshot(discord)
        texts = [f"Quick answer {i}." for i in range(8)]
        for i, text in enumerate(texts):
            llm.script(f"{key}-{i}", Text(text))
        users = [discord.add_user(f"{key}-u{i}") for i in range(len(texts))]
        asked = await asyncio.gather(
            *(chat.say(f"{key}-{i} go", user=users[i]) for i in range(len(texts)))
        )
        for message, text in zip(asked, texts, strict=True):
            await chat.answer_text(int(message["id"]), text)
        found = rules.violations(discord, before, set(), edit_interval_s=1.0)
        assert not found, "Discord rules broken:\n" + "\n".join(found)
    writes = sorted(
        r.t
        for r in discord.requests
        if f"/channels/{chat.channel}/messages" in r.path and r.method in ("POST", "PATCH")
    )
    # The budget keeps a channel to 5 writes per 5 s (test_six_users_in_one_channel); off, the
    # eight first answers go out as soon as they are there.
    busiest = max(sum(1 for t in writes if start <= t < start + 5.0) for start in writes)
    assert busiest > 5, writes
