"""The command line: config mistakes exit 2 with one clear line; `check` reports a table."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import Fault, ScriptedLLM, Text, ToolCall
from tests.fakes.mcp_server import read_calls, stdio_params

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_bot(
    tmp_path: Path, *args: str, config: str | None = None, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISCORD_TOKEN", "BOT_CONFIG") and "__" not in k
    }
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT), env.pop("PYTHONPATH", "")])
    )
    environment["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    if config is not None:
        (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


MISTAKES = {
    "no token": ("", {}, "DISCORD_TOKEN"),
    "invalid yaml": ("llm: [unclosed\n", {"DISCORD_TOKEN": "x"}, "invalid YAML at line"),
    "unknown backend": ("llm:\n  backend: magic\n", {"DISCORD_TOKEN": "x"}, "llm.backend: 'magic'"),
    "wrong type": (
        "llm:\n  max_tool_rounds: lots\n",
        {"DISCORD_TOKEN": "x"},
        "llm.max_tool_rounds",
    ),
    "unknown key": (
        "discord:\n  scopee: user\n",
        {"DISCORD_TOKEN": "x"},
        "discord.scopee: unknown key",
    ),
    "env override": (
        "",
        {"DISCORD_TOKEN": "x", "DISCORD__SCOPE": "galaxy"},
        "discord.scope: 'galaxy'",
    ),
    "secret in yaml": ("llm:\n  api_key: sk-123\n", {"DISCORD_TOKEN": "x"}, "LLM__API_KEY"),
    "missing variable": (
        "mcp:\n  servers:\n    gh:\n      url: http://x/mcp\n      headers: {A: '${NOPE_TOKEN}'}\n",
        {"DISCORD_TOKEN": "x"},
        "NOPE_TOKEN is not set",
    ),
    "missing model key variable": (
        "llm:\n  fallback_models:\n    - {model: anthropic/claude, api_key_env: NOPE_MODEL_KEY}\n",
        {"DISCORD_TOKEN": "x"},
        "llm.fallback_models.0.api_key_env: NOPE_MODEL_KEY is not set; set it in the environment",
    ),
    "unknown section": (
        "mcpp:\n  servers: {}\n",
        {"DISCORD_TOKEN": "x"},
        "mcpp: unknown key in config.yaml",
    ),
    "shard id out of range": (
        "discord:\n  shard_count: 2\n  shard_ids: [2]\n",
        {"DISCORD_TOKEN": "x"},
        "discord.shard_ids: each id must be from 0 to 1",
    ),
    "a param the bot owns": (
        "llm:\n  params: {temperature: 0.2, tool_choice: required}\n",
        {"DISCORD_TOKEN": "x"},
        "llm.params: `tool_choice` is set by the bot itself",
    ),
    "missing BOT_CONFIG file": (
        "",
        {"DISCORD_TOKEN": "x", "BOT_CONFIG": "/nonexistent.yaml"},
        "BOT_CONFIG",
    ),
}


@pytest.mark.parametrize("case", MISTAKES, ids=list(MISTAKES))
async def test_config_mistakes_exit_2_with_one_line(tmp_path: Path, case: str) -> None:
    config, env, expected = MISTAKES[case]
    # In a thread: the session loop also serves the fake Discord of the shared bots.
    result = await asyncio.to_thread(run_bot, tmp_path, config=config, **env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert "sk-123" not in result.stderr


async def test_bad_token_exits_2(tmp_path: Path) -> None:
    discord = FakeDiscord()
    await discord.start()
    try:
        env = discord.bot_env()
        config = yaml.safe_dump(
            {
                "storage": {"path": str(tmp_path / "bot.db")},
                "llm": {"backend": "responses", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
            }
        )
        result = await asyncio.to_thread(
            run_bot, tmp_path, config=config, DISCORD_TOKEN="wrong-token", **env
        )
    finally:
        await discord.stop()
    assert result.returncode == 2, result.stderr
    assert "DISCORD_TOKEN: Discord rejected the token" in result.stderr
    assert "Traceback" not in result.stderr
    assert "wrong-token" not in result.stderr


async def test_message_content_intent_off_exits_2_with_the_fix(tmp_path: Path) -> None:
    discord = FakeDiscord(privileged_intents=False)
    await discord.start()
    try:
        config = yaml.safe_dump(
            {
                "storage": {"path": str(tmp_path / "bot.db")},
                "llm": {"backend": "responses", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
            }
        )
        result = await asyncio.to_thread(
            run_bot, tmp_path, config=config, DISCORD_TOKEN=discord.token, **discord.bot_env()
        )
    finally:
        await discord.stop()
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("config error: discord: the Message Content intent is not enabled")
    assert "MESSAGE CONTENT INTENT" in lines[-1]
    assert "Traceback" not in result.stderr + result.stdout


def check_config(tmp_path: Path, llm: ScriptedLLM, *, failing: bool) -> dict[str, Any]:
    """A check config with a good server and a good fallback; `failing` adds a broken server
    and a fallback model that is down."""
    fallbacks = ["openai/check-fallback-ok"]
    llm.serve("check-fallback-ok")  # the scripted server answers only models a test declares
    servers: dict[str, Any] = {"good": stdio_params(name="good")}
    if failing:
        fallbacks.append("openai/check-fallback-down")
        servers["broken"] = {"command": "/nonexistent/mcp-server"}
    return {
        "llm": {
            "backend": "chat",
            "model": "openai/test-model",
            "base_url": llm.base_url,
            "fallback_models": fallbacks,
        },
        "storage": {"path": str(tmp_path / "bot.db")},
        "mcp": {"servers": servers},
    }


async def run_check(
    tmp_path: Path, config: dict[str, Any]
) -> tuple[dict[str, tuple[str, str]], int]:
    """`python -m bot check`: each row's status and reason by part, and the exit code."""
    result = await asyncio.to_thread(
        run_bot,
        tmp_path,
        "check",
        config=yaml.safe_dump(config),
        DISCORD_TOKEN="x",
        OPENAI_API_KEY="sk-test",
    )
    rows = {}
    for line in result.stdout.splitlines():
        if line.strip():
            status, part, *reason = line.split(maxsplit=2)
            rows[part] = (status, reason[0] if reason else "")
    return rows, result.returncode


