"""End to end: the opt-in settings of a reply and a prompt: the usage footer, approver role pings,
and status reactions turned off, on a bot of their own (the shared worlds keep the defaults)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import bot_config, bot_running
from tests.e2e.harness import BotProcess, Chat
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text, ToolCall, UsageReport
from tests.fakes.mcp_server import read_calls, stdio_params


@dataclass
class OptIns:
    discord: FakeDiscord
    llm: ScriptedLLM
    bot: BotProcess
    backend: str
    call_log: Path
    approver_roles: list[int]


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["chat", "responses"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM
) -> AsyncIterator[OptIns]:
    discord = FakeDiscord()
    await discord.start()
    roles = [discord.add_role("approvers-a"), discord.add_role("approvers-b")]
    unrelated = discord.add_role("bystanders")
    workdir = tmp_path_factory.mktemp(f"opt-ins-{request.param}")
    call_log = workdir / "calls.jsonl"
    config = bot_config(llm, workdir, call_log, request.param)
    config["discord"] = {
        "edit_interval_s": 1.0,
        "usage_footer": True,
        "reactions": False,
        "approvals": {"ping_roles": True},
    }
    config["mcp"]["servers"]["strict"] = {
        **stdio_params(call_log, name="strict"),
        "approvers": {"roles": roles},
    }
    config["mcp"]["servers"]["other"] = {
        **stdio_params(call_log, name="other"),
        "approvers": {"roles": [unrelated]},
    }
    async with bot_running(discord, config, workdir) as bot:
        yield OptIns(discord, llm, bot, request.param, call_log, roles)


FOOTER = re.compile(r"-# ([\d,]+) in · ([\d,]+) out(?: · \$[\d.,]+)? · \d+\.\d s")


async def footed_answer(chat: Chat, message_id: int) -> str:
    parts = await chat.answer(message_id, lambda t: FOOTER.search(t) is not None)
    return "\n".join(p["content"] for p in parts)


async def test_the_usage_footer_ends_the_answer_with_the_reported_tokens(world: OptIns) -> None:
    chat = Chat(world.discord, "footer")
    key = f"k-footer-{world.backend}"
    world.llm.script(key, Text("Counted and shown."))
    world.llm.report_usage(key, UsageReport(1234, 56))
    asked = await chat.say(f"{key} count")
    text = await footed_answer(chat, int(asked["id"]))
    assert "Counted and shown." in text
    last = text.strip().splitlines()[-1]
    match = FOOTER.fullmatch(last)
    assert match is not None, text
    assert match.groups() == ("1,234", "56")
    assert "$" not in last  # test-model has no known price: no cost is made up


async def test_without_reactions_a_turn_sends_none(world: OptIns) -> None:
    chat = Chat(world.discord, "no-reactions")
    key = f"k-no-react-{world.backend}"
    world.llm.script(key, [ToolCall("auto__slow", {"seconds": 1})], Text("No faces."))
    asked = await chat.say(f"{key} go")
    await chat.answer_text(int(asked["id"]), "No faces.")
    assert world.discord.requests_to("PUT", "/reactions/") == []
    assert world.discord.requests_to("DELETE", "/reactions/") == []


async def test_the_prompt_pings_exactly_the_approver_roles(world: OptIns) -> None:
    chat = Chat(world.discord, "role-pings")
    key = f"k-role-pings-{world.backend}"
    note = f"role-pings-{world.backend}"
    world.llm.script(key, [ToolCall("strict__record", {"note": note})], Text("Pinged."))
    asked = await chat.say(f"{key} record")
    prompt = await chat.prompt()
    pings = world.discord.pings(int(prompt["id"]))
    assert sorted(pings["roles"]) == sorted(world.approver_roles)
    assert sorted(int(r) for r in pings["allowed_mentions"]["roles"]) == sorted(
        world.approver_roles
    )
    assert pings["users"] == [chat.user] and not pings["everyone"]
    approve = next(
        b["custom_id"]
        for row in prompt["components"]
        for b in row["components"]
        if b["custom_id"].endswith(":approve")
    )
    await (await world.discord.click_button(int(prompt["id"]), approve, chat.user)).wait_response()
    text = await footed_answer(chat, int(asked["id"]))
    assert "Pinged." in text and FOOTER.fullmatch(text.strip().splitlines()[-1]), text
    assert len([c for c in read_calls(world.call_log) if note in str(c)]) == 1
