"""End to end: a person stops a running answer with /stop or the Stop button, and keeps its words."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import World, bot_config
from tests.e2e.harness import INDICATOR, BotProcess, Chat, buttons, running
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text, ToolCall
from tests.fakes.mcp_server import read_calls

STOPPED = "-# ⏹ stopped by "
LONG = " ".join(f"word{i}" for i in range(400))


def slow_text() -> Text:
    # About 40 s to stream in full: a stop always lands mid-way.
    return Text(LONG, chunk_size=10, delay_s=0.1)


async def streaming(chat: Chat, asked: dict) -> list[dict]:
    """The reply's parts once some words show and it still streams."""

    def ready() -> list[dict] | None:
        parts = chat.replies_to(int(asked["id"]))
        words = (
            parts and parts[-1]["content"].endswith(INDICATOR) and "word3" in parts[0]["content"]
        )
        return parts if words else None

    return await chat.discord.wait_for(ready, timeout=30)


def shown_words(text: str) -> str:
    """The answer's words above the stopped line."""
    return text.rsplit("\n", 1)[0].strip()


def stop_buttons(message: dict) -> list[dict]:
    return [b for b in buttons(message) if b.get("custom_id", "").startswith("mcps:")]


async def test_stop_mid_stream_keeps_the_words_shown_for_the_next_question(world: World) -> None:
    chat = Chat(world.discord, "stop-stream")
    key = f"k-stop-stream-{world.backend}"
    world.llm.script(key, slow_text(), Text("Later answer."))
    asked = await chat.say(f"{key} tell me everything")
    await streaming(chat, asked)
    stop = await world.discord.slash_command("stop", chat.user, chat.channel)
    confirmed = await stop.wait_response()
    assert confirmed["data"]["flags"] & 64, "the /stop answer must be ephemeral"
    assert "Stopped" in confirmed["data"]["content"]
    text = await chat.answer_text(int(asked["id"]), STOPPED)
    # The model server saw the stream end before it was done.
    await world.llm.wait_for_hangup(key)
    await world.discord.wait_for(
        lambda: (
            [r["emoji"]["name"] for r in world.discord.message(asked["id"])["reactions"]] == ["⏹"]
        )
    )
    lines = text.splitlines()
    assert lines[-1] == f"{STOPPED}stop-stream-user"
    assert INDICATOR.strip() not in text
    words = shown_words(text)
    assert words and LONG.startswith(words) and words != LONG
    parts = chat.replies_to(int(asked["id"]))
    assert all(stop_buttons(p) == [] for p in parts), "the final edit keeps no Stop button"
    assert all(not world.discord.pings(p["id"])["users"] for p in parts)
    # The next question carries the cut answer, on every backend and state mode.
    later = await chat.say(f"{key} and then?")
    await chat.answer_text(int(later["id"]), "Later answer.")
    follow_up = world.llm.requests_for(key)[-1].body
    assert words in json.dumps(follow_up, ensure_ascii=False)


async def test_stop_withdraws_a_pending_approval_and_the_tool_never_runs(world: World) -> None:
    chat = Chat(world.discord, "stop-approval")
    key = f"k-stop-approval-{world.backend}"
    note = f"never-run-{world.backend}"
    world.llm.script(key, [ToolCall("gated__record", {"note": note})], Text("Recorded."))
    asked = await chat.say(f"{key} record it")
    prompt = await chat.prompt()
    stop = await world.discord.slash_command("stop", chat.user, chat.channel)
    assert "Stopped" in (await stop.wait_response())["data"]["content"]
    withdrawn = await world.discord.wait_for(
        lambda: (m := world.discord.message(prompt["id"])) and "Withdrawn" in m["content"] and m
    )
    assert "stopped by stop-approval-user" in withdrawn["content"]
    assert all(b["disabled"] for b in buttons(withdrawn))
    text = await chat.answer_text(int(asked["id"]), STOPPED)
    assert text.splitlines()[-1] == f"{STOPPED}stop-approval-user"
    records = [c for c in read_calls(world.call_log) if note in json.dumps(c)]
    assert records == []
    assert len(world.llm.requests_for(key)) == 1


