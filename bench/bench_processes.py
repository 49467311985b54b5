"""The processes of a bench run: helpers that print where they listen, and the bot, started
with the loop probe, measured through /proc, and stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.streaming_figures import MODES

REPO_ROOT = Path(__file__).resolve().parents[1]
PROBE_DIR = REPO_ROOT / "bench" / "probe"
FAKE_SITECUSTOMIZE = REPO_ROOT / "tests" / "fakes" / "discord" / "sitecustomize"


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kb(pid: int, key: str) -> int | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def reset_peak_rss(pid: int) -> bool:
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def loop_lags(path: Path, start: float, end: float) -> list[float]:
    if not path.exists():
        return []
    lags = []
    for line in path.read_text().splitlines():
        t, _, lag = line.partition(" ")
        with contextlib.suppress(ValueError):
            if start <= float(t) <= end:
                lags.append(float(lag))
    return lags


class Child:
    """A helper process whose first stdout lines say where it listens."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.name, self.args, self.log, self.env = name, args, log, env
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, lines: int, timeout: float = 30) -> list[str]:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                self.args,
                cwd=REPO_ROOT,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        out = []
        assert self.proc.stdout is not None
        for _ in range(lines):
            line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
            if not line:
                raise RuntimeError(f"{self.name} exited early; see {self.log}")
            out.append(line.decode().strip())
        return out

    async def stop(self) -> None:
        await stop_process(self.proc)


async def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 20) -> int | None:
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)
    return proc.returncode


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return env


@dataclass
class BotRun:
    """One bot process: a backend, a mode, the scenarios it serves."""

    backend: str
    mode: str
    proc: subprocess.Popen[bytes]
    workdir: Path
    probe: Path
    budget_applied: bool
    tag: str


def bot_config(backend: str, llm_base_url: str, workdir: Path) -> dict[str, Any]:
    prefix = "openai/" if backend == "chat" else ""  # litellm names the provider; openai not
    return {
        "llm": {
            "backend": backend,
            "model": f"{prefix}bench-model",
            "base_url": llm_base_url,
            "request_timeout_s": 60,
            "max_tool_rounds": 1,
        },
        "discord": {"edit_interval_s": 1.0},
        "limits": {"user_concurrent_turns": 5, "user_turns_per_minute": 1000},
        "mcp": {"servers": {}},
        "storage": {"path": str(workdir / "bot.db")},
        "logging": {"level": "INFO"},
        "shutdown_grace_s": 5,
    }


def prepare_workdir(workdir: Path, config: dict[str, Any]) -> tuple[Path, Path, Path]:
    """Writes the bot's config; returns (config, loop probe output, log) paths."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    return path, workdir / "loop-lag.txt", workdir / "bot.log"


def read_log(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


async def start_bot(
    backend: str,
    mode: str,
    workdir: Path,
    discord_url: str,
    token: str,
    llm_base_url: str,
    *,
    budget_env: bool = True,
    recent_context: int = 0,
) -> BotRun:
    config, probe, log_path = prepare_workdir(workdir, bot_config(backend, llm_base_url, workdir))
    env = base_env()
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(PROBE_DIR), str(REPO_ROOT)]),
            "BENCH_NEXT_SITECUSTOMIZE": str(FAKE_SITECUSTOMIZE / "sitecustomize.py"),
            "BENCH_LOOP_PROBE": str(probe),
            # The in-process stack sampler (--profile sampler) reads its output path here.
            "BENCH_SAMPLER_CONTROL": str(workdir / "sampler-control"),
            "FAKE_DISCORD_URL": discord_url,
            "BOT_CONFIG": str(config),
            "DISCORD_TOKEN": token,
            "OPENAI_API_KEY": "sk-bench",
        }
    )
    if budget_env:
        env["DISCORD__WRITE_BUDGET"] = MODES[mode]
    if recent_context:
        env["DISCORD__RECENT_CONTEXT__MESSAGES"] = str(recent_context)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once
            [sys.executable, "-m", "bot"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 120
    while "logged in as" not in read_log(log_path):
        if proc.poll() is not None:
            text = read_log(log_path)
            if budget_env and "write_budget" in text:
                # The key is not in this bot's config yet: both modes run the same code.
                return await start_bot(
                    backend,
                    mode,
                    workdir,
                    discord_url,
                    token,
                    llm_base_url,
                    budget_env=False,
                    recent_context=recent_context,
                )
            raise RuntimeError(f"bot exited with {proc.returncode}:\n{text[-3000:]}")
        if time.monotonic() > deadline:
            await stop_process(proc)
            raise TimeoutError(f"bot did not log in; see {log_path}")
        await asyncio.sleep(0.1)
    return BotRun(backend, mode, proc, workdir, probe, budget_env, f"{backend[:4]}{mode[:4]}")
