"""Operations: a newcomer's first `check`, the container files, and the configuration reference."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from bot.backends.base import user_field
from bot.config import Settings, load_settings
from bot.core.events import ToolCallFinished, TurnCompleted, Usage
from bot.core.state import ConversationKey, ConversationState
from bot.core.turn_log import TurnLog
from bot.ops.health import HEARTBEAT_EVERY_S, STALE_AFTER_S, beat, check_health, heartbeat_path
from bot.ops.reload import changed_keys, keep_restart_only, split_changes, summarize
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.state import (
    ADD_REACTIONS,
    CREATE_PUBLIC_THREADS,
    SEND_MESSAGES,
    VIEW_CHANNEL,
)
from tests.fakes.llm import ScriptedLLM
from tests.test_cli import run_bot

REPO_ROOT = Path(__file__).resolve().parents[1]


def newcomer_check(workdir: Path, *, dotenv: bool = False) -> subprocess.CompletedProcess[str]:
    """`python -m bot check` as a new user runs it: the shipped config.yaml, nothing set yet.

    A clean environment (only PATH with the installed Python, and HOME), like a fresh shell
    after the README's install; PYTHONPATH stands in for `pip install -e .`."""
    shutil.copy(REPO_ROOT / "config.yaml", workdir / "config.yaml")
    if dotenv:  # the README's next step: `cp .env.example .env`, nothing filled in yet
        shutil.copy(REPO_ROOT / ".env.example", workdir / ".env")
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(workdir),
        "PYTHONPATH": str(REPO_ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("dotenv", [False, True], ids=["no .env", "copied .env.example"])
async def test_newcomer_check_fails_only_on_unset_secrets(tmp_path: Path, dotenv: bool) -> None:
    result = await asyncio.to_thread(newcomer_check, tmp_path, dotenv=dotenv)
    rows = [line for line in result.stdout.splitlines() if line.strip()]
    failed = {line.split()[1]: line for line in rows if line.startswith("FAIL")}
    assert set(failed) == {"DISCORD_TOKEN", "llm:chat"}, result.stdout + result.stderr
    assert "set DISCORD_TOKEN" in failed["DISCORD_TOKEN"]
    assert "LLM__API_KEY" in failed["llm:chat"] and "OPENAI_API_KEY" in failed["llm:chat"]
    assert any(line.startswith("OK") and "mcp:time" in line for line in rows), result.stdout
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr


async def test_check_discord_lists_guilds_and_channel_permissions(
    tmp_path: Path, llm: ScriptedLLM
) -> None:
    discord = FakeDiscord()
    open_channel = discord.add_channel("open")
    read_only = discord.add_channel("announcements")
    hidden = discord.add_channel("staff")
    no_threads = discord.add_channel("no-threads")
    # As a server admin would: @everyone may not send, the bot may not see, nobody threads.
    discord.set_overwrite(read_only, discord.guild_id, deny=SEND_MESSAGES)
    discord.set_overwrite(hidden, discord.bot_user_id, deny=VIEW_CHANNEL)
    discord.set_overwrite(no_threads, discord.bot_role_id, deny=CREATE_PUBLIC_THREADS)
    no_reactions = discord.add_channel("no-reactions")
    discord.set_overwrite(no_reactions, discord.bot_role_id, deny=ADD_REACTIONS)
    await discord.start()
    config = {
        "llm": {"model": "openai/test-model", "base_url": llm.base_url},
        "storage": {"path": str(tmp_path / "bot.db")},
        "mcp": {"servers": {}},
        "discord": {
            "permissions": {
                "channels": {"allow": [open_channel, read_only, hidden, no_threads, no_reactions]}
            }
        },
    }
    try:
        result = await asyncio.to_thread(
            run_bot,
            tmp_path,
            "check",
            "--discord",
            config=yaml.safe_dump(config),
            DISCORD_TOKEN=discord.token,
            OPENAI_API_KEY="sk-test",
            **discord.bot_env(),
        )
        sessions = len(discord.gateway.connected())
    finally:
        await discord.stop()
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.strip()}
    assert rows["discord"].startswith("OK"), result.stdout + result.stderr
    assert f"1 guild(s): Fake Guild ({discord.guild_id})" in rows["discord"]
    assert rows[f"channel:{open_channel}"].startswith("OK")
    assert (
        "read yes, send yes, create threads yes, add reactions yes"
        in rows[f"channel:{open_channel}"]
    )
    # Answers work without Add Reactions; the row says what is missing and why it matters.
    assert rows[f"channel:{no_reactions}"].startswith("OK")
    assert "add reactions NO" in rows[f"channel:{no_reactions}"]
    assert "grant Add Reactions" in rows[f"channel:{no_reactions}"]
    assert rows[f"channel:{read_only}"].startswith("FAIL")
    assert "read yes, send NO, create threads yes" in rows[f"channel:{read_only}"]
    assert rows[f"channel:{hidden}"].startswith("FAIL")
    assert "read NO, send NO" in rows[f"channel:{hidden}"]
    # Threads matter only with reply_in_thread: the row is OK but says NO.
    assert rows[f"channel:{no_threads}"].startswith("OK")
    assert "create threads NO" in rows[f"channel:{no_threads}"]
    assert result.returncode == 1
    assert sessions == 0  # it logged out
    assert discord.token not in result.stdout + result.stderr


def test_user_field_is_a_stable_hash_or_nothing() -> None:
    assert user_field(1234, True) == user_field(1234, True) != user_field(1235, True)
    assert "1234" not in (user_field(1234, True) or "")
    assert user_field(1234, False) is None  # llm.send_user_id: false


