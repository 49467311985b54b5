"""End to end: what a server says during and after a call (progress, user-only notes, a question)
stays within a message or two of the reply, however much the server says."""

from __future__ import annotations

from tests.conftest import World
from tests.e2e.harness import Chat, buttons
from tests.e2e.test_tools import click, tool_outputs
from tests.fakes.llm import Text, ToolCall


def message_posts(world: World, chat: Chat) -> int:
    """Messages the bot created in this test's channel (each one a Discord write)."""
    return len(world.discord.requests_to("POST", f"/channels/{chat.channel}/messages"))


async def test_a_huge_progress_message_shows_as_one_short_line(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "progress-flood")
    key = "k-progress-flood"
    # 700 lines of about 90 characters: one notification of some 60,000 characters.
    world.llm.script(
        key, [ToolCall("auto__chatter", {"lines": 700, "hold_s": 4})], Text("Chattered.")
    )
    asked = await chat.say(f"{key} work and talk")

    def progress_shown() -> str | None:
        text = "\n".join(m["content"] for m in chat.replies_to(int(asked["id"])))
        return text if "running… 1/2" in text else None

    shown = await world.discord.wait_for(progress_shown, timeout=20)
    (line,) = [x for x in shown.splitlines() if "running… 1/2" in x]
    assert "step 1:" in line and "step 2:" in line  # the lines run together into one
    assert "…" in line.split("running…", 1)[1]  # and the rest is visibly cut
    assert len(shown) < 300
    assert "LAST-PROGRESS-LINE" not in shown
    text = await chat.answer_text(int(asked["id"]), "Chattered.")
    assert "✅ `auto.chatter` done" in text
    assert message_posts(world, chat) <= 2


async def test_many_user_only_notes_fit_one_message_and_the_rest_is_attached(
    chat_world: World,
) -> None:
    world = chat_world
    chat = Chat(world.discord, "notes-flood")
    key = "k-notes-flood"
    world.llm.script(
        key, [ToolCall("auto__notes", {"count": 60, "chars": 100})], Text("Notes sent.")
    )
    asked = await chat.say(f"{key} send notes")
    text = await chat.answer_text(int(asked["id"]), "Notes sent.")
    assert "note 1: nnn" in text and "note 60:" not in text
    assert "more in `tool-notes.txt`" in text  # the cut is visible and says where the rest is

    def notes_file() -> dict | None:
        files = [a for m in chat.replies_to(int(asked["id"])) for a in m.get("attachments", [])]
        return next((f for f in files if f["filename"] == "tool-notes.txt"), None)

    attached = world.discord.attachment_data(await world.discord.wait_for(notes_file))
    assert b"note 1: " in attached and b"note 60: " in attached
    # The reply itself and the message carrying the file: nothing more.
    assert message_posts(world, chat) <= 2
    (output,) = tool_outputs(world.llm.requests_for(key)[1].body)
    assert output == "sent 60 notes"  # user-only notes never reach the model


async def test_a_question_with_nothing_to_fill_in_is_answered_by_its_button(
    chat_world: World,
) -> None:
    world = chat_world
    chat = Chat(world.discord, "confirm")
    key = "k-confirm-empty"
    world.llm.script(
        key, [ToolCall("auto__confirm", {"question": "Proceed with it?"})], Text("Confirmed.")
    )
    asked = await chat.say(f"{key} go ahead")

    def question() -> dict | None:
        found = [m for m in chat.bot_messages() if "Proceed with it?" in m["content"]]
        return found[-1] if found and buttons(found[-1]) else None

    prompt = await world.discord.wait_for(question, timeout=20)
    answered = await click(world, prompt, "open", chat.user)
    assert answered["type"] == 7  # the prompt is updated in place: no form to open
    assert f"Answered by <@{chat.user}>" in answered["data"]["content"]
    await chat.answer_text(int(asked["id"]), "Confirmed.")
    (output,) = tool_outputs(world.llm.requests_for(key)[1].body)
    assert "confirmation: accept" in output
