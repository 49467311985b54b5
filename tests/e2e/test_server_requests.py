"""Who may reach the model and the MCP servers through slash commands, and what a server may
ask of the bot while a call runs (elicitation, sampling): asked of the right person, bounded,
and not charged to the tool's time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import bot_config, bot_running
from tests.e2e import rules
from tests.e2e.harness import BotProcess, Chat, buttons
from tests.e2e.test_tools import click, tool_outputs
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord_autocomplete import autocomplete
from tests.fakes.llm import ScriptedLLM, Text, ToolCall, UsageReport
from tests.fakes.mcp_server import HTTPServerProcess, read_calls

EPHEMERAL = 64
DAILY_TOKENS = 50_000
PERSON_WAITS_S = 3  # longer than the slow bot's tool_timeout_s


@dataclass
class Asking:
    discord: FakeDiscord
    llm: ScriptedLLM
    bot: BotProcess
    call_log: Path
    blocked: int  # a user on discord.permissions.users.block

    def calls(self, tool: str, marker: str) -> list[dict[str, Any]]:
        return [
            c for c in read_calls(self.call_log) if c["tool"] == tool and marker in json.dumps(c)
        ]


async def _asking_bot(
    tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM, name: str, **mcp: Any
) -> AsyncIterator[Asking]:
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    blocked = discord.add_user(f"{name}-blocked")
    workdir = tmp_path_factory.mktemp(name)
    call_log = workdir / "calls.jsonl"
    config = bot_config(llm, workdir, call_log, "chat")
    # The 2025 protocol, where a server asks with requests of its own that name no call (as
    # server-everything and most servers in the wild do), not the 2026 InputRequiredResult.
    server = HTTPServerProcess(call_log, legacy=True, asking=True)
    await server.start()
    config["mcp"] = {
        **config["mcp"],
        **mcp,
        "servers": {"asker": {"url": server.url, "require_approval": "never"}},
    }
    config["discord"]["permissions"] = {"users": {"block": [blocked]}}
    config["limits"]["user_daily_tokens"] = DAILY_TOKENS
    try:
        async with bot_running(discord, config, workdir) as bot:
            yield Asking(discord, llm, bot, call_log, blocked)
    finally:
        await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def asking(
    tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM
) -> AsyncIterator[Asking]:
    """Sampling allowed without asking; DMs off (the default); one blocked user."""
    async for world in _asking_bot(tmp_path_factory, llm, "asking", sampling="allow"):
        yield world


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def slow_people(
    tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM
) -> AsyncIterator[Asking]:
    """Sampling needs approval, and tools time out after 2 s: people take longer than that."""
    async for world in _asking_bot(
        tmp_path_factory,
        llm,
        "slow-people",
        sampling="ask",
        tool_timeout_s=2,
        approval_timeout_s=30,
    ):
        yield world


@pytest.fixture(autouse=True)
def asking_rules(request: pytest.FixtureRequest) -> Iterator[None]:
    """The shared Discord rules (tests/e2e/rules.py) hold for these bots too."""
    names = [n for n in ("asking", "slow_people") if n in request.fixturenames]
    if not names:
        yield
        return
    discord = request.getfixturevalue(names[0]).discord
    before = rules.snapshot(discord)
    yield
    found = rules.violations(discord, before, set())
    assert not found, "Discord rules broken:\n" + "\n".join(found)


def texts(discord: FakeDiscord, channel: int) -> list[str]:
    return [m["content"] for m in discord.messages(channel, include_ephemeral=True)]


# ---- slash commands and autocomplete follow the access rules of a mention -------------------


async def test_prompt_in_a_dm_is_refused_when_dms_are_off(asking: Asking) -> None:
    user = asking.discord.add_user("dm-prompter")
    dm = asking.discord.add_dm_channel(user)
    marker = "dmprompt-marker"
    interaction = await asking.discord.slash_command(
        "prompt", user, dm, {"name": "asker/greet", "arguments": f"name={marker}"}
    )
    refusal = await interaction.wait_response()
    assert refusal["type"] == 4 and refusal["data"]["flags"] & EPHEMERAL
    assert refusal["data"]["content"] == "You can't use my commands here."
    await asyncio.sleep(1)  # a wrongly started turn would have asked the model by now
    assert asking.llm.requests_mentioning(marker) == []
    assert not any(marker in t for t in texts(asking.discord, dm))


@pytest.mark.parametrize("where", ["dm", "blocked"])
async def test_autocomplete_answers_outsiders_nothing_and_asks_no_server(
    asking: Asking, where: str
) -> None:
    chat = Chat(asking.discord, f"complete-{where}")
    user, channel = chat.user, chat.channel
    if where == "dm":
        channel = asking.discord.add_dm_channel(user)
    else:
        user = asking.blocked
    marker = f"typed-{where}"
    names = await autocomplete(asking.discord, "prompt", user, channel, {"name": "gre"}, "name")
    typed = {"name": "asker/greet", "arguments": f"name={marker}"}
    values = await autocomplete(asking.discord, "prompt", user, channel, typed, "arguments")
    assert names == [] and values == []
    assert asking.calls("complete", marker) == []
    # The same questions from a member in a channel reach the server: the refusal is the rule.
    mine = f"typed-ok-{where}"
    typed = {"name": "asker/greet", "arguments": f"name={mine}"}
    names = await autocomplete(
        asking.discord, "prompt", chat.user, chat.channel, {"name": "gre"}, "name"
    )
    values = await autocomplete(
        asking.discord, "prompt", chat.user, chat.channel, typed, "arguments"
    )
    assert [c["value"] for c in names] == ["asker/greet"]
    assert f"name={mine}-completed" in [c["value"] for c in values]
    assert len(asking.calls("complete", mine)) == 1


# ---- a server's questions go to the person whose call asked, or to nobody --------------------


async def _call_started(world: Asking, tool: str, marker: str) -> None:
    await world.discord.wait_for(lambda: world.calls(tool, marker) or None, timeout=30)


async def answer_question(world: Asking, chat: Chat, question: str, answer: str) -> dict:
    """Wait for the question in `chat`, fill in its one-field form; returns the question."""

    def shown() -> dict[str, Any] | None:
        found = [m for m in chat.bot_messages() if question in m["content"]]
        return found[-1] if found else None

    message = await world.discord.wait_for(shown, timeout=30)
    custom_id = next(b["custom_id"] for b in buttons(message) if b["custom_id"].endswith(":open"))
    opened = await world.discord.click_button(int(message["id"]), custom_id, chat.user)
    await opened.wait_response()
    submitted = await world.discord.submit_modal(opened, {"answer": answer})
    await submitted.wait_response()
    return message


async def test_a_question_goes_to_its_own_call_never_to_another_users(asking: Asking) -> None:
    """Two users' calls run on one server (HTTP); the server asks on the older call's stream:
    its user is asked, the other (whose call is the newest) never sees it nor is pinged."""
    world = asking
    alice, bob = Chat(world.discord, "ask-alice"), Chat(world.discord, "ask-bob")
    question = "Transfer 500 from account X-alice?"
    key_a, key_b = "k-askrace-a", "k-askrace-b"
    # Alice's call asks once Bob's call runs; Bob's runs until Alice's question was answered.
    world.llm.script(
        key_a,
        [ToolCall("asker__ask", {"question": question, "after": '"tag": "bob-hold"'})],
        Text("Alice done."),
    )
    world.llm.script(
        key_b,
        [ToolCall("asker__hold", {"tag": "bob-hold", "until": f'"done": "{question}"'})],
        Text("Bob's call is done."),
    )
    asked_a = await alice.say(f"{key_a} move my money")
    await _call_started(world, "ask", question)
    asked_b = await bob.say(f"{key_b} hold on")
    await answer_question(world, alice, question, "yes")
    await alice.answer_text(int(asked_a["id"]), "Alice done.", timeout=40)
    await bob.answer_text(int(asked_b["id"]), "Bob's call is done.", timeout=40)
    assert not any(question in t for t in texts(world.discord, bob.channel))
    for message in bob.bot_messages():
        assert world.discord.pings(int(message["id"]))["users"] == []
    (output,) = tool_outputs(world.llm.requests_for(key_a)[1].body)
    assert output == "accept: yes"


# ---- sampling: only inside a call, a few times per call, within the daily allowance ---------


async def test_sampling_outside_any_call_is_refused_even_when_allowed(asking: Asking) -> None:
    world = asking
    chat = Chat(world.discord, "sample-later")
    key, prompt = "k-samplelater", "samplelater-prompt"
    world.llm.script(key, [ToolCall("asker__sample_later", {"prompt": prompt})], Text("Queued."))
    asked = await chat.say(f"{key} start a background job")
    await chat.answer_text(int(asked["id"]), "Queued.")
    (later,) = await world.discord.wait_for(
        lambda: world.calls("sampled_later", prompt) or None, timeout=30
    )
    assert later["arguments"]["result"].startswith("refused")
    assert world.llm.requests_mentioning(f"{prompt} #") == []


async def test_sampling_is_capped_per_call(asking: Asking) -> None:
    world = asking
    chat = Chat(world.discord, "sample-cap")
    key, prompt = "k-samplecap", "samplecap-prompt"
    world.llm.script(
        key, [ToolCall("asker__sample", {"prompt": prompt, "times": 5})], Text("Sampled.")
    )
    world.llm.script(prompt)  # known, so requests_for finds its requests
    asked = await chat.say(f"{key} sample a lot")
    await chat.answer_text(int(asked["id"]), "Sampled.")
    assert len(world.llm.requests_for(prompt)) == 3
    (output,) = tool_outputs(world.llm.requests_for(key)[1].body)
    lines = output.splitlines()
    assert [line.split(":")[0] for line in lines] == ["answered"] * 3 + ["refused"] * 2


async def test_sampling_stops_at_the_daily_token_allowance(asking: Asking) -> None:
    world = asking
    chat = Chat(world.discord, "sample-daily")
    key, prompt = "k-sampledaily", "sampledaily-prompt"
    world.llm.script(
        key, [ToolCall("asker__sample", {"prompt": prompt, "times": 3})], Text("Budget hit.")
    )
    world.llm.report_usage(prompt, UsageReport(input=100, output=DAILY_TOKENS))
    asked = await chat.say(f"{key} sample thrice")
    await chat.answer_text(int(asked["id"]), "Budget hit.")
    # The first one used the day's allowance.
    assert len(world.llm.requests_for(prompt)) == 1
    (output,) = tool_outputs(world.llm.requests_for(key)[1].body)
    assert [line.split(":")[0] for line in output.splitlines()] == [
        "answered",
        "refused",
        "refused",
    ]
    assert "allowance" in output


# ---- a person's time does not count against the tool; a call's end closes its questions ----


async def test_a_slow_answer_to_a_question_does_not_time_the_tool_out(
    slow_people: Asking,
) -> None:
    world = slow_people
    chat = Chat(world.discord, "slow-answer")
    key = "k-slowanswer"
    world.llm.script(
        key, [ToolCall("asker__ask", {"question": "Your favourite colour?"})], Text("Noted.")
    )
    asked = await chat.say(f"{key} ask me")

    def question() -> dict[str, Any] | None:
        found = [m for m in chat.bot_messages() if "Your favourite colour?" in m["content"]]
        return found[-1] if found else None

    shown = await world.discord.wait_for(question, timeout=30)
    await asyncio.sleep(PERSON_WAITS_S)  # the person thinks longer than tool_timeout_s
    custom_id = next(b["custom_id"] for b in buttons(shown) if b["custom_id"].endswith(":open"))
    opened = await world.discord.click_button(int(shown["id"]), custom_id, chat.user)
    await opened.wait_response()
    submitted = await world.discord.submit_modal(opened, {"answer": "teal"})
    await submitted.wait_response()
    text = await chat.answer_text(int(asked["id"]), "Noted.")
    assert "timed out" not in text
    (output,) = tool_outputs(world.llm.requests_for(key)[1].body)
    assert output == "accept: teal"


async def test_a_slow_sampling_approval_does_not_time_the_tool_out(slow_people: Asking) -> None:
    world = slow_people
    chat = Chat(world.discord, "slow-approval")
    key, prompt = "k-slowapproval", "slowapproval-prompt"
    world.llm.script(
        key, [ToolCall("asker__sample", {"prompt": prompt, "times": 1})], Text("Approved late.")
    )
    world.llm.script(prompt, Text("a late poem"))
    asked = await chat.say(f"{key} sample once")
    prompt_message = await chat.prompt(timeout=30)
    await asyncio.sleep(PERSON_WAITS_S)
    await click(world, prompt_message, "approve", chat.user)  # type: ignore[arg-type]
    await chat.answer_text(int(asked["id"]), "Approved late.")
    (output,) = tool_outputs(world.llm.requests_for(key)[1].body)
    assert output == "answered: a late poem"


async def test_a_sampling_approval_closes_when_its_call_ends(slow_people: Asking) -> None:
    world = slow_people
    chat = Chat(world.discord, "sample-left")
    key, prompt = "k-sampleleft", "sampleleft-prompt"
    world.llm.script(
        key, [ToolCall("asker__sample_and_leave", {"prompt": prompt})], Text("It left.")
    )
    asked = await chat.say(f"{key} sample and go")
    prompt_message = await chat.prompt(timeout=30)
    await chat.answer_text(int(asked["id"]), "It left.")

    def closed() -> dict[str, Any] | None:
        shown = world.discord.message(int(prompt_message["id"])) or {}
        return shown if all(b.get("disabled") for b in buttons(shown)) else None

    shown = await world.discord.wait_for(closed, timeout=15)
    assert "Approved by" not in shown["content"]
    assert world.llm.requests_mentioning(f"{prompt} #") == []
