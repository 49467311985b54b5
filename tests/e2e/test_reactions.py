"""End to end: the asker's message shows the turn's state as one reaction of the bot's at a time."""

from __future__ import annotations

from urllib.parse import unquote

from tests.conftest import World
from tests.e2e.harness import Chat
from tests.fakes.discord.state import ADD_REACTIONS, READ_MESSAGE_HISTORY
from tests.fakes.llm import Fault, Text, ToolCall


def own_reactions(world: World, message_id: int | str) -> list[str]:
    message = world.discord.message(message_id) or {}
    return [r["emoji"]["name"] for r in message.get("reactions", []) if r["me"]]


def reaction_log(world: World, message_id: int | str) -> list[tuple[str, str]]:
    """The bot's reaction requests on one message, in order: ("PUT" | "DELETE", emoji)."""
    found = []
    for method in ("PUT", "DELETE"):
        for r in world.discord.requests_to(method, f"/messages/{message_id}/reactions/"):
            found.append((r.t, method, unquote(r.path).split("/reactions/")[1].split("/")[0]))
    return [(method, emoji) for _, method, emoji in sorted(found)]


async def ends_as(world: World, message_id: int | str, emoji: str) -> None:
    await world.discord.wait_for(lambda: own_reactions(world, message_id) == [emoji], timeout=20)


def at_most_one_at_a_time(log: list[tuple[str, str]]) -> bool:
    on = 0
    for method, _ in log:
        on += 1 if method == "PUT" else -1
        if on > 1:
            return False
    return True


async def test_a_finished_turn_ends_as_done_after_working(world: World) -> None:
    chat = Chat(world.discord, "react-done")
    key = f"k-react-done-{world.backend}"
    world.llm.script(key, Text("Slowly, then done.", chunk_size=3, delay_s=0.1))
    asked = await chat.say(f"{key} hi")
    await chat.answer_text(int(asked["id"]), "then done.")
    await ends_as(world, asked["id"], "✅")
    log = reaction_log(world, asked["id"])
    assert log[0] == ("PUT", "👀")
    assert log[-1] == ("PUT", "✅")
    assert at_most_one_at_a_time(log)


async def test_a_failed_turn_ends_as_failed(world: World) -> None:
    chat = Chat(world.discord, "react-failed")
    key = f"k-react-failed-{world.backend}"
    world.llm.script(key, Fault(400, message="refused for the test"))
    asked = await chat.say(f"{key} hi")
    await chat.answer_text(int(asked["id"]), "⚠️")
    await ends_as(world, asked["id"], "❌")


async def test_a_queued_question_shows_queued_first_and_a_tool_turn_shows_the_tool(
    world: World,
) -> None:
    chat = Chat(world.discord, "react-queued")
    key = f"k-react-queued-{world.backend}"
    world.llm.script(
        key, [ToolCall("auto__slow", {"seconds": 2})], Text("First done."), Text("Second done.")
    )
    first = await chat.say(f"{key} one")
    await world.discord.wait_for(lambda: chat.replies_to(int(first["id"])))
    second = await chat.say(f"{key} two")
    await chat.answer_text(int(second["id"]), "Second done.")
    await ends_as(world, first["id"], "✅")
    await ends_as(world, second["id"], "✅")
    assert ("PUT", "🔧") in reaction_log(world, first["id"])
    assert reaction_log(world, second["id"])[0] == ("PUT", "⏳")
    assert at_most_one_at_a_time(reaction_log(world, first["id"]))
    assert at_most_one_at_a_time(reaction_log(world, second["id"]))


async def test_an_approval_turn_shows_the_hand_while_it_waits(world: World) -> None:
    chat = Chat(world.discord, "react-approval")
    key = f"k-react-approval-{world.backend}"
    world.llm.script(key, [ToolCall("gated__record", {"note": "react-note"})], Text("Noted."))
    asked = await chat.say(f"{key} note it")
    prompt = await chat.prompt()
    await world.discord.wait_for(lambda: own_reactions(world, asked["id"]) == ["✋"], timeout=20)
    approve = next(
        b["custom_id"]
        for row in prompt["components"]
        for b in row["components"]
        if b["custom_id"].endswith(":approve")
    )
    clicked = await world.discord.click_button(int(prompt["id"]), approve, chat.user)
    await clicked.wait_response()
    await chat.answer_text(int(asked["id"]), "Noted.")
    await ends_as(world, asked["id"], "✅")


async def test_without_add_reactions_the_answer_comes_with_none_and_one_log_line(
    world: World,
) -> None:
    chat = Chat(world.discord, "react-denied")
    key = f"k-react-denied-{world.backend}"
    world.llm.script(key, Text("Answered anyway."), Text("Again."))
    await world.discord.deny_bot(chat.channel, ADD_REACTIONS)
    first = await chat.say(f"{key} one")
    await chat.answer_text(int(first["id"]), "Answered anyway.")
    second = await chat.say(f"{key} two")
    await chat.answer_text(int(second["id"]), "Again.")
    # Known from the permissions the gateway sent: not even one refused request.
    assert world.discord.requests_to("PUT", f"/channels/{chat.channel}/messages/") == []
    lines = [
        line
        for line in world.bot.log().splitlines()
        if "lacks the Add Reactions permission" in line and str(chat.channel) in line
    ]
    assert len(lines) == 1, lines


async def test_without_read_message_history_the_answer_comes_with_no_reaction_request(
    world: World,
) -> None:
    """Discord refuses a reaction from a bot that cannot read the channel's history (50013);
    the bot knows that from the permissions and never sends one."""
    chat = Chat(world.discord, "react-no-history")
    key = f"k-react-no-history-{world.backend}"
    world.llm.script(key, Text("Answered without reactions."))
    await world.discord.deny_bot(chat.channel, READ_MESSAGE_HISTORY)
    asked = await chat.say(f"{key} one")
    await chat.answer_text(int(asked["id"]), "Answered without reactions.")
    assert world.discord.requests_to("PUT", f"/channels/{chat.channel}/messages/") == []
    lines = [
        line
        for line in world.bot.log().splitlines()
        if "no status reactions" in line and str(chat.channel) in line
    ]
    assert len(lines) == 1 and "Read Message History" in lines[0], lines
