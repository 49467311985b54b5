"""One structured log line per turn, in both log formats, and no secret anywhere in a turn's log."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import World, bot_config, bot_running
from tests.e2e.harness import Chat
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text, ToolCall, UsageReport
from tests.fakes.mcp_server import HTTPServerProcess

SECRETS = ("fake-bot-token", "sk-test", "secret-value")


def turn_lines(log: str, conversation: str) -> list[str]:
    return [line for line in log.splitlines() if f"conversation={conversation} " in line]


async def test_turn_line_holds_no_words_of_the_turn(chat_world: World, llm: ScriptedLLM) -> None:
    """Counts, names and outcomes only: never the question, the answer, tool arguments or
    results (they may hold anything, secrets included)."""
    chat = Chat(chat_world.discord, "turn-words")
    key = "k-turn-words"
    calls = [
        ToolCall("auto__echo", {"text": "argument-words-7f3a"}),  # its result: the same words
        ToolCall("auto__add", {"a": 123457, "b": 654322}),  # its result: 777779
    ]
    llm.script(key, calls, Text("answer-words-9c1e"))
    asked = await chat.say(f"{key} question-words-5b2d")
    await chat.answer_text(int(asked["id"]), "answer-words-9c1e")
    conversation = f"{chat_world.discord.guild_id}:{chat.channel}:{chat.user}"
    lines = await chat_world.discord.wait_for(
        lambda: turn_lines(chat_world.bot.log(), conversation), timeout=10
    )
    assert len(lines) == 1
    line = lines[0]
    assert "tools=auto.echo:done,auto.add:done" in line and "result=completed" in line
    tool_result = llm.requests_for(key)[1].body["messages"]
    assert any(m["role"] == "tool" and m["content"] == "777779" for m in tool_result)
    for words in (
        "question-words-5b2d",
        key,
        "argument-words-7f3a",
        "123457",
        "654322",
        "777779",
        "answer-words-9c1e",
    ):
        assert words not in line, line


async def test_text_log_has_one_line_per_turn(chat_world: World, llm: ScriptedLLM) -> None:
    chat = Chat(chat_world.discord, "turn-log")
    key = "k-turn-log"
    llm.script(key, [ToolCall("web__echo", {"text": "hi"})], Text("Echoed."))
    # Two requests (the tool round and the answer), each reporting its own counts: the line
    # holds their sums, whatever way the server counted.
    llm.report_usage(key, UsageReport(input=123, output=45, cached=0), UsageReport(200, 7))
    asked = await chat.say(f"{key} echo hi")
    await chat.answer_text(int(asked["id"]), "Echoed.")
    conversation = f"{chat_world.discord.guild_id}:{chat.channel}:{chat.user}"
    lines = await chat_world.discord.wait_for(
        lambda: turn_lines(chat_world.bot.log(), conversation), timeout=10
    )
    assert len(lines) == 1
    line = lines[0]
    for part in (
        "model=openai/test-model",
        "tools=web.echo:done",
        "result=completed",
        "cached_tokens=0",
        "duration_s=",
        "cost_usd=-",  # the test model has no price in litellm's list
    ):
        assert part in line, line
    tokens = dict(p.split("=", 1) for p in line.split(" turn ", 1)[1].split())
    assert (tokens["input_tokens"], tokens["output_tokens"]) == ("323", "52"), line


async def test_json_log_of_a_full_turn_holds_no_secret(
    llm: ScriptedLLM, http_mcp: HTTPServerProcess, tmp_path: Path
) -> None:
    discord = FakeDiscord()
    await discord.start()
    config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", "chat")
    config["logging"] = {"level": "DEBUG", "format": "json"}
    config["mcp"]["servers"]["web"] = {
        "url": http_mcp.url,
        "headers": {"X-Test-Token": "secret-value"},
        "require_approval": "never",
    }
    async with bot_running(discord, config, tmp_path) as bot:
        chat = Chat(discord, "json-log")
        key = "k-json-log"
        llm.script(
            key,
            [
                ToolCall("web__echo", {"text": "m-tool-argument"}),
                ToolCall("gated__fail", {"message": "m-tool-failure"}),
            ],
            Text("m-the-answer Done."),
        )
        asked = await chat.say(f"{key} m-the-question")
        prompt = await chat.prompt()
        approve = next(
            c["custom_id"]
            for row in prompt["components"]
            for c in row["components"]
            if c["custom_id"].endswith(":approve")
        )
        await (await discord.click_button(int(prompt["id"]), approve, chat.user)).wait_response()
        await chat.answer_text(int(asked["id"]), "Done.")
        conversation = f"{discord.guild_id}:{chat.channel}:{chat.user}"

        def turn() -> dict | None:
            for line in bot.log().splitlines():
                entry = json.loads(line) if line.startswith("{") else {}
                if entry.get("turn", {}).get("conversation") == conversation:
                    return entry["turn"]
            return None

        fields = await discord.wait_for(turn, timeout=10)
    assert fields["model"] == "openai/test-model"
    assert fields["tools"] == ["web.echo:done", "gated.fail:failed"]
    assert fields["result"] == "completed"
    assert fields["input_tokens"] > 0 and fields["cached_tokens"] == 0
    log = bot.log()
    assert all(line.startswith("{") for line in log.splitlines() if line.strip()), log[:2000]
    # The turn's line never holds what was said or done: question, answer, tool arguments or
    # results (the echo's result is its argument; the failure's is its message).
    turn_log = [line for line in log.splitlines() if '"bot.turn"' in line]
    assert len(turn_log) == 1 and '"turn"' in turn_log[0], turn_log
    for text in ("m-the-question", "m-the-answer", "m-tool-argument", "m-tool-failure"):
        assert text not in turn_log[0] and text not in json.dumps(fields), text
    for secret in SECRETS:
        assert secret not in log, secret