async def test_stop_cancels_a_running_tool_call(world: World) -> None:
    chat = Chat(world.discord, "stop-tool")
    key = f"k-stop-tool-{world.backend}"
    world.llm.script(
        key, [Text("Let me wait. "), ToolCall("auto__slow", {"seconds": 30})], Text("Next one.")
    )
    asked = await chat.say(f"{key} wait a while")
    await world.discord.wait_for(
        lambda: any("running" in p["content"] for p in chat.replies_to(int(asked["id"])))
    )
    stop = await world.discord.slash_command("stop", chat.user, chat.channel)
    assert "Stopped" in (await stop.wait_response())["data"]["content"]
    text = await chat.answer_text(int(asked["id"]), STOPPED)
    assert "Let me wait." in text
    later = await chat.say(f"{key} and now?")
    await chat.answer_text(int(later["id"]), "Next one.")
    # The stored call got an answer saying what happened; providers refuse an unanswered one.
    follow_up = json.dumps(world.llm.requests_for(key)[-1].body)
    assert "may or may not have run" in follow_up


async def test_another_users_stop_stops_nothing(world: World) -> None:
    chat = Chat(world.discord, "stop-other")
    key = f"k-stop-other-{world.backend}"
    world.llm.script(key, Text("All of it, to the very end.", chunk_size=4, delay_s=0.15))
    asked = await chat.say(f"{key} talk")
    await world.discord.wait_for(lambda: chat.replies_to(int(asked["id"])))
    other = world.discord.add_user("stop-other-stranger")
    stop = await world.discord.slash_command("stop", other, chat.channel)
    refused = await stop.wait_response()
    assert refused["data"]["flags"] & 64
    assert "Nothing of yours is running here." in refused["data"]["content"]
    text = await chat.answer_text(int(asked["id"]), "very end.")
    assert STOPPED not in text


async def test_stop_button_stops_for_the_asker_only_and_leaves_with_the_final_edit(
    world: World,
) -> None:
    chat = Chat(world.discord, "stop-button")
    key = f"k-stop-button-{world.backend}"
    world.llm.script(key, slow_text())
    asked = await chat.say(f"{key} go on and on")
    parts = await streaming(chat, asked)
    newest = parts[-1]
    found = stop_buttons(newest)
    assert len(found) == 1
    custom_id = found[0]["custom_id"]
    assert re.fullmatch(r"mcps:[A-Za-z0-9_-]{1,40}", custom_id)
    stranger = world.discord.add_user("stop-button-stranger")
    refused = await world.discord.click_button(int(newest["id"]), custom_id, stranger)
    assert "Only the person who asked" in (await refused.wait_response())["data"]["content"]
    pressed = await world.discord.click_button(int(newest["id"]), custom_id, chat.user)
    answered = await pressed.wait_response()
    assert answered["data"]["flags"] & 64
    assert "Stopped" in answered["data"]["content"]
    text = await chat.answer_text(int(asked["id"]), STOPPED)
    assert text.splitlines()[-1] == f"{STOPPED}stop-button-user"
    assert all(stop_buttons(p) == [] for p in chat.replies_to(int(asked["id"])))


async def test_stop_with_nothing_running_says_so(world: World) -> None:
    chat = Chat(world.discord, "stop-idle")
    stop = await world.discord.slash_command("stop", chat.user, chat.channel)
    answered = await stop.wait_response()
    assert answered["data"]["flags"] & 64
    assert answered["data"]["content"] == "Nothing of yours is running here."


async def test_a_stop_button_left_by_a_killed_bot_answers_stale_after_the_restart(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    """A bot killed mid-answer never made its final edit: its Stop button stays, and a click
    after the restart gets one line instead of silence or an error."""
    discord = FakeDiscord()
    await discord.start()
    config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", "chat")
    bot = BotProcess(discord, config, tmp_path)
    try:
        async with running(bot):
            chat = Chat(discord, "stop-restart")
            key = "k-stop-restart"
            llm.script(key, slow_text())
            asked = await chat.say(f"{key} keep going")
            parts = await streaming(chat, asked)
            (button,) = stop_buttons(parts[-1])
            await bot.kill()
            await bot.start()
            clicked = await discord.click_button(
                int(parts[-1]["id"]), button["custom_id"], chat.user
            )
            answered = await clicked.wait_response()
            assert answered["data"]["flags"] & 64
            assert answered["data"]["content"] == "This answer has already finished."
    finally:
        await discord.stop()
