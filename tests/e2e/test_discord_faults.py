"""End to end: Discord failing mid-turn (dropped connections, 5xx, deletions): the answer finishes."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import World
from tests.e2e.harness import INDICATOR, Chat
from tests.fakes.discord.state import SEND_MESSAGES
from tests.fakes.llm import Text, ToolCall

# Discord shows "typing" for about 10 s per request, so a bot that still types must refresh
# within that: waiting a little longer shows whether typing stopped, whatever the bot's period.
DISCORD_TYPING_S = 10.0


def typing_after(world: World, channel: int, t: float) -> list:
    return [r for r in world.discord.requests_to("POST", f"/channels/{channel}/typing") if r.t > t]


def last_write(world: World, channel: int) -> float:
    writes = [
        r
        for r in world.discord.requests
        if f"/channels/{channel}/messages" in r.path and r.method in ("POST", "PATCH")
    ]
    return max(r.t for r in writes)


async def test_dropped_connection_on_edits_mid_stream(world: World) -> None:
    chat = Chat(world.discord, "drop-edit")
    key = f"k-drop-edit-{world.backend}"
    text = " ".join(f"edit{i}" for i in range(120))
    world.llm.script(key, Text(text, chunk_size=10, delay_s=0.05))  # ~3 s of streaming
    asked = await chat.say(f"{key} talk")
    await world.discord.wait_for(lambda: chat.replies_to(int(asked["id"])))
    edits = rf"/channels/{chat.channel}/messages/\d+$"
    dropped = world.discord.faults.drop_connection("PATCH", edits, times=2)
    unavailable = world.discord.faults.server_error("PATCH", edits, times=1, status=503)
    parts = await chat.answer(int(asked["id"]), lambda t: t == text)
    assert [p["content"] for p in parts] == [text]
    assert dropped.fired == 2 and unavailable.fired == 1
    assert not [m for m in chat.bot_messages() if m["content"].endswith(INDICATOR)]


async def test_dropped_connection_on_the_first_send(world: World) -> None:
    chat = Chat(world.discord, "drop-send")
    key = f"k-drop-send-{world.backend}"
    text = " ".join(f"send{i}" for i in range(60))
    world.llm.script(key, Text(text, chunk_size=10, delay_s=0.05))
    # The send reaches Discord, but the answer is lost on the way back: a retry must not post
    # the part twice.
    sends = rf"/channels/{chat.channel}/messages$"
    dropped = world.discord.faults.drop_connection("POST", sends, times=1, after_handling=True)
    asked = await chat.say(f"{key} talk")
    parts = await chat.answer(int(asked["id"]), lambda t: t == text)
    assert [p["content"] for p in parts] == [text]
    assert dropped.fired == 1
    assert [m["id"] for m in chat.bot_messages()] == [parts[0]["id"]]
    done = last_write(world, chat.channel)
    await asyncio.sleep(DISCORD_TYPING_S + 0.5)
    assert typing_after(world, chat.channel, done) == []


async def test_an_edit_discord_never_answers_is_sent_again(chat_world: World) -> None:
    # Discord takes the edit and never answers: without a timeout of its own the bot would wait
    # for aiohttp's 300 s default with the reply stuck mid-sentence. (Backend-independent: one
    # world is enough.)
    world = chat_world
    chat = Chat(world.discord, "hang-edit")
    key = "k-hang-edit"
    text = " ".join(f"hang{i}" for i in range(60))
    world.llm.script(key, Text(text, chunk_size=10, delay_s=0.05))
    asked = await chat.say(f"{key} talk")
    await world.discord.wait_for(lambda: chat.replies_to(int(asked["id"])))
    hung = world.discord.faults.hang("PATCH", rf"/channels/{chat.channel}/messages/\d+$")
    try:
        parts = await chat.answer(int(asked["id"]), lambda t: t == text, timeout=60)
    finally:
        hung.released.set()
    assert [p["content"] for p in parts] == [text]
    assert hung.fired == 1


async def test_final_edit_lands_after_repeated_drops(world: World) -> None:
    chat = Chat(world.discord, "drop-final")
    key = f"k-drop-final-{world.backend}"
    world.llm.script(key, Text("first half, second half", chunk_size=11, delay_s=0.3))
    edits = rf"/channels/{chat.channel}/messages/\d+$"
    # More drops than one request's retries: the final sync itself must be tried again.
    dropped = world.discord.faults.drop_connection("PATCH", edits, times=5)
    asked = await chat.say(f"{key} talk")
    parts = await chat.answer(int(asked["id"]), lambda t: t == "first half, second half")
    assert [p["content"] for p in parts] == ["first half, second half"]
    assert dropped.fired == 5


@pytest.mark.discord_errors(404)  # an edit already on its way when the part is deleted
async def test_first_part_deleted_mid_stream_is_sent_again(world: World) -> None:
    chat = Chat(world.discord, "del-part")
    key = f"k-del-part-{world.backend}"
    text = " ".join(f"gone{i}" for i in range(120))
    world.llm.script(key, Text(text, chunk_size=10, delay_s=0.05))
    asked = await chat.say(f"{key} talk")
    first = await world.discord.wait_for(lambda: chat.replies_to(int(asked["id"])))
    await world.discord.delete_stored_message(int(first[0]["id"]))
    parts = await chat.answer(int(asked["id"]), lambda t: t == text)
    assert "\n".join(p["content"] for p in parts) == text
    assert parts[0]["id"] != first[0]["id"]


# A status reaction already on its way when the question goes is answered 404, as on Discord.
@pytest.mark.discord_errors(404)
async def test_question_deleted_before_the_first_words(world: World) -> None:
    chat = Chat(world.discord, "del-question")
    key = f"k-del-question-{world.backend}"
    world.llm.script(key, Text("Still answered.", chunk_size=4, delay_s=0.1))
    asked = await chat.say(f"{key} quick, delete me")
    # Deleted while the model is asked, before the bot could post a word.
    await world.llm.wait_for_requests(key, 1)
    await world.discord.delete_stored_message(int(asked["id"]))

    def answered() -> dict | None:
        done = [m for m in chat.bot_messages() if "Still answered." in m["content"]]
        return done[0] if done and not done[0]["content"].endswith(INDICATOR) else None

    message = await world.discord.wait_for(answered, timeout=30)
    assert f"<@{chat.user}>" in message["content"]  # names the asker...
    assert world.discord.pings(message["id"])["users"] == []  # ...without pinging


@pytest.mark.discord_errors(404)  # marking the deleted prompt as timed out
async def test_approval_prompt_deleted_while_pending(world: World) -> None:
    chat = Chat(world.discord, "del-prompt")
    key = f"k-del-prompt-{world.backend}"
    world.llm.script(
        key, [ToolCall("gated__record", {"note": "del-prompt"})], Text("Carried on anyway.")
    )
    asked = await chat.say(f"{key} record please")
    prompt = await chat.prompt()
    await world.discord.delete_stored_message(int(prompt["id"]))
    # Nobody can decide now: the request times out and the answer goes on without the tool.

    def answered() -> dict | None:
        done = [m for m in chat.bot_messages() if "Carried on anyway." in m["content"]]
        return done[0] if done and not done[0]["content"].endswith(INDICATOR) else None

    await world.discord.wait_for(answered, timeout=60)  # after the world's approval timeout
    first = chat.replies_to(int(asked["id"]))[0]
    assert "not run" in world.discord.message(first["id"])["content"]


async def test_channel_without_send_costs_nothing_and_blocks_nobody(world: World) -> None:
    muted = Chat(world.discord, "no-send")
    await world.discord.deny_bot(muted.channel, SEND_MESSAGES)
    key = f"k-no-send-{world.backend}"
    world.llm.script(key, Text("Nobody would see this.", chunk_size=4, delay_s=0.2))
    await muted.say(f"{key} hello?")
    # The same user, at once, elsewhere: no lock, no limit held by the refused turn.
    elsewhere = Chat(world.discord, "no-send-other")
    asked = await elsewhere.say(f"k-no-send-other-{world.backend} hi", user=muted.user)
    assert "echo" in await elsewhere.answer_text(int(asked["id"]), "echo")
    assert world.llm.requests_for(key) == []
    await world.bot.wait_logged(f"not answering in channel {muted.channel}")
    assert world.discord.requests_to("POST", f"/channels/{muted.channel}/") == []
    assert "lacks the Send Messages permission" in world.bot.log()


async def test_a_slash_command_whose_answer_is_lost_tells_the_user(chat_world: World) -> None:
    """The connection drops while the bot answers /tools: instead of Discord's "The application
    did not respond", the user gets one line saying what happened."""
    world = chat_world
    chat = Chat(world.discord, "command-drop")
    dropped = world.discord.faults.drop_connection("POST", r"/interactions/\d+/[^/]+/callback")
    interaction = await world.discord.slash_command("tools", chat.user, chat.channel)
    data = (await interaction.wait_response())["data"]
    assert dropped.fired == 1
    assert data["flags"] & 64  # ephemeral: only the user who asked sees it
    assert data["content"] == (
        "Sorry, /tools didn't work: Discord couldn't be reached just then. Please try again."
    )
