"""README promises without a home elsewhere: DMs off by default, the streaming indicator, roles."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import World, bot_config
from tests.e2e.harness import INDICATOR, BotProcess, Chat, running
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text


async def test_dms_are_ignored_unless_allowed(world: World) -> None:
    # The shared worlds keep the default `allow_dms: false`.
    marker = f"m-dm-off-{world.backend}"
    user = world.discord.add_user(f"dm-off-{world.backend}")
    dm = Chat(world.discord, "dm-off", channel=world.discord.add_dm_channel(user))
    ignored = await dm.say(f"{marker} hello in private", user=user, mention=False)
    # Something the bot does answer, after it: once that is done, the DM was seen and skipped.
    chat = Chat(world.discord, "dm-off-after")
    after = await chat.say(f"k-dm-off-after-{world.backend} hi")
    await chat.answer_text(int(after["id"]), "echo")
    assert dm.replies_to(int(ignored["id"])) == []
    assert world.llm.requests_mentioning(marker) == []


async def test_a_streaming_reply_shows_the_indicator_until_it_is_final(world: World) -> None:
    chat = Chat(world.discord, "indicator")
    key = f"k-indicator-{world.backend}"
    text = " ".join(f"tick{i}" for i in range(60))
    world.llm.script(key, Text(text, chunk_size=10, delay_s=0.1))  # ~3 s of streaming
    asked = await chat.say(f"{key} go")

    def streaming() -> bool:
        parts = chat.replies_to(int(asked["id"]))
        return bool(parts) and parts[-1]["content"].endswith(INDICATOR)

    await world.discord.wait_for(streaming, timeout=20)
    parts = await chat.answer(int(asked["id"]), lambda t: t == text)
    assert not parts[-1]["content"].endswith(INDICATOR)


async def test_every_write_of_a_reply_shows_newer_text_than_the_one_before(world: World) -> None:
    """README: an edit always carries the newest text. In the order Discord took them, the
    reply's writes never go back to older words: each shows what the one before showed, and
    more, until the final text."""
    chat = Chat(world.discord, "newest")
    key = f"k-newest-{world.backend}"
    text = " ".join(f"word{i}" for i in range(140))  # one message; about 4 s of streaming
    world.llm.script(key, Text(text, chunk_size=6, delay_s=0.03))
    asked = await chat.say(f"{key} go")
    [part] = await chat.answer(int(asked["id"]), lambda t: t == text)
    shown = [
        r.json["content"].removesuffix(INDICATOR)
        for r in world.discord.requests
        if r.status == 200
        and isinstance(r.json, dict)
        and "content" in r.json
        and (
            (r.method == "PATCH" and r.path.endswith(f"/messages/{part['id']}"))
            or (
                r.method == "POST"
                and r.path.endswith(f"/channels/{chat.channel}/messages")
                and r.json.get("content", "").startswith("word0")
            )
        )
    ]
    assert len(shown) >= 3, shown  # a first part, edits while it streamed, the final text
    for before, after in zip(shown, shown[1:], strict=False):
        assert after.startswith(before) and len(after) >= len(before), (before, after)
    assert shown[-1] == text


async def test_role_allow_and_block_lists(llm: ScriptedLLM, tmp_path: Path) -> None:
    discord = FakeDiscord()
    await discord.start()
    members, muted = discord.add_role("members"), discord.add_role("muted")
    member = discord.add_user("member", roles=[members])
    outsider = discord.add_user("outsider")
    both = discord.add_user("member-but-muted", roles=[members, muted])
    config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", "chat", mcp={"servers": {}})
    config["discord"]["permissions"] = {"roles": {"allow": [members], "block": [muted]}}
    try:
        async with running(BotProcess(discord, config, tmp_path)):
            chat = Chat(discord, "roles")
            key = "k-roles"
            refused = [
                await chat.say(f"{key}-outsider hi", user=outsider),
                await chat.say(f"{key}-muted hi", user=both),  # block wins over allow
            ]
            allowed = await chat.say(f"{key}-member hi", user=member)
            await chat.answer_text(int(allowed["id"]), "echo")
            assert all(chat.replies_to(int(m["id"])) == [] for m in refused)
            assert llm.requests_mentioning(f"{key}-outsider") == []
            assert llm.requests_mentioning(f"{key}-muted") == []
            assert len(llm.requests_mentioning(f"{key}-member")) == 1
    finally:
        await discord.stop()


async def test_a_quick_answer_shows_no_typing(world: World) -> None:
    """Typing starts only once an answer has taken 0.15 s: an instant answer needs none. A bot
    that types at once types for every answer; one that waits may still type for an answer the
    loaded machine slowed down, so one of three instant answers without typing is the proof."""
    key = f"k-quick-{world.backend}"
    shown_after = []  # for the failure message: how long each answer took to show
    for attempt in range(3):
        chat = Chat(world.discord, f"quick-{attempt}")
        world.llm.script(f"{key}-{attempt}", Text("Quick."))
        sent_at = time.monotonic()
        asked = await chat.say(f"{key}-{attempt} hi")
        await chat.answer_text(int(asked["id"]), "Quick.")
        if not world.discord.requests_to("POST", f"/channels/{chat.channel}/typing"):
            return
        first = world.discord.requests_to("POST", f"/channels/{chat.channel}/messages")[0]
        shown_after.append(round(first.t - sent_at, 3))
    pytest.fail(f"every instant answer showed typing (first words after {shown_after} s)")
