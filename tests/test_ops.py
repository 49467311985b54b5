"""Operations: a newcomer's first `check`, the container files, and the configuration reference."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def newcomer_check(workdir: Path) -> subprocess.CompletedProcess[str]:
    """`python -m bot check` as a new user runs it: the shipped config.yaml, nothing set yet.

    A clean environment (only PATH with the installed Python, and HOME), like a fresh shell
    after the README's install; PYTHONPATH stands in for `pip install -e .`."""
    shutil.copy(REPO_ROOT / "config.yaml", workdir / "config.yaml")
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


async def test_newcomer_check_fails_only_on_unset_secrets(tmp_path: Path) -> None:
    result = await asyncio.to_thread(newcomer_check, tmp_path)
    rows = [line for line in result.stdout.splitlines() if line.strip()]
    failed = {line.split()[1]: line for line in rows if line.startswith("FAIL")}
    assert set(failed) == {"DISCORD_TOKEN", "llm:chat"}, result.stdout + result.stderr
    assert "set DISCORD_TOKEN" in failed["DISCORD_TOKEN"]
    assert "LLM__API_KEY" in failed["llm:chat"] and "OPENAI_API_KEY" in failed["llm:chat"]
    assert any(line.startswith("OK") and "mcp:time" in line for line in rows), result.stdout
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
