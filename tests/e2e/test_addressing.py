"""End to end: what counts as addressing the bot, and the other slash commands."""

from __future__ import annotations

from tests.conftest import World
from tests.e2e.harness import Chat


async def test_role_mention_and_reply_to_the_bot_address_it(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "address")
    by_role = await world.discord.send_message(
        chat.channel, chat.user, f"<@&{world.discord.bot_role_id}> k-role hello"
    )
    parts = await chat.answer(int(by_role["id"]))
    assert parts[0]["content"] == "echo: k-role hello"
    reply = await world.discord.send_message(
        chat.channel, chat.user, "k-reply and a follow-up", reply_to=int(parts[0]["id"])
    )
    assert await chat.answer_text(int(reply["id"]), "echo") == "echo: k-reply and a follow-up"


async def test_empty_mention_gets_a_hint_and_no_llm_call(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "empty")
    key = "k-empty-mention"
    world.llm.script(key)
    first = await chat.say(f"{key} first question")
    await chat.answer_text(int(first["id"]), "echo")
    asked = await world.discord.send_message(chat.channel, chat.user, chat.mention())
    hint = await world.discord.wait_for(lambda: chat.replies_to(int(asked["id"])))
    assert "Mention me with a question" in hint[0]["content"]
    # The conversation goes on: had the empty mention reached the model, it would be one more
    # request carrying this conversation's history, and a user turn in the next one's history.
    after = await chat.say(f"{key} second question")
    await chat.answer_text(int(after["id"]), "second question")
    sent = world.llm.requests_mentioning(key)
    assert len(sent) == 2
    said = [m["content"] for m in sent[-1].body["messages"] if m["role"] == "user"]
    assert said == [f"{key} first question", f"{key} second question"]


async def test_tools_command_lists_servers_and_policies(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "tools")
    interaction = await world.discord.slash_command("tools", chat.user, chat.channel)
    data = (await interaction.wait_response())["data"]
    assert data["flags"] & 64
    assert "**auto** (approval: never)" in data["content"]
    assert "`gated__record`" in data["content"]
    assert "never for: echo" in data["content"]
    assert "`time__get_current_time`" in data["content"]


async def test_admin_resets_the_whole_channel_others_may_not(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "wipe")
    key = "k-wipe"
    world.llm.script(key)
    second_user = world.discord.add_user("second")
    for user in (chat.user, second_user):
        asked = await chat.say(f"{key} remember pineapple", user=user)
        await chat.answer_text(int(asked["id"]), "echo")
    refused = await world.discord.slash_command(
        "reset", chat.user, chat.channel, {"everyone": True}
    )
    assert "Only admins" in (await refused.wait_response())["data"]["content"]
    wiped = await world.discord.slash_command(
        "reset", world.discord.owner_id, chat.channel, {"everyone": True}
    )
    assert "Forgot 2 conversation(s)" in (await wiped.wait_response())["data"]["content"]
    asked = await chat.say(f"{key} what fruit?", user=second_user)
    await chat.answer_text(int(asked["id"]), "echo")
    body = world.llm.requests_for(key)[-1].body
    assert "pineapple" not in str(body["messages"])


async def test_model_command_switches_this_conversation_only(world: World) -> None:
    chat = Chat(world.discord, "model")
    key = f"k-model-{world.backend}"
    world.llm.script(key)
    listing = await world.discord.slash_command("model", chat.user, chat.channel)
    assert "test-model-2" in (await listing.wait_response())["data"]["content"]
    refused = await world.discord.slash_command(
        "model", chat.user, chat.channel, {"name": "gpt-9-ultra"}
    )
    assert "not allowed" in (await refused.wait_response())["data"]["content"]
    prefix = "openai/" if world.backend == "chat" else ""
    chosen = await world.discord.slash_command(
        "model", chat.user, chat.channel, {"name": f"{prefix}test-model-2"}
    )
    assert (await chosen.wait_response())["data"]["flags"] & 64
    asked = await chat.say(f"{key} hi")
    await chat.answer_text(int(asked["id"]), "echo")
    other = world.discord.add_user("other-model-user")
    asked = await chat.say(f"{key} hi from another", user=other)
    await chat.answer_text(int(asked["id"]), "echo")
    mine, theirs = world.llm.requests_for(key)
    assert mine.body["model"] == "test-model-2"
    assert theirs.body["model"] == "test-model"
