"""Shared test worlds: the fake Discord, the scripted LLM, real MCP servers and bot processes."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e import rules
from tests.e2e.harness import BotProcess, kill_leftover_bots
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM
from tests.fakes.mcp_server import HTTPServerProcess, stdio_params

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

E2E_DIR = Path(__file__).parent / "e2e"
DEFAULT_EDIT_INTERVAL_S = 1.0  # bot_config's discord.edit_interval_s


@dataclass
class World:
    """A running bot process and everything it talks to."""

    discord: FakeDiscord
    llm: ScriptedLLM
    bot: BotProcess
    call_log: Path
    backend: str


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def llm() -> AsyncIterator[ScriptedLLM]:
    server = ScriptedLLM()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def http_mcp(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[HTTPServerProcess]:
    log = tmp_path_factory.mktemp("http-mcp") / "calls.jsonl"
    server = HTTPServerProcess(log, require_header="X-Test-Token: secret-value")
    await server.start()
    yield server
    await server.stop()


def bot_config(
    llm: ScriptedLLM, workdir: Path, call_log: Path, backend: str, **overrides: Any
) -> dict[str, Any]:
    """A config like an operator's: a never-ask server, an always-ask one, mcp-server-time."""
    # "chat" names an OpenAI-compatible model (served through the openai SDK); "chat-litellm" a
    # provider only litellm speaks (hosted_vllm: OpenAI's wire format behind litellm's own
    # translation), so both paths of the chat backend meet the same tests.
    prefix = {"chat": "openai/", "chat-litellm": "hosted_vllm/"}.get(backend, "")
    backend = "chat" if backend == "chat-litellm" else backend
    auto = stdio_params(call_log, name="auto")
    gated = stdio_params(call_log, name="gated")
    # The models configured below; a world that configures others serves them too.
    llm.serve("test-model", "test-model-2")
    config: dict[str, Any] = {
        "llm": {
            "backend": backend,
            "model": f"{prefix}test-model",
            "models": [f"{prefix}test-model", f"{prefix}test-model-2"],
            "base_url": llm.base_url,
            "max_tool_rounds": 4,
            "request_timeout_s": 10,
            "state": "server",
        },
        "discord": {"edit_interval_s": 1.0},
        "limits": {"user_concurrent_turns": 5, "user_turns_per_minute": 100},
        "mcp": {
            # Long enough that no click races it on a slow machine; the timeout itself is tested
            # on a bot of its own (test_tools.py).
            "approval_timeout_s": 15,
            "tool_timeout_s": 10,
            "servers": {
                "auto": {**auto, "require_approval": "never"},
                "gated": {
                    **gated,
                    "require_approval": {"never": ["echo"]},
                },
                "time": {
                    "command": sys.executable,
                    "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
                    "require_approval": "never",
                },
            },
        },
        "storage": {"path": str(workdir / "bot.db")},
        "logging": {"level": "INFO"},
        "shutdown_grace_s": 5,
    }
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(config.get(section), dict):
            config[section] = {**config[section], **values}
        else:
            config[section] = values
    return config


async def start_world(
    tmp_path_factory: pytest.TempPathFactory,
    llm: ScriptedLLM,
    backend: str,
    extra_servers: dict[str, Any] | None = None,
) -> World:
    discord = FakeDiscord()  # Discord's limits and a network's latency, as in every e2e world
    await discord.start()
    workdir = tmp_path_factory.mktemp(f"bot-{backend}")
    call_log = workdir / "calls.jsonl"
    config = bot_config(llm, workdir, call_log, backend)
    config["mcp"]["servers"].update(extra_servers or {})
    bot = BotProcess(discord, config, workdir)
    try:
        await bot.start()  # a bot that never comes up is killed by start()
    except BaseException:
        await discord.stop()
        raise
    return World(discord=discord, llm=llm, bot=bot, call_log=call_log, backend=backend)


async def stop_world(world: World) -> None:
    await stop_bot(world.bot, world.discord)


