"""The official MCP test server `@modelcontextprotocol/server-everything`, pinned and installed
with `npm ci` from `tests/fakes/everything_npm/` (package.json + package-lock.json) on first use."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

NPM_DIR = Path(__file__).resolve().parent / "everything_npm"
ENTRY = NPM_DIR / "node_modules/@modelcontextprotocol/server-everything/dist/index.js"
_install_lock = threading.Lock()


def ensure_installed() -> Path:
    """The server's entry script; installs it once, or skips the test with the reason."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("server-everything tests need Node.js and npm on PATH (not found)")
    with _install_lock:
        if not ENTRY.exists():
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NPM_DIR,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if done.returncode != 0 or not ENTRY.exists():
                pytest.fail(f"npm ci for server-everything failed:\n{done.stderr[-2000:]}")
    return ENTRY


def everything_params() -> dict[str, Any]:
    """command/args for an MCPServerConfig that runs server-everything over stdio."""
    entry = ensure_installed()
    return {"command": shutil.which("node"), "args": [str(entry), "stdio"]}
