"""Live reload: SIGHUP and `python -m bot reload` apply a changed config.yaml without reconnecting."""

from __future__ import annotations

import asyncio
import copy
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from tests.conftest import bot_config
from tests.e2e.harness import REPO_ROOT, BotProcess, Chat, buttons
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text, ToolCall
from tests.fakes.mcp_server import HTTPServerProcess, read_calls, stdio_params

RELOADED = "config reloaded:"
REFUSED = "reload refused"
# Python's own record of every module the bot imports, one `import time:` line each on stderr
# (which the harness sends into bot.log): litellm's import shows there without a hook in the bot.
IMPORT_TIMES = {"PYTHONPROFILEIMPORTTIME": "1"}


def imported(log: str, package: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if line.startswith("import time:") and line.rsplit("|", 1)[-1].strip() == package
    ]


@dataclass
class Reloadable:
    discord: FakeDiscord
    bot: BotProcess
    config: dict[str, Any]
    approver: int  # a listed approver of the "guard" server at start-up

    def write(self, config: dict[str, Any] | str) -> None:
        text = config if isinstance(config, str) else yaml.safe_dump(config)
        (self.bot.workdir / "config.yaml").write_text(text, encoding="utf-8")

    async def hup_and_wait(self, marker: str) -> str:
        """SIGHUP, then the log line of this reload (the n-th `marker` line)."""
        seen = self.bot.log().count(marker)
        assert self.bot.proc is not None
        self.bot.proc.send_signal(signal.SIGHUP)
        return await self.wait_line(marker, seen)

    async def restore(self) -> None:
        """Back to the fixture's configuration, for the next test."""
        self.write(self.config)
        await self.hup_and_wait(RELOADED)

    async def wait_line(self, marker: str, seen: int) -> str:
        await self.discord.wait_for(lambda: self.bot.log().count(marker) > seen, timeout=30)
        return [line for line in self.bot.log().splitlines() if marker in line][seen]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def reloadable(
    llm: ScriptedLLM, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Reloadable]:
    discord = FakeDiscord()
    await discord.start()
    workdir = tmp_path_factory.mktemp("reload")
    approver = discord.add_user("guard-approver")
    calls = workdir / "calls.jsonl"
    config = bot_config(llm, workdir, calls, "chat")  # every model `openai/...`
    config["llm"]["system_prompt"] = "You are Alpha."
    config["mcp"]["sampling"] = "allow"
    config["mcp"]["servers"] = {
        "auto": {**stdio_params(calls, name="auto"), "require_approval": "never"},
        "ro": {**stdio_params(calls, name="ro", annotated=True), "auto_approve_read_only": True},
        "guard": {**stdio_params(calls, name="guard"), "approvers": {"users": [approver]}},
    }
    # Asks the bot's model to write (MCP sampling); servers may do so only on the 2025 protocol.
    writer = HTTPServerProcess(calls, legacy=True, sampling=True)
    await writer.start()
    config["mcp"]["servers"]["writer"] = {"url": writer.url, "require_approval": "never"}
    bot = BotProcess(discord, config, workdir, env=IMPORT_TIMES)
    try:
        await bot.start()
        yield Reloadable(discord, bot, config, approver)
    finally:
        code = await bot.stop()
        await discord.stop()
        await writer.stop()
        assert code == 0, bot.log()[-3000:]


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def fixture_config_after_each_test(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Each test that reloads starts from the module's configuration, even when the test before
    it failed half-way (a changed config left behind would make every later line differ)."""
    yield
    if "reloadable" not in request.fixturenames:
        return
    reloadable: Reloadable = request.getfixturevalue("reloadable")
    written = (reloadable.bot.workdir / "config.yaml").read_text(encoding="utf-8")
    if written != yaml.safe_dump(reloadable.config):
        await reloadable.restore()


async def ask(chat: Chat, llm: ScriptedLLM, key: str) -> dict[str, Any]:
    llm.script(key)  # no replies: the fake echoes, and records the request under the key
    asked = await chat.say(f"{key} hello")
    await chat.answer(int(asked["id"]))
    return llm.requests_for(key)[-1].body


async def test_sighup_applies_a_new_prompt_and_refuses_a_broken_config(
    reloadable: Reloadable, llm: ScriptedLLM
) -> None:
    chat = Chat(reloadable.discord, "reload-prompt")
    elsewhere = Chat(reloadable.discord, "reload-other")
    first = await ask(chat, llm, "k-reload-1")
    assert first["messages"][0] == {"role": "system", "content": "You are Alpha."}
    identified = reloadable.discord.counters["identify"]

    changed = copy.deepcopy(reloadable.config)
    changed["discord"]["channels"] = {chat.channel: {"system_prompt": "This channel is Beta."}}
    reloadable.write(changed)
    line = await reloadable.hup_and_wait(RELOADED)
    assert line.endswith(f"config reloaded: changed discord.channels.{chat.channel}")
    second = await ask(chat, llm, "k-reload-2")
    assert second["messages"][0] == {"role": "system", "content": "This channel is Beta."}
    other = await ask(elsewhere, llm, "k-reload-other")
    assert other["messages"][0] == {"role": "system", "content": "You are Alpha."}

    broken = copy.deepcopy(changed)
    broken["discord"]["channels"][chat.channel]["system_prompt"] = "This channel is Gamma."
    broken["llm"]["backend"] = "magic"
    reloadable.write(broken)
    line = await reloadable.hup_and_wait(REFUSED)
    # The same words as a start-up refusal: `config error: <key>: <fix>`.
    assert "config error: llm.backend: 'magic' is not allowed; use one of" in line
    third = await ask(chat, llm, "k-reload-3")
    assert third["messages"][0] == {"role": "system", "content": "This channel is Beta."}

    # Neither reload touched the Discord connection.
    assert reloadable.discord.counters["identify"] == identified
    assert reloadable.discord.counters["resume"] == 0
    assert "Traceback" not in reloadable.bot.log()
    await reloadable.restore()


async def tools_answer(reloadable: Reloadable, chat: Chat) -> list[str]:
    """The texts of /tools' ephemeral answer: its first message and any follow-ups."""
    interaction = await reloadable.discord.slash_command("tools", chat.user, chat.channel)
    first = (await interaction.wait_response())["data"]["content"]
    await asyncio.sleep(0.5)  # follow-ups, if any, come right after the first answer
    return [first, *(m["content"] for m in interaction.followups)]


async def tools_line(reloadable: Reloadable, chat: Chat, server: str) -> str:
    lines = "\n".join(await tools_answer(reloadable, chat)).splitlines()
    return next(line for line in lines if line.startswith(f"**{server}**"))


async def test_tools_shows_every_server_however_many_tools_they_have(
    reloadable: Reloadable,
) -> None:
    """This world's four servers offer about 55 tools: more than one message holds."""
    parts = await tools_answer(reloadable, Chat(reloadable.discord, "reload-all-tools"))
    assert len(parts) > 1 and all(len(part) <= 2000 for part in parts)
    shown = [line.split("**")[1] for line in "\n".join(parts).splitlines() if line.startswith("**")]
    assert sorted(shown) == sorted(reloadable.config["mcp"]["servers"])


async def test_a_reload_decides_approvals_by_the_new_rules_without_importing_litellm(
    reloadable: Reloadable, llm: ScriptedLLM
) -> None:
    chat = Chat(reloadable.discord, "reload-approvers")
    before = await tools_line(reloadable, chat, "guard")
    assert f"decided by: the asker, <@{reloadable.approver}>, admins" in before
    assert imported(reloadable.bot.log(), "bot") != []  # the log does show imports

    tightened = copy.deepcopy(reloadable.config)
    tightened["llm"]["system_prompt"] = "You are Epsilon."
    guard = tightened["mcp"]["servers"]["guard"]
    guard["approvers"] = {"users": []}  # the approver is removed...
    guard["requester_can_approve"] = False  # ...and the asker may only deny
    reloadable.write(tightened)
    line = await reloadable.hup_and_wait(RELOADED)
    assert "llm.system_prompt" in line and "mcp.servers.guard" in line
    # Every model speaks OpenAI's protocol: a reload has no reason to load litellm.
    assert imported(reloadable.bot.log(), "litellm") == []

    after = await tools_line(reloadable, chat, "guard")
    assert "decided by: admins; the asker may only deny" in after
    assert f"<@{reloadable.approver}>" not in after
    assert "`ro__look` (runs unasked: read-only)" in await tools_line(reloadable, chat, "ro")

    key = "k-reload-approvers"
    llm.script(
        key,
        [ToolCall("ro__look", {"topic": key})],
        [ToolCall("guard__record", {"note": key})],
        Text("Not recorded."),
    )
    asked = await chat.say(f"{key} look, then record")
    prompt = await chat.prompt()
    assert "`record`" in prompt["content"]  # the read-only look ran unasked, as before the reload
    approve = next(b["custom_id"] for b in buttons(prompt) if b["custom_id"].endswith(":approve"))
    for user in (chat.user, reloadable.approver):
        click = await reloadable.discord.click_button(int(prompt["id"]), approve, user)
        refused = await click.wait_response()
        assert refused["type"] == 4 and refused["data"]["flags"] & 64, user
        assert "can't decide" in refused["data"]["content"]
    deny = next(b["custom_id"] for b in buttons(prompt) if b["custom_id"].endswith(":deny"))
    await (
        await reloadable.discord.click_button(int(prompt["id"]), deny, chat.user)
    ).wait_response()
    await chat.answer_text(int(asked["id"]), "Not recorded.")

    first = llm.requests_for(key)[0].body
    assert first["messages"][0] == {"role": "system", "content": "You are Epsilon."}
    calls = [c for c in read_calls(reloadable.bot.workdir / "calls.jsonl") if key in str(c)]
    assert [c["tool"] for c in calls] == ["look"]  # looked unasked, never recorded
    assert len([m for m in chat.bot_messages() if "Approval needed" in m["content"]]) == 1
    assert imported(reloadable.bot.log(), "litellm") == []
    await reloadable.restore()


async def test_sampling_after_a_reload_uses_the_new_model(
    reloadable: Reloadable, llm: ScriptedLLM
) -> None:
    chat = Chat(reloadable.discord, "reload-sampling")
    switched = copy.deepcopy(reloadable.config)
    switched["llm"]["model"] = "openai/test-model-2"
    reloadable.write(switched)
    line = await reloadable.hup_and_wait(RELOADED)
    assert line.endswith("config reloaded: changed llm.model")
    key = "k-reload-sampling"
    llm.script(
        key,
        [ToolCall("writer__sample", {"topic": f"{key} a haiku"})],
        Text("Quiet reload"),  # the sampling request's answer
        Text("Sampled."),
    )
    asked = await chat.say(f"{key} sample")
    await chat.answer_text(int(asked["id"]), "Sampled.")
    turn, sampling, _ = llm.requests_for(key)
    assert "tools" not in sampling.body  # the server's request, answered without tools
    assert turn.body["model"] == sampling.body["model"] == "test-model-2"
    await reloadable.restore()


def reload_command(bot: BotProcess) -> subprocess.CompletedProcess[str]:
    return bot.cli("reload")


async def test_reload_command_connects_an_added_mcp_server(
    reloadable: Reloadable, llm: ScriptedLLM
) -> None:
    chat = Chat(reloadable.discord, "reload-mcp")
    before = await ask(chat, llm, "k-reload-mcp-1")
    names = {tool["function"]["name"] for tool in before.get("tools", [])}
    assert "auto__echo" in names and not any(n.startswith("extra__") for n in names)

    added = copy.deepcopy(reloadable.config)
    added["mcp"]["servers"]["extra"] = {
        **stdio_params(name="extra"),
        "require_approval": "never",
    }
    del added["mcp"]["servers"]["auto"]
    reloadable.write(added)
    seen = reloadable.bot.log().count(RELOADED)
    result = await asyncio.to_thread(reload_command, reloadable.bot)
    assert result.returncode == 0, result.stderr
    assert "sent SIGHUP" in result.stdout
    line = await reloadable.wait_line(RELOADED, seen)
    assert "mcp.servers.extra" in line and "mcp.servers.auto" in line

    after = await ask(chat, llm, "k-reload-mcp-2")
    names = {tool["function"]["name"] for tool in after.get("tools", [])}
    assert "extra__echo" in names
    assert not any(n.startswith("auto__") for n in names)  # the removed server is gone
    await reloadable.restore()


async def test_reload_applies_a_stricter_approval_rule(
    reloadable: Reloadable, llm: ScriptedLLM
) -> None:
    chat = Chat(reloadable.discord, "reload-approval")
    stricter = copy.deepcopy(reloadable.config)
    stricter["mcp"]["servers"]["auto"]["require_approval"] = "always"
    reloadable.write(stricter)
    line = await reloadable.hup_and_wait(RELOADED)
    assert "changed mcp.servers.auto" in line
    key = "k-reload-approval"
    llm.script(key, [ToolCall("auto__echo", {"text": "guarded"})], Text("Asked first."))
    asked = await chat.say(f"{key} echo")
    prompt = await chat.prompt()
    assert "echo" in prompt["content"]
    deny = next(b["custom_id"] for b in buttons(prompt) if b["custom_id"].endswith(":deny"))
    await (
        await reloadable.discord.click_button(int(prompt["id"]), deny, chat.user)
    ).wait_response()
    await chat.answer_text(int(asked["id"]), "Asked first.")
    await reloadable.restore()


async def test_reload_command_without_a_running_bot_says_so(tmp_path: Path) -> None:
    config = {"storage": {"path": str(tmp_path / "none.db")}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {"PATH": str(Path(sys.executable).parent), "BOT_CONFIG": str(tmp_path / "config.yaml")}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "reload"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no running bot" in result.stderr


async def test_a_running_turn_keeps_the_prompt_it_started_with(
    reloadable: Reloadable, llm: ScriptedLLM
) -> None:
    chat = Chat(reloadable.discord, "reload-running")
    key = "k-reload-running"
    llm.script(key, [ToolCall("auto__slow", {"seconds": 3})], Text("Slept."), Text("Next."))
    asked = await chat.say(f"{key} sleep")
    await llm.wait_for_requests(key, 1)  # the turn is running: its tool call sleeps now
    changed = copy.deepcopy(reloadable.config)
    changed["llm"]["system_prompt"] = "You are Delta."
    reloadable.write(changed)
    await reloadable.hup_and_wait(RELOADED)
    await chat.answer_text(int(asked["id"]), "Slept.")
    second = await chat.say(f"{key} again")
    await chat.answer_text(int(second["id"]), "Next.")
    prompts = [r.body["messages"][0]["content"] for r in llm.requests_for(key)]
    # Both rounds of the running turn: the old prompt; the turn after the reload: the new one.
    assert prompts == ["You are Alpha.", "You are Alpha.", "You are Delta."]
    await reloadable.restore()


async def test_a_removed_servers_tools_fail_for_a_turn_already_running(
    reloadable: Reloadable, llm: ScriptedLLM
) -> None:
    chat = Chat(reloadable.discord, "reload-removed")
    key = "k-reload-removed"
    llm.script(
        key,
        [ToolCall("guard__record", {"note": key})],  # asks first: the turn waits on the prompt
        [ToolCall("ro__look", {"topic": key})],  # after the reload removed `ro`
        Text("Could not look."),
    )
    asked = await chat.say(f"{key} record, then look")
    prompt = await chat.prompt()
    removed = copy.deepcopy(reloadable.config)
    del removed["mcp"]["servers"]["ro"]
    reloadable.write(removed)
    line = await reloadable.hup_and_wait(RELOADED)
    assert line.endswith("config reloaded: changed mcp.servers.ro")
    approve = next(b["custom_id"] for b in buttons(prompt) if b["custom_id"].endswith(":approve"))
    await (
        await reloadable.discord.click_button(int(prompt["id"]), approve, chat.user)
    ).wait_response()
    reply = await chat.answer_text(int(asked["id"]), "Could not look.")
    assert "`ro__look` failed" in reply
    calls = [c["tool"] for c in read_calls(reloadable.bot.workdir / "calls.jsonl") if key in str(c)]
    assert calls == ["record"]  # the removed server never ran its tool
    last = llm.requests_for(key)[2].body["messages"][-1]
    assert last["role"] == "tool" and "It was not run." in last["content"], last


async def test_a_reload_applies_access_lists_and_limits_and_names_restart_only_keys(
    reloadable: Reloadable, llm: ScriptedLLM
) -> None:
    chat = Chat(reloadable.discord, "reload-access")
    newcomer = reloadable.discord.add_user("reload-newcomer")
    await ask(chat, llm, "k-reload-access-before")  # the soon-blocked user is answered now

    changed = copy.deepcopy(reloadable.config)
    changed["discord"]["permissions"] = {"users": {"block": [chat.user]}}
    changed["limits"]["user_turns_per_minute"] = 1
    changed["mcp"]["tool_timeout_s"] = 33
    reloadable.write(changed)
    line = await reloadable.hup_and_wait(RELOADED)
    assert line.endswith(
        "config reloaded: changed discord.permissions.users.block, limits.user_turns_per_minute;"
        " needs a restart: mcp.tool_timeout_s"
    )

    key = "k-reload-access"
    llm.script(key)
    llm.script(f"{key}-blocked")
    blocked = await chat.say(f"{key}-blocked hello")
    first = await chat.say(f"{key} first", user=newcomer)
    await chat.answer_text(int(first["id"]), "echo")
    second = await chat.say(f"{key} second", user=newcomer)
    refused = await chat.answer_text(int(second["id"]))
    assert refused.startswith("You're asking faster than I'm allowed to answer.")
    assert len(llm.requests_for(key)) == 1
    assert chat.replies_to(int(blocked["id"])) == []
    assert llm.requests_for(f"{key}-blocked") == []
    await reloadable.restore()