def test_reload_sorts_changes_into_applied_and_restart_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config.yaml, no .env: these settings only
    old = Settings(discord_token="a", storage={"path": "a.db"})
    new = Settings(
        discord_token="b",
        storage={"path": "b.db"},
        llm={"system_prompt": "new"},
        mcp={"servers": {"web": {"url": "http://x/mcp", "headers": {"A": "secret-b"}}}},
    )
    applied, later = split_changes(changed_keys(old, new))
    assert "llm.system_prompt" in applied and "mcp.servers.web.headers.A" in applied
    assert later == ["discord_token", "storage.path"]
    assert summarize(applied) == "llm.system_prompt, mcp.servers.web"
    kept = keep_restart_only(old, new)
    assert kept.storage.path == "a.db" and kept.discord_token == old.discord_token
    assert kept.llm.system_prompt == "new"


def test_audit_channel_and_write_budget_wait_for_a_restart_and_a_reload_after_says_only_that(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    old = Settings(discord={"edit_interval_s": 2})
    new = Settings(
        discord={"edit_interval_s": 2, "audit_channel_id": 123, "write_budget": False},
        llm={"system_prompt": "new"},
    )
    applied, later = split_changes(changed_keys(old, new))
    assert applied == ["llm.system_prompt"]  # the audit channel and the budget are built once
    assert later == ["discord.audit_channel_id", "discord.write_budget"]
    running = keep_restart_only(old, new)
    assert running.discord.audit_channel_id is None and running.discord.write_budget
    # The next reload of the same file: nothing applies; what still waits is named again, and
    # nothing else (keys kept at their running values are no change of their own).
    again = Settings(
        discord={"edit_interval_s": 2, "audit_channel_id": 123, "write_budget": False},
        llm={"system_prompt": "new"},
    )
    assert split_changes(changed_keys(running, again)) == (([], later))
    same = keep_restart_only(old, old.model_copy())
    assert changed_keys(same, Settings(discord={"edit_interval_s": 2})) == []


def test_provider_keys_in_dotenv_reach_the_environment_and_follow_edits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # Touched through monkeypatch first, so the test leaves the environment as it found it.
    for name in ("OPENAI_API_KEY", "MCPCORD_FROM_DOTENV", "LLM__MODEL"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-the-shell")
    (tmp_path / ".env").write_text(
        "OPENAI_API_KEY=one\nANTHROPIC_API_KEY=from-dotenv\nLLM__MODEL=openai/x\n"
    )
    assert load_settings().llm.model == "openai/x"
    assert os.environ["OPENAI_API_KEY"] == "one"
    assert os.environ["ANTHROPIC_API_KEY"] == "from-the-shell"  # the real environment wins
    assert "LLM__MODEL" not in os.environ  # settings stay .env's business
    (tmp_path / ".env").write_text("OPENAI_API_KEY=two\n")
    load_settings()  # as a reload does
    assert os.environ["OPENAI_API_KEY"] == "two"


def test_turn_line_fields_from_events() -> None:
    key = ConversationKey(guild_id=1, channel_id=2, user_id=3)
    turn = TurnLog(key, "", cost_of=lambda model, usage: 0.5 if model == "m" else None)
    turn.see(ToolCallFinished(call_id="c", server="s", tool="t", outcome="denied", output="no"))
    usage = Usage(input_tokens=10, output_tokens=2, cached_input_tokens=4)
    turn.see(TurnCompleted(state=ConversationState(), usage=usage, model="m"))
    fields = turn.fields()
    assert fields["conversation"] == "1:2:3" and fields["model"] == "m"
    assert (fields["input_tokens"], fields["output_tokens"], fields["cached_tokens"]) == (10, 2, 4)
    assert fields["cost_usd"] == 0.5 and fields["tools"] == ["s.t:denied"]
    assert fields["result"] == "completed"
    cut = TurnLog(key, "")
    assert cut.fields()["result"] == "cancelled"  # a turn that never finished says so


class ConnectedClient:
    """What beat() reads of a discord.py client with an open gateway socket."""

    guilds: list = []
    ws = SimpleNamespace(open=True)

    def is_closed(self) -> bool:
        return False

    def is_ready(self) -> bool:
        return True


def beat_time(path: Path) -> float:
    return float(json.loads(path.read_text(encoding="utf-8"))["time"])


def block_loop_then_read(path: Path, seconds: float) -> float:
    # A handler that blocks the event loop (a sync call, a CPU-bound step) for that long.
    time.sleep(seconds)
    return beat_time(path)


async def test_the_heartbeat_stops_while_the_loop_is_blocked(tmp_path: Path) -> None:
    # Unit level: nothing outside the bot can block its loop. A beat from a thread of its own
    # would keep a hung bot "healthy".
    path = tmp_path / "bot.db.heartbeat"
    task = asyncio.create_task(beat(ConnectedClient(), path))
    try:
        await asyncio.sleep(0.2)  # connected: the first beat comes at once
        first = await asyncio.to_thread(beat_time, path)
        assert block_loop_then_read(path, HEARTBEAT_EVERY_S + 1.5) == first
    finally:
        task.cancel()


def test_health_needs_a_fresh_beat_from_a_live_process(tmp_path: Path) -> None:
    settings = Settings(storage={"path": str(tmp_path / "bot.db")})
    assert check_health(settings)[0] is False  # no file yet
    beat = heartbeat_path(settings)
    beat.write_text(json.dumps({"pid": os.getpid(), "time": 1000.0, "guilds": 2}))
    healthy, line = check_health(settings, now=1010.0)
    assert healthy and "2 guild(s)" in line
    healthy, line = check_health(settings, now=1000.0 + STALE_AFTER_S + 1)
    assert not healthy and "last heartbeat" in line
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    beat.write_text(json.dumps({"pid": int(dead.stdout), "time": 1000.0}))
    healthy, line = check_health(settings, now=1001.0)
    assert not healthy and "not running" in line
