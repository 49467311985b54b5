"""How long a live reload takes: SIGHUP to the bot's `config reloaded` line, for a chat bot on an
`openai/` model (fake Discord, scripted LLM, one stdio MCP server), and its memory after.

    python -m bench.reload_time [--reloads 5] [--repo PATH]

`--repo` runs another checkout's `bot` (e.g. main) against the same fakes, for a before/after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from tests.conftest import bot_config
from tests.e2e.harness import BotProcess
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM
from tests.fakes.mcp_server import stdio_params

LINE = "config reloaded:"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def measure(reloads: int, repo: str | None) -> None:
    llm = ScriptedLLM()
    await llm.start()
    discord = FakeDiscord()
    await discord.start()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = bot_config(llm, workdir, workdir / "calls.jsonl", "chat")
        config["mcp"]["servers"] = {
            "auto": {**stdio_params(name="auto"), "require_approval": "never"}
        }
        env = {}
        if repo:
            env["PYTHONPATH"] = os.pathsep.join([discord.bot_env()["PYTHONPATH"], repo])
        bot = BotProcess(discord, config, workdir, env=env)
        await bot.start()
        assert bot.proc is not None
        print(f"rss after start-up: {rss_mb(bot.proc.pid):.0f} MB")
        took = []
        try:
            for n in range(reloads):
                config["llm"]["system_prompt"] = f"You are reload {n}."
                (workdir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
                seen = bot.log().count(LINE)
                start = time.monotonic()
                bot.proc.send_signal(signal.SIGHUP)
                while bot.log().count(LINE) <= seen:  # noqa: ASYNC110 - another process writes it
                    await asyncio.sleep(0.005)
                took.append(time.monotonic() - start)
                print(f"reload {n + 1}: {took[-1]:.3f} s, rss {rss_mb(bot.proc.pid):.0f} MB")
        finally:
            await bot.stop()
            await discord.stop()
            await llm.stop()
    print(f"median {statistics.median(took):.3f} s, max {max(took):.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=5)
    parser.add_argument("--repo", default=None)
    args = parser.parse_args()
    asyncio.run(measure(args.reloads, args.repo))


if __name__ == "__main__":
    main()