async def test_check_reports_each_part(tmp_path: Path, llm: ScriptedLLM) -> None:
    llm.fail_model("check-fallback-down", Fault(503))
    rows, code = await run_check(tmp_path, check_config(tmp_path, llm, failing=True))
    assert rows["mcp:good"][0] == "OK" and "good__add" in rows["mcp:good"][1], rows
    # A failed part says why, in one line.
    assert rows["mcp:broken"] == ("FAIL", "not found: /nonexistent/mcp-server"), rows
    assert rows["llm:chat"][0] == "OK", rows
    # Each fallback model is asked too: one that cannot answer is found before it is needed.
    assert rows["llm:fallback:openai/check-fallback-ok"][0] == "OK", rows
    down = rows["llm:fallback:openai/check-fallback-down"]
    assert down[0] == "FAIL" and "503" in down[1] and "check-fallback-down" in down[1], rows
    assert rows["storage"][0] == "OK"
    assert code == 1
    assert any(r.body.get("messages") for r in llm.requests if "Reply with OK" in str(r.body))


async def test_check_exits_0_when_every_part_passes(tmp_path: Path, llm: ScriptedLLM) -> None:
    rows, code = await run_check(tmp_path, check_config(tmp_path, llm, failing=False))
    assert {status for status, _ in rows.values()} == {"OK"}, rows
    assert {"config", "DISCORD_TOKEN", "storage", "mcp:good", "llm:chat"} <= set(rows)
    assert code == 0


async def test_chat_command_talks_to_the_model_in_the_terminal(
    tmp_path: Path, llm: ScriptedLLM
) -> None:
    config = {
        "llm": {"model": "openai/test-model", "base_url": llm.base_url},
        "storage": {"path": str(tmp_path / "bot.db")},
        "logging": {"level": "WARNING"},
    }
    llm.script("k-console")
    result = await asyncio.to_thread(
        run_bot,
        tmp_path,
        "chat",
        config=yaml.safe_dump(config),
        stdin="k-console my name is Ada\nk-console who am I?\n\n",
        OPENAI_API_KEY="sk-test",
    )
    assert result.returncode == 0, result.stderr
    assert "echo: k-console my name is Ada" in result.stdout
    second = llm.requests_for("k-console")[-1].body
    assert any("my name is Ada" in str(m.get("content")) for m in second["messages"])


