"""Timeouts: a model request that goes quiet is retried, and every request from an MCP server
ends, answered or refused, within approval_timeout_s + request_timeout_s."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests.conftest import World, bot_config, bot_running
from tests.e2e import rules
from tests.e2e.harness import Chat
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Stall, Text, ToolCall
from tests.fakes.mcp_server import HTTPServerProcess, stdio_params

REQUEST_TIMEOUT_S = 2
APPROVAL_TIMEOUT_S = 1
MAX_RETRIES = 3


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["chat", "responses"])
async def impatient(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM
) -> AsyncIterator[World]:
    """A bot with short timeouts: its own process, because the shared worlds' tests must not
    time out on a slow machine. A server that asks the user (stdio) and one that samples (the
    2025 protocol over HTTP: the only one that lets a server send requests)."""
    backend = request.param
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    workdir = tmp_path_factory.mktemp(f"timeouts-{backend}")
    call_log = workdir / "calls.jsonl"
    writer = HTTPServerProcess(call_log, legacy=True, sampling=True)
    await writer.start()
    config = bot_config(llm, workdir, call_log, backend)
    config["llm"].update(request_timeout_s=REQUEST_TIMEOUT_S, max_retries=MAX_RETRIES)
    config["mcp"].update(approval_timeout_s=APPROVAL_TIMEOUT_S, sampling="allow")
    config["mcp"]["servers"] = {
        "asks": {**stdio_params(call_log, name="asks"), "require_approval": "never"},
        "writer": {"url": writer.url, "require_approval": "never"},
    }
    try:
        async with bot_running(discord, config, workdir) as bot:
            yield World(discord=discord, llm=llm, bot=bot, call_log=call_log, backend=backend)
    finally:
        await writer.stop()


@pytest.fixture(autouse=True)
def discord_rules_here(impatient: World) -> Iterator[None]:
    """The shared worlds' Discord rules (tests/e2e/rules.py) hold on this bot too."""
    before = rules.snapshot(impatient.discord)
    yield
    interval = impatient.bot.config["discord"]["edit_interval_s"]
    found = rules.violations(impatient.discord, before, set(), edit_interval_s=interval)
    assert not found, "Discord rules broken:\n" + "\n".join(found)


def tool_outputs(body: dict) -> list[str]:
    """What the model was told of its tool calls, in either API's shape."""
    items = body.get("messages") or body.get("input") or []
    return [
        str(i.get("content") if i.get("role") == "tool" else i.get("output"))
        for i in items
        if isinstance(i, dict)
        and (i.get("role") == "tool" or i.get("type") == "function_call_output")
    ]


async def test_a_model_request_that_goes_quiet_is_retried(impatient: World) -> None:
    world = impatient
    chat = Chat(world.discord, "quiet-model")
    key = f"k-quiet-{world.backend}"
    # Headers, then silence past request_timeout_s; the retry is answered at once.
    world.llm.script(key, Stall(REQUEST_TIMEOUT_S * 3), Text("Answered after a retry."))
    asked = await chat.say(f"{key} hello")
    parts = await chat.answer(int(asked["id"]))
    assert [p["content"] for p in parts] == ["Answered after a retry."]
    assert len(world.llm.requests_for(key)) == 2


async def test_a_servers_question_nobody_answers_ends_cancelled(impatient: World) -> None:
    world = impatient
    chat = Chat(world.discord, "unanswered-question")
    key = f"k-unanswered-{world.backend}"
    world.llm.script(
        key, [ToolCall("asks__confirm", {"question": "Deploy now?"})], Text("Nobody answered.")
    )
    asked = await chat.say(f"{key} deploy")
    await chat.answer_text(int(asked["id"]), "Nobody answered.", timeout=60)
    # After approval_timeout_s the question is cancelled, and the server's tool goes on with that.
    assert any(
        "confirmation: cancel" in o for o in tool_outputs(world.llm.requests_for(key)[1].body)
    )


async def test_a_sampling_request_whose_model_stays_quiet_ends_in_time(impatient: World) -> None:
    world = impatient
    chat = Chat(world.discord, "quiet-sampling")
    key, topic = f"k-sampling-turn-{world.backend}", f"k-sampling-model-{world.backend}"
    world.llm.script(
        key, [ToolCall("writer__sample", {"topic": f"{topic} a haiku"})], Text("Went on.")
    )
    # Every attempt at the sampling request goes quiet past request_timeout_s.
    world.llm.script(topic, *[Stall(REQUEST_TIMEOUT_S * 3)] * (1 + MAX_RETRIES))
    asked = await chat.say(f"{key} sample")
    await chat.answer_text(int(asked["id"]), "Went on.", timeout=60)
    outputs = tool_outputs(world.llm.requests_for(key)[1].body)
    # The server was refused at approval_timeout_s + request_timeout_s, and said so.
    limit = APPROVAL_TIMEOUT_S + REQUEST_TIMEOUT_S
    assert any(f"No answer within {limit:g} s" in o for o in outputs), outputs
    # Each attempt lasts request_timeout_s and the first backoff is over a third of a second:
    # within that limit a third attempt can never start, however slow the machine.
    assert len(world.llm.requests_for(topic)) <= 2
