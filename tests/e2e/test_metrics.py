"""`metrics.port`: after a turn with a tool, /metrics shows the turn, its tokens, its Discord
writes and the tool call, under the contract's names and with no user, channel or guild label."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import bot_config
from tests.e2e.harness import BotProcess, Chat, running
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text, ToolCall

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_after_a_turn_with_a_tool(llm: ScriptedLLM, tmp_path: Path) -> None:
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", "chat")
    config["metrics"] = {"port": 0, "host": "127.0.0.1"}
    bot = BotProcess(discord, config, tmp_path)
    try:
        async with running(bot):
            found = re.search(r"metrics at (http://127\.0\.0\.1:\d+/metrics)", bot.log())
            assert found, bot.log()[-2000:]
            url = found.group(1)
            before = await scrape(url)
            assert value(before, "mcpcord_turns_total", result="completed") == 0
            key = "k-metrics-tool"
            llm.script(
                key,
                [ToolCall("time__get_current_time", {"timezone": "UTC"})],
                Text("It is metrics time."),
            )
            chat = Chat(discord, key)
            asked = await chat.say(f"{key} what time is it?")
            await chat.answer_text(int(asked["id"]), "It is metrics time.")
            samples = await scrape(url)
            # The turn is counted as it ends, a moment after its last edit: look again if needed.
            for _ in range(50):
                if value(samples, "mcpcord_turns_total", result="completed") == 1:
                    break
                samples = await scrape(url)
    finally:
        await discord.stop()
    model = "openai/test-model"
    assert value(samples, "mcpcord_turns_total", result="completed") == 1
    assert value(samples, "mcpcord_turns_total", result="failed") == 0
    assert value(samples, "mcpcord_turn_seconds_count") == 1
    assert value(samples, "mcpcord_first_text_seconds_count") == 1
    # Both model requests of the turn (the tool call, then the answer) count their tokens.
    used = [r.body for r in llm.requests_for(key)]
    assert len(used) == 2
    assert value(samples, "mcpcord_llm_tokens_total", model=model, kind="input") > 0
    assert value(samples, "mcpcord_llm_tokens_total", model=model, kind="output") > 0
    assert value(samples, "mcpcord_llm_requests_total", model=model, outcome="ok") == 1
    creates = value(samples, "mcpcord_discord_requests_total", kind="create", status="200")
    assert creates >= 1
    assert value(samples, "mcpcord_discord_429_total", scope="global") == 0
    assert value(samples, "mcpcord_write_wait_seconds_count") >= 1
    assert value(samples, "mcpcord_write_queue_depth") == 0
    assert value(samples, "mcpcord_approvals_pending") == 0
    call = {"server": "time", "tool": "get_current_time"}
    assert value(samples, "mcpcord_mcp_calls_total", **call, outcome="done") == 1
    assert value(samples, "mcpcord_mcp_call_seconds_count", **call) == 1
    assert ("mcpcord_event_loop_lag_seconds", frozenset()) in samples
    assert value(samples, "process_resident_memory_bytes") > 0
    labels = {name for (metric, pairs) in samples for name, _ in pairs if metric.startswith("mcp")}
    assert not labels & {"user", "user_id", "channel", "channel_id", "guild", "guild_id"}