async def test_chat_command_edits_and_explains_approvals(tmp_path: Path, llm: ScriptedLLM) -> None:
    call_log = tmp_path / "calls.jsonl"
    config = {
        "llm": {"model": "openai/test-model", "base_url": llm.base_url},
        "mcp": {"servers": {"gated": stdio_params(call_log, name="gated")}},
        "storage": {"path": str(tmp_path / "bot.db")},
        "logging": {"level": "WARNING"},
    }
    llm.script("k-cli-edit", [ToolCall("gated__record", {"note": "typo"})], Text("Edited."))
    llm.script("k-cli-why", [ToolCall("gated__record", {"note": "nope"})], Text("Understood."))
    stdin = "\n".join(
        [
            "k-cli-edit record it",
            "e",
            '{"note": 5}',  # off the schema: said, and asked again
            "",
            "e",
            '{"note": "fixed"}',
            "",
            "k-cli-why record it",
            "r",
            "use the staging notes",
            "",
            "",
        ]
    )
    result = await asyncio.to_thread(
        run_bot,
        tmp_path,
        "chat",
        config=yaml.safe_dump(config),
        stdin=stdin,
        OPENAI_API_KEY="sk-test",
    )
    assert result.returncode == 0, result.stderr
    assert "Not run: note: 5 is not of type 'string'" in result.stdout
    assert [c["arguments"] for c in read_calls(call_log)] == [{"note": "fixed"}]
    edited = llm.requests_for("k-cli-edit")[1].body["messages"][-1]["content"]
    assert "edited the arguments" in edited and "fixed" in edited
    why = llm.requests_for("k-cli-why")[1].body["messages"][-1]["content"]
    assert "use the staging notes" in why and "not run" in why


async def test_chat_command_declines_servers_questions(tmp_path: Path, llm: ScriptedLLM) -> None:
    """The terminal has no form to show: a server that asks the user something hears no."""
    config = {
        "llm": {"model": "openai/test-model", "base_url": llm.base_url},
        "mcp": {"servers": {"asks": {**stdio_params(name="asks"), "require_approval": "never"}}},
        "storage": {"path": str(tmp_path / "bot.db")},
        "logging": {"level": "WARNING"},
    }
    key = "k-cli-question"
    llm.script(key, [ToolCall("asks__confirm", {"question": "Deploy now?"})], Text("Not deployed."))
    result = await asyncio.to_thread(
        run_bot,
        tmp_path,
        "chat",
        config=yaml.safe_dump(config),
        stdin=f"{key} deploy it\n\n",
        OPENAI_API_KEY="sk-test",
    )
    assert result.returncode == 0, result.stderr
    assert "Not deployed." in result.stdout
    outcome = llm.requests_for(key)[1].body["messages"][-1]["content"]
    assert "confirmation: decline" in outcome, outcome


async def test_chat_command_approves_denies_and_always_allows_until_reset(
    tmp_path: Path, llm: ScriptedLLM
) -> None:
    call_log = tmp_path / "calls.jsonl"
    config = {
        "llm": {"model": "openai/test-model", "base_url": llm.base_url},
        "mcp": {"servers": {"gated": stdio_params(call_log, name="gated")}},
        "storage": {"path": str(tmp_path / "bot.db")},
        "logging": {"level": "WARNING"},
    }

    def record(note: str) -> list[ToolCall]:
        return [ToolCall("gated__record", {"note": note})]

    llm.script("k-cli-yes", record("yes-note"), Text("Ran it."))
    llm.script("k-cli-no", record("no-note"), Text("Left it."))
    llm.script(
        "k-cli-always",
        *(record("always-1"), Text("Always now.")),
        *(record("always-2"), Text("Unasked.")),
        *(record("after-reset"), Text("Asked again.")),
    )
    stdin = "\n".join(
        [
            "k-cli-yes record it",
            "y",
            "k-cli-no record it",
            "n",
            "k-cli-always record it",
            "a",
            # Asked again, this line would be the answer (a no) and always-2 would not run.
            "k-cli-always record it again",
            "/reset",
            "k-cli-always record it after the reset",
            "n",
            "",
        ]
    )
    result = await asyncio.to_thread(
        run_bot,
        tmp_path,
        "chat",
        config=yaml.safe_dump(config),
        stdin=stdin,
        OPENAI_API_KEY="sk-test",
    )
    assert result.returncode == 0, result.stderr
    ran = [c["arguments"]["note"] for c in read_calls(call_log)]
    assert ran == ["yes-note", "always-1", "always-2"]
    assert result.stdout.count("Approval needed: gated.record") == 4
    denied = llm.requests_for("k-cli-no")[1].body["messages"][-1]["content"]
    assert "not run" in denied
    assert "Asked again." in result.stdout