async def stop_bot(bot: BotProcess, discord: FakeDiscord) -> None:
    """Stop the bot (it must exit 0), then its fake Discord."""
    try:
        code = await bot.stop()
        assert code == 0, f"bot exited with {code}:\n{bot.log()[-3000:]}"
    finally:
        await discord.stop()


@contextlib.asynccontextmanager
async def bot_running(
    discord: FakeDiscord,
    config: dict[str, Any],
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
) -> AsyncIterator[BotProcess]:
    """A module's own bot process on `discord` for the block; then as stop_bot."""
    bot = BotProcess(discord, config, workdir, env=env)
    try:
        await bot.start()  # a bot that never comes up is killed by start()
    except BaseException:
        await discord.stop()
        raise
    try:
        yield bot
    except BaseException as failure:
        try:
            await stop_bot(bot, discord)
        except Exception as stop_error:  # noqa: BLE001 - reported on the test's own error
            failure.add_note(f"stopping the bot failed too: {stop_error!r}")
        raise
    await stop_bot(bot, discord)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chat_world(
    tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM, http_mcp: HTTPServerProcess
) -> AsyncIterator[World]:
    web = {
        "url": http_mcp.url,
        "headers": {"X-Test-Token": "secret-value"},
        "require_approval": "never",
    }
    world = await start_world(tmp_path_factory, llm, "chat", {"web": web})
    yield world
    await stop_world(world)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def responses_world(
    tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM
) -> AsyncIterator[World]:
    docs = {
        "url": "http://127.0.0.1:9/docs-mcp",
        "server_side": True,
        "require_approval": "always",
    }
    world = await start_world(tmp_path_factory, llm, "responses", {"docs": docs})
    yield world
    await stop_world(world)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chat_litellm_world(
    tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM
) -> AsyncIterator[World]:
    world = await start_world(tmp_path_factory, llm, "chat-litellm")
    yield world
    await stop_world(world)


@pytest.fixture(params=["chat", "responses"])
def world(request: pytest.FixtureRequest) -> World:
    """Both backends, for tests whose Discord behaviour must not depend on the backend."""
    return request.getfixturevalue(f"{request.param}_world")


@pytest.fixture(autouse=True)
def discord_rules(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each e2e test: what must never happen in Discord (tests/e2e/rules.py), on every fake
    Discord the test used: the shared worlds, a module's own world and a test's own bots alike.
    A test or module that cannot keep them says why: `@pytest.mark.no_discord_rules("why")`."""
    if E2E_DIR not in Path(str(request.node.path)).parents:
        yield  # fake self-tests and unit tests break Discord's rules on purpose
        return
    before = {fake: rules.snapshot(fake) for fake in FakeDiscord.made}
    yield
    if request.node.get_closest_marker("no_discord_rules"):
        return
    marker = request.node.get_closest_marker("discord_errors")
    allowed = set(marker.args) if marker else set()
    intervals = {
        value.discord: value.bot.config.get("discord", {}).get("edit_interval_s", 1.0)
        for value in getattr(request.node, "funcargs", {}).values()
        if isinstance(getattr(value, "discord", None), FakeDiscord)
        and isinstance(getattr(value, "bot", None), BotProcess)
    }
    roles = {
        value.discord: rules.approver_roles(value.bot.config)
        for value in getattr(request.node, "funcargs", {}).values()
        if isinstance(getattr(value, "discord", None), FakeDiscord)
        and isinstance(getattr(value, "bot", None), BotProcess)
    }
    found: list[str] = []
    for fake in list(FakeDiscord.made):
        start = before.get(fake, rules.Snapshot(requests=0, unknown_routes=0, newest_message=0))
        interval = intervals.get(fake, DEFAULT_EDIT_INTERVAL_S)
        found += rules.violations(
            fake, start, allowed, edit_interval_s=interval, approver_roles=roles.get(fake)
        )
    assert not found, "Discord rules broken:\n" + "\n".join(found)


@pytest.fixture(scope="session", autouse=True)
def no_bot_outlives_the_session() -> Iterator[None]:
    yield
    kill_leftover_bots()
