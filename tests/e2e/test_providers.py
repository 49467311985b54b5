"""End to end: what real providers and gateways do (issue 9), and no conversation stays stuck."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import World, bot_config, bot_running
from tests.e2e.harness import Chat
from tests.e2e.test_tools import tool_outputs
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import Fault, Reasoning, ScriptedLLM, Silent, Text, ToolCall
from tests.fakes.mcp_server import read_calls

QUOTA = {"code": "insufficient_quota", "type": "insufficient_quota"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def db(world: World) -> sqlite3.Connection:
    path = Path(world.bot.config["storage"]["path"])
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    return connection


def assistant_nulls(body: dict) -> list[dict]:
    """Assistant messages with null content and no tool calls: what Mistral and OpenAI refuse."""
    items = body.get("messages") or body.get("input") or []
    return [
        m
        for m in items
        if isinstance(m, dict)
        and m.get("role") == "assistant"
        and not m.get("content")
        and not m.get("tool_calls")
    ]


# -- dedicated worlds: vision on, and local state for the responses backend -----------------
@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["chat", "responses"])
async def local_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM
) -> AsyncIterator[World]:
    """A bot that keeps its history itself (chat, or responses with state: local), sees images
    and shows reasoning summaries. MCP servers: only `auto`."""
    backend = request.param
    discord = FakeDiscord()
    await discord.start()
    workdir = tmp_path_factory.mktemp(f"local-{backend}")
    call_log = workdir / "calls.jsonl"
    config = bot_config(llm, workdir, call_log, backend)
    config["llm"].update(state="local", vision=True, reasoning="summary")
    config["mcp"]["servers"] = {"auto": config["mcp"]["servers"]["auto"]}
    async with bot_running(discord, config, workdir) as bot:
        yield World(discord=discord, llm=llm, bot=bot, call_log=call_log, backend=backend)


# -- statuses and quota -----------------------------------------------------------------------
async def test_529_and_520_are_retried_and_quota_is_not(world: World) -> None:
    chat = Chat(world.discord, "statuses")
    key = f"k-529-{world.backend}"
    world.llm.script(key, Fault(529, message="Overloaded"), Fault(520), Text("made it"))
    asked = await chat.say(f"{key} hello")
    assert await chat.answer_text(int(asked["id"]), "made it") == "made it"
    assert len(world.llm.requests_for(key)) == 3
    quota = f"k-quota-{world.backend}"
    message = "You exceeded your current quota, please check your plan and billing details."
    world.llm.script(quota, Fault(429, message=message, error=QUOTA), Text("never shown"))
    asked = await chat.say(f"{quota} hello")
    text = await chat.answer_text(int(asked["id"]), "⚠️")
    assert "quota" in text and "operator" in text and "minute" not in text
    assert len(world.llm.requests_for(quota)) == 1


# -- empty answers ------------------------------------------------------------------------------
async def test_empty_streams_are_retried(world: World) -> None:
    chat = Chat(world.discord, "empty-retry")
    key = f"k-empty-retry-{world.backend}"
    world.llm.script(key, Silent(), [], Text("here it is"))
    asked = await chat.say(f"{key} hello")
    assert await chat.answer_text(int(asked["id"]), "here it is") == "here it is"
    assert len(world.llm.requests_for(key)) == 3


async def test_an_empty_answer_is_never_stored(world: World) -> None:
    chat = Chat(world.discord, "empty")
    key = f"k-empty-{world.backend}"
    world.llm.script(key, [], [], [], Text("second answer"))
    asked = await chat.say(f"{key} say nothing")
    text = await chat.answer_text(int(asked["id"]), "⚠️")
    assert "empty answer" in text
    spent = (
        db(world)
        .execute("SELECT SUM(input_tokens) AS used FROM usage WHERE user_id = ?", (chat.user,))
        .fetchone()
    )
    assert spent["used"] > 0  # three empty attempts still count toward the daily budget
    again = await chat.say(f"{key} now say something")
    assert await chat.answer_text(int(again["id"]), "second answer") == "second answer"
    for request in world.llm.requests_for(key):
        assert assistant_nulls(request.body) == []


# -- tools that ran before a failure ------------------------------------------------------------
async def test_tools_that_ran_are_kept_when_a_later_round_fails(world: World) -> None:
    chat = Chat(world.discord, "tool-fail")
    key = f"k-toolfail-{world.backend}"
    world.llm.script(
        key,
        [ToolCall("auto__record", {"note": f"once-{key}"}, f"call_{key.replace('-', '_')}")],
        *[Fault(500)] * 4,
    )
    asked = await chat.say(f"{key} record a note")
    text = await chat.answer_text(int(asked["id"]), "⚠️")
    assert "auto.record" in text.split("⚠️", 1)[1], text
    follow = await chat.say(f"{key} did it work?")
    await chat.answer_text(int(follow["id"]), "echo")
    body = world.llm.requests_for(key)[-1].body
    assert "did it work" in json.dumps(body)
    assert any("once-" in output for output in tool_outputs(body)) or any(
        "once-" in json.dumps(m) for m in body.get("messages", [])
    )
    if world.backend == "chat":
        calls = [m for m in body["messages"] if m.get("tool_calls")]
        assert calls and calls[0]["tool_calls"][0]["function"]["name"] == "auto__record"
    else:
        assert body.get("previous_response_id")
        assert [i["call_id"] for i in body["input"] if i.get("type") == "function_call_output"]
    assert len([c for c in read_calls(world.call_log) if f"once-{key}" in json.dumps(c)]) == 1


# -- streamed tool-call assembly ------------------------------------------------------------------
async def test_parallel_calls_with_repeated_index_both_run(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "repeated-index")
    key = "k-repeated-index"
    world.llm.script(
        key,
        [
            ToolCall("auto__echo", {"text": "left-7"}, "call_left", index=0),
            ToolCall("auto__echo", {"text": "right-9"}, "call_right", index=0, bare_args=True),
        ],
        Text("Both echoed."),
    )
    asked = await chat.say(f"{key} echo twice")
    await chat.answer_text(int(asked["id"]), "Both echoed.")
    assert sorted(tool_outputs(world.llm.requests_for(key)[1].body)) == ["left-7", "right-9"]


# -- finish reasons -------------------------------------------------------------------------------
async def test_a_cut_short_answer_says_so_on_chat(chat_world: World) -> None:
    from tests.fakes.llm import Finish

    world = chat_world
    chat = Chat(world.discord, "length")
    world.llm.script("k-length", [Text("The first half of"), Finish("length")])
    asked = await chat.say("k-length tell me everything")
    text = await chat.answer_text(int(asked["id"]), "length limit")
    assert text.startswith("The first half of")


# -- reasoning ------------------------------------------------------------------------------------
async def test_reasoning_shows_a_status_then_only_the_answer(world: World) -> None:
    chat = Chat(world.discord, "reasoning")
    key = f"k-reason-{world.backend}"
    thoughts = "Considering the question carefully. " * 6
    answer = "The answer is 42."
    world.llm.script(key, [Reasoning(thoughts, chunk_size=12, delay_s=0.17), Text(answer)])
    asked = await chat.say(f"{key} what is the answer?")
    parts = await chat.answer(int(asked["id"]), lambda t: answer in t)
    assert [p["content"] for p in parts] == [answer]
    # ~3 s of reasoning came first. The bot posted its reply before it had any answer text:
    # what it posted first is the status line (with text in hand it would have posted that).
    posts = world.discord.requests_to("POST", f"/channels/{chat.channel}/messages")
    first = posts[0].json["content"]
    assert "thinking" in first and answer not in first and "Considering" not in first
    rows = (
        db(world)
        .execute("SELECT reasoning_tokens FROM usage WHERE user_id = ?", (chat.user,))
        .fetchall()
    )
    assert rows and rows[-1]["reasoning_tokens"] == len(thoughts) // 4


async def test_summary_mode_keeps_the_summary_above_the_answer(local_world: World) -> None:
    world = local_world
    chat = Chat(world.discord, "summary")
    key = f"k-summary-{world.backend}"
    world.llm.script(key, [Reasoning("First I check.\nThen I answer."), Text("Answer.")])
    asked = await chat.say(f"{key} think aloud")
    parts = await chat.answer(int(asked["id"]), lambda t: "Answer." in t)
    assert [p["content"] for p in parts] == ["-# First I check.\n-# Then I answer.\nAnswer."]
    # The summary is shown, never stored as the answer.
    assert "First I check" not in json.dumps(world.llm.requests_for(key)[-1].body)
    again = await chat.say(f"{key} and again")
    await chat.answer_text(int(again["id"]), "echo")
    assert "First I check" not in json.dumps(world.llm.requests_for(key)[-1].body)


async def test_thinking_blocks_go_back_with_tool_results(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "thinking")
    key = "k-thinking"
    world.llm.script(
        key,
        [Reasoning("I should echo.", signature="sig-1"), ToolCall("auto__echo", {"text": "hi"})],
        Text("Done."),
    )
    asked = await chat.say(f"{key} echo hi")
    assert await chat.answer_text(int(asked["id"]), "Done.") == "-# ✅ `auto.echo` done\nDone."
    second = world.llm.requests_for(key)[1].body
    assistant = next(m for m in second["messages"] if m.get("tool_calls"))
    assert assistant["thinking_blocks"] == [
        {"type": "thinking", "thinking": "I should echo.", "signature": "sig-1"}
    ]


# -- usage ---------------------------------------------------------------------------------------
async def test_usage_rows_hold_cached_and_reasoning_tokens(world: World) -> None:
    chat = Chat(world.discord, "usage")
    key = f"k-usage-{world.backend}"
    world.llm.cached_tokens(key, 7)
    # The empty first answer is retried; it still cost tokens, so it is counted too.
    world.llm.script(key, [], [Reasoning("x" * 40), Text("counted")])
    asked = await chat.say(f"{key} count me " + "y" * 80)
    await chat.answer_text(int(asked["id"]), "counted")
    rows = (
        db(world)
        .execute(
            "SELECT input_tokens, cached_input_tokens, output_tokens, reasoning_tokens FROM usage "
            "WHERE user_id = ?",
            (chat.user,),
        )
        .fetchall()
    )
    assert len(rows) == 1
    sent = [r.body.get("messages") or r.body.get("input") for r in world.llm.requests_for(key)]
    assert len(sent) == 2
    assert dict(rows[0]) == {
        "input_tokens": sum(len(json.dumps(s)) // 4 for s in sent),
        "cached_input_tokens": 7 * 2,
        "output_tokens": 1 + len("x" * 40 + "counted") // 4,
        "reasoning_tokens": 10,
    }


# -- context overflow ----------------------------------------------------------------------------
@pytest.mark.parametrize("style", ["openai", "litellm"])
async def test_an_overflowing_history_is_trimmed_and_retried(
    local_world: World, style: str
) -> None:
    world = local_world
    chat = Chat(world.discord, f"overflow-{style}")
    key = f"k-over-{style}-{world.backend}"
    long = "lorem ipsum " * 250  # ~3000 characters, ~750 tokens each
    world.llm.script(key, Text(long), Text(long), Text(long), Text("still here"))
    for n in range(3):
        asked = await chat.say(f"{key} tell me more {n}")
        await chat.answer_text(int(asked["id"]), "lorem")
    world.llm.context_window(key, 1500, style=style)
    asked = await chat.say(f"{key} and now?")
    text = await chat.answer_text(int(asked["id"]), "still here")
    notices = [line for line in text.splitlines() if line.startswith("-# ")]
    assert len(notices) == 1 and "earlier" in notices[0], text
    assert text.endswith("still here")
    requests = world.llm.requests_for(key)
    failed, succeeded = requests[-2].body, requests[-1].body
    assert len(json.dumps(succeeded)) < len(json.dumps(failed))
    assert "and now?" in json.dumps(succeeded)
    # The repaired history was stored: the next turn goes through at once.
    again = await chat.say(f"{key} once more")
    await chat.answer_text(int(again["id"]), "echo")
    assert len(world.llm.requests_for(key)) == len(requests) + 1


async def test_server_state_sends_truncation_auto(responses_world: World) -> None:
    world = responses_world
    chat = Chat(world.discord, "truncation")
    key = "k-truncation"
    long = "lorem ipsum " * 250
    world.llm.script(key, Text(long), Text(long), Text("fits"))
    for n in range(2):
        asked = await chat.say(f"{key} more {n}")
        await chat.answer_text(int(asked["id"]), "lorem")
    world.llm.context_window(key, 1000)
    asked = await chat.say(f"{key} and now?")
    assert await chat.answer_text(int(asked["id"]), "fits") == "fits"
    assert {r.body.get("truncation") for r in world.llm.requests_for(key)} == {"auto"}


# -- images --------------------------------------------------------------------------------------
async def test_an_image_turn_survives_its_url_going_dead(local_world: World) -> None:
    world = local_world
    chat = Chat(world.discord, "image")
    key = f"k-image-{world.backend}"
    world.llm.script(key, Text("A tiny picture."), Text("Still fine."))
    asked = await chat.say(
        f"{key} what is this?",
        attachments=[{"filename": "pic.png", "content": PNG, "content_type": "image/png"}],
    )
    await chat.answer_text(int(asked["id"]), "A tiny picture.")
    first = json.dumps(world.llm.requests_for(key)[0].body)
    assert "data:image/png;base64," in first and "/attachments/" not in first
    world.discord.world.blobs.clear()  # the CDN URL expires (or the message is deleted)
    again = await chat.say(f"{key} and now?")
    assert await chat.answer_text(int(again["id"]), "Still fine.") == "Still fine."
    stored = db(world).execute("SELECT history FROM conversations").fetchall()
    assert stored and not [row for row in stored if "/attachments/" in row["history"]]
    assert "image" in json.dumps(world.llm.requests_for(key)[1].body)


async def test_an_image_over_8_mib_is_not_sent_and_one_at_the_cap_is(local_world: World) -> None:
    world = local_world
    chat = Chat(world.discord, "image-cap")
    key = f"k-image-cap-{world.backend}"
    world.llm.script(key, Text("One picture."))
    cap = 8 * 2**20  # README: images are fetched "up to 8 MB each"
    at_cap = PNG[:8] + b"\x01" * (cap - 8)
    over_cap = PNG[:8] + b"\x02" * (cap - 7)
    asked = await chat.say(
        f"{key} what are these?",
        attachments=[
            {"filename": "big.png", "content": over_cap, "content_type": "image/png"},
            {"filename": "fits.png", "content": at_cap, "content_type": "image/png"},
        ],
    )
    await chat.answer_text(int(asked["id"]), "One picture.")
    sent = json.dumps(world.llm.requests_for(key)[0].body)
    assert sent.count("data:image/png;base64,") == 1
    assert "data:image/png;base64," + base64.b64encode(at_cap[:48]).decode() in sent
    assert base64.b64encode(over_cap[:48]).decode() not in sent
    assert "[1 attached image(s) could not be loaded]" in sent  # the model is told, not fooled