async def test_a_stdio_server_run_by_python_uses_the_bots_own_interpreter(tmp_path: Path) -> None:
    """systemd starts `.venv/bin/python -m bot` with a PATH whose first `python` is the
    system's, which lacks the server's module; `command: python` must still find it."""
    system_bin = tmp_path / "bin"
    system_bin.mkdir()
    for name in ("python", "python3"):
        stub = system_bin / name
        stub.write_text("#!/bin/sh\necho 'No module named mcp_server_time' >&2\nexit 1\n")
        stub.chmod(0o755)
    time_server = ["-m", "mcp_server_time", "--local-timezone", "UTC"]
    config = {
        "llm": {"backend": "responses", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
        "storage": {"path": str(tmp_path / "bot.db")},
        "mcp": {
            "servers": {
                "time": {"command": "python", "args": time_server},
                "time3": {"command": "python3", "args": time_server},
            }
        },
    }
    result = await asyncio.to_thread(
        run_bot,
        tmp_path,
        "check",
        config=yaml.safe_dump(config),
        DISCORD_TOKEN="x",
        OPENAI_API_KEY="sk-test",
        PATH=os.pathsep.join([str(system_bin), os.environ["PATH"]]),
    )
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.strip()}
    assert rows["mcp:time"].startswith("OK"), result.stdout
    assert rows["mcp:time3"].startswith("OK"), result.stdout
    assert "get_current_time" in rows["mcp:time"]


async def test_check_shows_a_server_side_mcp_url_without_its_path_or_query(
    tmp_path: Path,
) -> None:
    config = {
        "llm": {"backend": "responses", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
        "storage": {"path": str(tmp_path / "bot.db")},
        "mcp": {
            "servers": {
                "docs": {
                    "url": "https://mcp.example.invalid:8443/t/secret-path/mcp?token=abc123",
                    "server_side": True,
                }
            }
        },
    }
    result = await asyncio.to_thread(
        run_bot,
        tmp_path,
        "check",
        config=yaml.safe_dump(config),
        DISCORD_TOKEN="x",
        OPENAI_API_KEY="sk-test",
    )
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.strip()}
    assert "server-side (https://mcp.example.invalid:8443)" in rows["mcp:docs"], result.stdout
    assert "secret-path" not in result.stdout and "abc123" not in result.stdout


@pytest.mark.parametrize(
    ("configured", "path"),
    [("openai/check-transcribe", "openai SDK"), ("hosted_vllm/check-transcribe", "litellm")],
)
async def test_check_probes_the_transcription_model(
    tmp_path: Path, llm: ScriptedLLM, configured: str, path: str
) -> None:
    llm.serve("check-transcribe")
    config = check_config(tmp_path, llm, failing=False)
    config["llm"]["transcription_model"] = configured
    before = len(llm.audio.requests)
    rows, code = await run_check(tmp_path, config)
    status, reason = rows["llm:transcription"]
    assert status == "OK" and configured in reason and "0.5 s of silence" in reason, (path, rows)
    assert code == 0, rows
    [probe] = llm.audio.requests[before:]
    assert probe.model == "check-transcribe" and probe.data and probe.data[:4] == b"RIFF"


async def test_check_fails_a_transcription_model_the_server_does_not_serve(
    tmp_path: Path, llm: ScriptedLLM
) -> None:
    config = check_config(tmp_path, llm, failing=False)
    config["llm"]["transcription_model"] = "openai/check-transcribe-typo"
    rows, code = await run_check(tmp_path, config)
    status, reason = rows["llm:transcription"]
    assert status == "FAIL" and "check-transcribe-typo" in reason, rows
    assert code == 1


async def test_check_has_no_transcription_row_when_it_is_off(
    tmp_path: Path, llm: ScriptedLLM
) -> None:
    rows, _ = await run_check(tmp_path, check_config(tmp_path, llm, failing=False))
    assert "llm:transcription" not in rows
