"""Runs the real bot (`python -m bot`) as a process against the fake Discord and the scripted LLM."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import yaml

from tests.fakes.discord import FakeDiscord

REPO_ROOT = Path(__file__).resolve().parents[2]
INDICATOR = " ▌"
# The status reactions a turn ends on (done, failed, stopped): config.yaml's defaults.
FINAL_REACTIONS = ("✅", "❌", "⏹")
# What a bot process needs from the test runner's environment to start its own children.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SSL_CERT_FILE", "VIRTUAL_ENV")


class BotProcess:
    """One bot process with its own config file, database and log.

    Every started process is remembered in `BotProcess.live` so the session's finalizer (and
    atexit, if pytest itself dies) can kill what a failing test left running.
    """

    live: ClassVar[set[subprocess.Popen[bytes]]] = set()

    def __init__(
        self,
        discord: FakeDiscord,
        config: dict[str, Any],
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
    ) -> None:
        self.discord = discord
        self.config = config
        self.workdir = workdir
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "bot.log"
        self._log_offset = 0

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`python -m bot <args>` as an operator runs it next to this bot (same config and
        environment), e.g. `health` or `reload`."""
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            cwd=self.workdir,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    def environment(self) -> dict[str, str]:
        # Built from scratch: a developer's own LLM__*/DISCORD__* variables must not leak in.
        env = {name: os.environ[name] for name in INHERITED if name in os.environ}
        fake = self.discord.bot_env()
        env.update(fake)
        env["PYTHONPATH"] = os.pathsep.join([fake["PYTHONPATH"], str(REPO_ROOT)])
        env.update(
            {
                "BOT_CONFIG": str(self.workdir / "config.yaml"),
                "DISCORD_TOKEN": self.discord.token,
                "OPENAI_API_KEY": "sk-test",
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            }
        )
        env.update(self.extra_env)
        return env

    async def start(self, *, wait: bool = True, timeout: float = 90) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "config.yaml").write_text(yaml.safe_dump(self.config), encoding="utf-8")
        log = self.log_path.open("ab")
        self._log_offset = log.tell()  # a restart appends: only look at this run's lines
        # Popen, not asyncio's subprocess: its transports outlive the test loop and warn.
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [sys.executable, "-m", "bot"],
            cwd=self.workdir,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        BotProcess.live.add(self.proc)
        if wait:
            try:
                await self.wait_logged("logged in as", timeout=timeout)
            except BaseException:
                await self.kill()  # a bot that never came up must not outlive its test
                raise

    def log(self, *, this_run: bool = False) -> str:
        if not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()
        if this_run:
            data = data[self._log_offset :]
        return data.decode("utf-8", errors="replace")

    async def wait_logged(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(this_run=True):
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"bot exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"bot never logged {text!r}:\n{self.log()[-4000:]}")
            await asyncio.sleep(0.1)

    async def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while (code := self.proc.poll()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"bot still running after {timeout} s")
            await asyncio.sleep(0.05)
        return code

    async def stop(self, timeout: float = 40) -> int:
        """SIGTERM, as a service manager would; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return await self.wait_exit(timeout)
            except TimeoutError:
                await self.kill()
                raise
        return self.proc.returncode

    async def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            await self.wait_exit(10)


class Chat:
    """A test's own corner of a shared world: a fresh channel and fresh users."""

    def __init__(
        self, discord: FakeDiscord, name: str = "test", channel: int | None = None
    ) -> None:
        self.discord = discord
        self.channel = channel or discord.add_channel(name)
        self.user = discord.add_user(f"{name}-user")

    def mention(self) -> str:
        return f"<@{self.discord.bot_user_id}>"

    async def say(
        self, text: str, *, user: int | None = None, mention: bool = True, **kw: Any
    ) -> dict:
        content = f"{self.mention()} {text}" if mention else text
        return await self.discord.send_message(self.channel, user or self.user, content, **kw)

    def bot_messages(self, after: int = 0) -> list[dict]:
        return [
            m
            for m in self.discord.messages(self.channel)
            if int(m["author"]["id"]) == self.discord.bot_user_id and int(m["id"]) > after
        ]

    def replies_to(self, message_id: int) -> list[dict]:
        """The reply chain answering one message: each part replies to the one before it, and
        the answer continues below an approval prompt. Prompts themselves are left out."""
        chain: list[dict] = []
        wanted = {message_id}
        for m in self.bot_messages():
            ref = (m.get("message_reference") or {}).get("message_id")
            if ref is not None and int(ref) in wanted:
                wanted.add(int(m["id"]))
                if "Approval needed" not in m["content"]:
                    chain.append(m)
        return chain

    async def answer(
        self, message_id: int, done: Callable[[str], bool] | None = None, timeout: float = 30
    ) -> list[dict]:
        """Wait until the reply to `message_id` is final (no streaming indicator) and `done`."""

        def ready() -> list[dict] | None:
            parts = self.replies_to(message_id)
            if not parts or parts[-1]["content"].endswith(INDICATOR):
                return None
            text = "\n".join(p["content"] for p in parts)
            if any(p["content"].endswith(INDICATOR) for p in parts):
                return None
            if done is not None and not done(text):
                return None
            return parts

        return await self.discord.wait_for(ready, timeout=timeout)

    async def turn_over(self, message_id: int, timeout: float = 30) -> str:
        """Wait for the bot's last status reaction on the asker's message, which it places only
        after the turn has ended and let go of the asker (the answer's final text comes
        before that): the emoji, ✅, ❌ or ⏹."""

        def final() -> str | None:
            message = self.discord.message(message_id) or {}
            mine = [r["emoji"]["name"] for r in message.get("reactions", []) if r["me"]]
            return next((e for e in mine if e in FINAL_REACTIONS), None)

        return await self.discord.wait_for(final, timeout=timeout)

    async def answer_text(self, message_id: int, contains: str = "", timeout: float = 30) -> str:
        parts = await self.answer(message_id, lambda t: contains in t, timeout)
        return "\n".join(p["content"] for p in parts)

    async def prompt(self, *, newer_than: dict | None = None, timeout: float = 20) -> dict:
        """The newest approval prompt in this channel (newer than a given one)."""
        floor = int(newer_than["id"]) if newer_than else 0

        def find() -> dict | None:
            prompts = [m for m in self.bot_messages(floor) if "Approval needed" in m["content"]]
            return prompts[-1] if prompts else None

        return await self.discord.wait_for(find, timeout=timeout)


def instructions(body: dict) -> str:
    """The system prompt an LLM request carried: `instructions` (Responses) or the system message."""
    if "instructions" in body:
        return body["instructions"] or ""
    return next((m["content"] for m in body.get("messages", []) if m["role"] == "system"), "")


def buttons(message: dict) -> list[dict]:
    return [c for row in message.get("components", []) for c in row.get("components", [])]


@contextlib.asynccontextmanager
async def running(bot: BotProcess):  # type: ignore[no-untyped-def]
    """The bot for the block, then SIGTERM: it must exit 0. If the block failed, its own error
    is the one raised, with a failed stop noted on it."""
    await bot.start()
    try:
        yield bot
    except BaseException as failure:
        try:
            await bot.stop()
        except Exception as stop_error:  # noqa: BLE001 - reported on the test's own error
            failure.add_note(f"stopping the bot failed too: {stop_error!r}")
        raise
    code = await bot.stop()
    assert code == 0, f"bot exited with {code}:\n{bot.log()[-3000:]}"


def kill_leftover_bots() -> None:
    """Kill bot processes that a failed test never stopped."""
    for proc in list(BotProcess.live):
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        BotProcess.live.discard(proc)


atexit.register(kill_leftover_bots)
