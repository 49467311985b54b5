"""End to end with the official `server-everything` over stdio: files, resources, progress,
sampling, as Discord shows them and as the model receives them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.conftest import World, bot_config, stop_world
from tests.e2e.harness import BotProcess, Chat, buttons
from tests.e2e.test_tools import click, tool_outputs
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.state import SEND_MESSAGES
from tests.fakes.discord_autocomplete import autocomplete
from tests.fakes.everything import everything_params
from tests.fakes.llm import ScriptedLLM, Text, ToolCall


async def start_everything_world(
    tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM, backend: str, sampling: str
) -> World:
    params = everything_params()  # skips here when Node is missing
    discord = FakeDiscord()
    await discord.start()
    workdir = tmp_path_factory.mktemp(f"bot-everything-{backend}-{sampling}")
    call_log = workdir / "calls.jsonl"
    config = bot_config(llm, workdir, call_log, backend)
    config["mcp"]["sampling"] = sampling
    config["mcp"]["servers"] = {"everything": {**params, "require_approval": "never"}}
    bot = BotProcess(discord, config, workdir)
    await bot.start()
    return World(discord=discord, llm=llm, bot=bot, call_log=call_log, backend=backend)


@pytest_asyncio.fixture(scope="session", loop_scope="session", params=["chat", "responses"])
async def everything_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM
) -> AsyncIterator[World]:
    world = await start_everything_world(tmp_path_factory, llm, request.param, "ask")
    yield world
    await stop_world(world)


def reply_files(chat: Chat, message_id: int) -> list[dict[str, Any]]:
    return [a for m in chat.replies_to(message_id) for a in m.get("attachments", [])]


async def test_tiny_image_is_attached_and_the_model_gets_a_note(everything_world: World) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-image")
    key = f"k-evimage-{world.backend}"
    world.llm.script(key, [ToolCall("everything__get-tiny-image", {})], Text("Here is the logo."))
    asked = await chat.say(f"{key} show me the logo")
    await chat.answer_text(int(asked["id"]), "Here is the logo.")
    files = await world.discord.wait_for(lambda: reply_files(chat, int(asked["id"])) or None)
    (png,) = files
    assert png["filename"].endswith(".png")
    async with aiohttp.ClientSession() as http, http.get(png["url"]) as got:
        assert (await got.read()).startswith(b"\x89PNG\r\n\x1a\n")
    (output,) = tool_outputs(world.llm.requests_for(key)[1].body)
    assert "image" in output and png["filename"] in output
    assert "iVBOR" not in output  # the model gets a note, not base64


async def test_files_from_tools_come_in_one_message_below_the_answer(
    everything_world: World,
) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-files")
    key = f"k-evfiles-{world.backend}"
    image = ToolCall("everything__get-tiny-image", {})
    world.llm.script(key, [image], [image], Text("Two logos, files below."))
    asked = await chat.say(f"{key} show me the logo twice")
    await chat.answer_text(int(asked["id"]), "Two logos, files below.")
    with_files = await world.discord.wait_for(
        lambda: [m for m in chat.replies_to(int(asked["id"])) if m["attachments"]] or None
    )
    (files_message,) = with_files
    assert len(files_message["attachments"]) == 2
    chain = chat.replies_to(int(asked["id"]))
    assert chain[-1]["id"] == files_message["id"]  # the last message of the reply
    answer = next(m for m in chain if "Two logos, files below." in m["content"])
    assert int(answer["id"]) < int(files_message["id"])


async def test_resource_reference_text_to_model_blob_attached(everything_world: World) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-resource")
    key = f"k-evres-{world.backend}"
    tool = "everything__get-resource-reference"
    world.llm.script(
        key,
        [ToolCall(tool, {"resourceType": "Text", "resourceId": 1})],
        Text("Text read."),
        [ToolCall(tool, {"resourceType": "Blob", "resourceId": 2})],
        Text("Blob attached."),
    )
    first = await chat.say(f"{key} the text one")
    await chat.answer_text(int(first["id"]), "Text read.")
    (text_output,) = tool_outputs(world.llm.requests_for(key)[1].body)
    assert "Resource 1: This is a plaintext resource" in text_output
    assert reply_files(chat, int(first["id"])) == []

    second = await chat.say(f"{key} the blob one")
    await chat.answer_text(int(second["id"]), "Blob attached.")
    (blob,) = await world.discord.wait_for(lambda: reply_files(chat, int(second["id"])) or None)
    # The file holds the resource's bytes, decoded from its base64 (the server stamps the time).
    data = world.discord.attachment_data(blob)
    assert data.startswith(b"Resource 2: This is a base64 blob created at "), data[:80]
    assert blob["size"] == len(data)
    blob_output = tool_outputs(world.llm.requests_for(key)[3].body)[-1]
    assert blob["filename"] in blob_output and "base64 blob" not in blob_output


async def test_long_running_operation_shows_progress(everything_world: World) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-progress")
    key = f"k-evprogress-{world.backend}"
    world.llm.script(
        key,
        [ToolCall("everything__trigger-long-running-operation", {"duration": 4, "steps": 4})],
        Text("The long job finished."),
    )
    asked = await chat.say(f"{key} run the long job")
    text = await chat.answer_text(int(asked["id"]), "The long job finished.", timeout=40)
    assert "✅ `everything.trigger-long-running-operation` done" in text
    shown = [
        str((r.json or {}).get("content", ""))
        for r in world.discord.requests
        if r.method in ("POST", "PATCH") and f"/channels/{chat.channel}/messages" in r.path
    ]
    assert any("running… " in s and "/4" in s for s in shown), shown


async def test_sampling_ask_approved_answers_with_the_bots_model(everything_world: World) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-sampling")
    key = f"k-evsample-{world.backend}"
    world.llm.script(
        key,
        [ToolCall("everything__trigger-sampling-request", {"prompt": f"{key} a haiku"})],
        Text("Silent bytes falling"),  # the sampling request's answer
        Text("The server got its haiku."),
    )
    asked = await chat.say(f"{key} make the server sample")
    prompt = await chat.prompt()
    assert "everything" in prompt["content"] and "a haiku" in prompt["content"]
    intruder = world.discord.add_user("ev-intruder")
    refusal = await click(world, prompt, "approve", intruder)
    assert refusal["type"] == 4 and refusal["data"]["flags"] & 64
    await click(world, prompt, "approve", chat.user)
    await chat.answer_text(int(asked["id"]), "The server got its haiku.", timeout=30)
    requests = world.llm.requests_for(key)
    sampling = requests[1].body
    assert "tools" not in sampling or not sampling["tools"]  # answered without tools
    output = tool_outputs(requests[2].body)[-1]
    assert "Silent bytes falling" in output


async def test_sampling_ask_denied_gives_an_error_result(everything_world: World) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-sampling-no")
    key = f"k-evsampleno-{world.backend}"
    world.llm.script(
        key,
        [ToolCall("everything__trigger-sampling-request", {"prompt": f"{key} a poem"})],
        Text("The server was refused."),
    )
    asked = await chat.say(f"{key} make the server sample")
    prompt = await chat.prompt()
    await click(world, prompt, "deny", chat.user)
    text = await chat.answer_text(int(asked["id"]), "The server was refused.", timeout=30)
    assert "⚠️ `everything.trigger-sampling-request` failed" in text
    assert "`everything.sampling` not approved" in text and "waiting for approval" not in text
    assert len(world.llm.requests_for(key)) == 2  # no sampling request reached the model
    assert "declined" in tool_outputs(world.llm.requests_for(key)[1].body)[-1]
    assert all(b["disabled"] for b in buttons(world.discord.message(int(prompt["id"])) or {}))


async def test_sampling_deny_policy_errors_at_once(
    tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM
) -> None:
    world = await start_everything_world(tmp_path_factory, llm, "chat", "deny")
    try:
        chat = Chat(world.discord, "ev-deny")
        key = "k-evdeny"
        world.llm.script(
            key,
            [ToolCall("everything__trigger-sampling-request", {"prompt": f"{key} x"})],
            Text("Sampling is off here."),
        )
        asked = await chat.say(f"{key} make the server sample")
        await chat.answer_text(int(asked["id"]), "Sampling is off here.", timeout=15)
        assert len(world.llm.requests_for(key)) == 2
        output = tool_outputs(world.llm.requests_for(key)[1].body)[-1]
        assert "mcp.sampling: deny" in output
        assert not [m for m in chat.bot_messages() if "Approval needed" in m["content"]]
    finally:
        await stop_world(world)


async def test_tools_command_shows_prompts_and_capabilities(everything_world: World) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-tools")
    interaction = await world.discord.slash_command("tools", chat.user, chat.channel)
    content = (await interaction.wait_response())["data"]["content"]
    assert "**everything** (approval: never)" in content
    assert "`everything/args-prompt`" in content
    assert "· sampling: ask · elicitation: yes" in content  # what the server may ask of the bot


def llm_text(body: dict[str, Any]) -> str:
    return str(body.get("messages") or body.get("input") or "")


async def test_prompt_command_starts_a_turn_with_the_prompts_text(
    everything_world: World,
) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-prompt")
    city = f"Paris-{world.backend}"  # no script key: the scripted model echoes the question
    interaction = await world.discord.slash_command(
        "prompt",
        chat.user,
        chat.channel,
        {"name": "everything/args-prompt", "arguments": f"city={city}"},
    )
    deferred = await interaction.wait_response()
    assert deferred["type"] == 5  # deferred: the answer streams into the channel

    def header() -> dict[str, Any] | None:
        found = [m for m in chat.bot_messages() if "📝 `everything/args-prompt`" in m["content"]]
        return found[0] if found else None

    source = await world.discord.wait_for(header, timeout=15)
    assert (
        f"city={city}" in source["content"] and not world.discord.pings(int(source["id"]))["users"]
    )
    text = await chat.answer_text(int(source["id"]), f"What's weather in {city}?")
    assert text.startswith("echo: ")
    sent = [r for r in world.llm.requests if f"What's weather in {city}?" in llm_text(r.body)]
    assert len(sent) == 1


async def test_prompt_command_checks_arguments(everything_world: World) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-prompt-bad")
    city = f"Lyon-refused-{world.backend}"  # in every request a wrongly started turn would send
    for options, words in [
        (
            {"name": "everything/args-prompt", "arguments": f"city={city}; town=Paris"},
            "no argument town",
        ),
        ({"name": "everything/args-prompt"}, "needs `city=…`"),
        ({"name": "everything/nope", "arguments": f"city={city}"}, "no prompt `everything/nope`"),
    ]:
        interaction = await world.discord.slash_command("prompt", chat.user, chat.channel, options)
        refusal = await interaction.wait_response()
        assert refusal["type"] == 4 and refusal["data"]["flags"] & 64
        assert words in refusal["data"]["content"]
    assert world.llm.requests_mentioning(city) == []


async def _question(chat: Chat) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        found = [m for m in chat.bot_messages() if "❓ **`everything` asks**" in m["content"]]
        return found[-1] if found else None

    return await chat.discord.wait_for(find, timeout=20)


def _modal_inputs(response: dict[str, Any]) -> list[str]:
    return [
        c["custom_id"]
        for row in response["data"]["components"]
        for c in row.get("components", [row.get("component") or {}])
        if c.get("type") == 4
    ]


async def test_elicitation_stranger_refused_requester_opens_then_declines(
    everything_world: World,
) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-elicit-no")
    key = f"k-evelicitno-{world.backend}"
    world.llm.script(
        key, [ToolCall("everything__trigger-elicitation-request", {})], Text("You declined.")
    )
    asked = await chat.say(f"{key} ask me things")
    question = await _question(chat)
    ids = [b["custom_id"] for b in buttons(question)]
    assert ids[0].startswith("mcpe:") and ids[0].endswith(":open") and ids[1].endswith(":decline")
    pings = world.discord.pings(int(question["id"]))
    assert pings["users"] == [chat.user] and pings["roles"] == [] and not pings["everyone"]

    stranger = world.discord.add_user("ev-elicit-stranger")
    refusal = await click(world, question, "open", stranger)
    assert (
        refusal["type"] == 4
        and refusal["data"]["flags"] & 64
        and "Only" in refusal["data"]["content"]
    )

    opened = await click(world, question, "open", chat.user)
    assert opened["type"] == 9  # a modal, one page of the form
    assert opened["data"]["custom_id"] == ids[0].replace(":open", ":submit")
    inputs = _modal_inputs(opened)
    assert inputs[0] == "name" and len(inputs) == 5

    declined = await click(world, question, "decline", chat.user)
    assert declined["type"] == 7 and f"Declined by <@{chat.user}>" in declined["data"]["content"]
    await chat.answer_text(int(asked["id"]), "You declined.")
    output = tool_outputs(world.llm.requests_for(key)[1].body)[-1]
    assert "declined" in output and '"action": "decline"' in output


async def test_an_admin_may_decline_someone_elses_question(everything_world: World) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-elicit-admin")
    key = f"k-evelicitadmin-{world.backend}"
    world.llm.script(
        key, [ToolCall("everything__trigger-elicitation-request", {})], Text("An admin said no.")
    )
    asked = await chat.say(f"{key} ask me things")
    question = await _question(chat)
    admin = world.discord.owner_id  # the guild owner: an Administrator
    declined = await click(world, question, "decline", admin)
    assert declined["type"] == 7 and f"Declined by <@{admin}>" in declined["data"]["content"]
    await chat.answer_text(int(asked["id"]), "An admin said no.")


async def test_elicitation_requester_fills_the_form(everything_world: World) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-elicit-yes")
    key = f"k-evelicit-{world.backend}"
    world.llm.script(
        key, [ToolCall("everything__trigger-elicitation-request", {})], Text("Thanks, Ada.")
    )
    asked = await chat.say(f"{key} ask me things")
    question = await _question(chat)
    pages_seen = 0
    values = {"name": "Ada Lovelace", "check": "yes", "integer": "7"}
    while True:
        opened_at = world.discord.message(int(question["id"])) or question
        custom_id = next(
            b["custom_id"] for b in buttons(opened_at) if b["custom_id"].endswith(":open")
        )
        interaction = await world.discord.click_button(int(question["id"]), custom_id, chat.user)
        await interaction.wait_response()
        inputs = interaction.text_inputs()
        page = {k: v for k, v in values.items() if k in inputs}
        submitted = await world.discord.submit_modal(interaction, page)
        response = await submitted.wait_response()
        pages_seen += 1
        if "Answered by" in (response["data"].get("content") or ""):
            break
        assert pages_seen < 5
    assert pages_seen == 3  # 13 fields, five per modal
    await chat.answer_text(int(asked["id"]), "Thanks, Ada.")
    output = tool_outputs(world.llm.requests_for(key)[1].body)[-1]
    assert "- Name: Ada Lovelace" in output and "- Favorite Integer: 7" in output
    assert "Agreed to terms: true" in output


async def test_url_elicitation_shows_the_link_and_reports_accept(everything_world: World) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-elicit-url")
    key = f"k-evelicurl-{world.backend}"
    link = "https://example.com/authorize?step=1"
    world.llm.script(
        key,
        [
            ToolCall(
                "everything__trigger-url-elicitation", {"url": link, "message": "Log in please"}
            )
        ],
        Text("Thanks for logging in."),
    )
    asked = await chat.say(f"{key} connect my account")
    question = await _question(chat)
    assert "Log in please" in question["content"]
    link_buttons = [b for b in buttons(question) if b.get("url")]
    assert [b["url"] for b in link_buttons] == [link]
    (open_id,) = [
        b["custom_id"] for b in buttons(question) if b.get("custom_id", "").endswith(":open")
    ]
    clicked = await world.discord.click_button(int(question["id"]), open_id, chat.user)
    done = await clicked.wait_response()
    assert done["type"] == 7 and f"Answered by <@{chat.user}>" in done["data"]["content"]
    await chat.answer_text(int(asked["id"]), "Thanks for logging in.")
    output = tool_outputs(world.llm.requests_for(key)[1].body)[-1]
    assert "User completed the URL elicitation flow" in output


async def test_user_audience_content_is_shown_not_given_to_the_model(
    everything_world: World,
) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-audience")
    key = f"k-evaudience-{world.backend}"
    world.llm.script(
        key,
        [ToolCall("everything__get-annotated-message", {"messageType": "success"})],
        Text("Reported."),
    )
    asked = await chat.say(f"{key} how did it go")
    text = await chat.answer_text(int(asked["id"]), "Reported.")
    assert "Operation completed successfully" in text  # for the user
    (output,) = tool_outputs(world.llm.requests_for(key)[1].body)
    assert "Operation completed successfully" not in output  # not for the model


async def test_prompt_autocomplete_names_and_argument_values(everything_world: World) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-autocomplete")
    names = await autocomplete(
        world.discord, "prompt", chat.user, chat.channel, {"name": "args"}, "name"
    )
    assert [c["value"] for c in names] == ["everything/args-prompt"]
    assert names[0]["name"].startswith("everything/args-prompt — ")
    fields = await autocomplete(
        world.discord,
        "prompt",
        chat.user,
        chat.channel,
        {"name": "everything/args-prompt", "arguments": ""},
        "arguments",
    )
    assert [c["value"] for c in fields] == ["city=", "state="]
    # Values come from the server's completions where it offers them.
    values = await autocomplete(
        world.discord,
        "prompt",
        chat.user,
        chat.channel,
        {"name": "everything/completable-prompt", "arguments": "department=Eng"},
        "arguments",
    )
    assert "department=Engineering" in [c["value"] for c in values]


async def test_sampling_denied_with_a_reason_tells_the_server(everything_world: World) -> None:
    world = everything_world
    chat = Chat(world.discord, "ev-sampling-why")
    key = f"k-evsamplewhy-{world.backend}"
    world.llm.script(
        key,
        [ToolCall("everything__trigger-sampling-request", {"prompt": f"{key} a poem"})],
        Text("The server heard why."),
    )
    asked = await chat.say(f"{key} make the server sample")
    prompt = await chat.prompt()
    reason_id = next(b["custom_id"] for b in buttons(prompt) if b["custom_id"].endswith(":reason"))
    opened = await world.discord.click_button(int(prompt["id"]), reason_id, chat.user)
    await opened.wait_response()
    submitted = await world.discord.submit_modal(opened, {"reason": "no model time today"})
    await submitted.wait_response()
    await chat.answer_text(int(asked["id"]), "The server heard why.", timeout=30)
    output = tool_outputs(world.llm.requests_for(key)[1].body)[-1]
    assert "no model time today" in output


async def test_prompt_command_in_a_channel_without_send(everything_world: World) -> None:
    world = everything_world
    muted = Chat(world.discord, "ev-prompt-muted")
    await world.discord.deny_bot(muted.channel, SEND_MESSAGES)
    city = f"Oslo-muted-{world.backend}"
    interaction = await world.discord.slash_command(
        "prompt",
        muted.user,
        muted.channel,
        {"name": "everything/args-prompt", "arguments": f"city={city}"},
    )
    refusal = await interaction.wait_response()
    assert refusal["type"] == 4 and refusal["data"]["flags"] & 64
    assert "Send Messages" in refusal["data"]["content"]
    assert world.llm.requests_mentioning(city) == []
