"""Says where a process spent its CPU, from py-spy's collapsed stacks (`--format raw`).

    python bench/profile_stacks.py profile.txt     # prints shares and top functions

Two views of the same samples. "Outermost": a sample goes to the outermost library on its stack,
so bot code calling litellm, which calls the openai SDK and pydantic, counts as litellm (litellm
chose to pay for them). "Innermost": it goes to the innermost library or our code, with the
standard library and pydantic counted for whoever called them, so the openai SDK's chunk parsing
counts as the openai SDK even when litellm asked for it. Samples with neither are the event loop
and the standard library it runs on. Worker threads (thread pools, aiosqlite) are counted too.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
LIBRARIES = {
    "litellm": "litellm",
    "openai": "openai SDK",
    "discord": "discord.py",
    "aiohttp": "aiohttp (direct)",
    "yarl": "aiohttp (direct)",
    "multidict": "aiohttp (direct)",
    "httpx": "httpx (direct)",
    "httpcore": "httpx (direct)",
    "httpx2": "httpx2 (direct)",
    "pydantic": "pydantic (direct)",
    "pydantic_core": "pydantic (direct)",
    "aiosqlite": "sqlite",
    "sqlite3": "sqlite",
    "mcp": "mcp",
    "tiktoken": "tiktoken",
    "tokenizers": "tokenizers",
}
# Counted for their caller in the innermost view: they are how a library does its work.
HELPERS = {"pydantic", "pydantic_core", "typing_extensions"}
OURS = "our code (bot/)"
LOOP = "event loop + stdlib"


def frames(stack: str) -> list[tuple[str, str]]:
    """(function, file) from the root down."""
    out = []
    for raw in stack.split(";"):
        m = FRAME.match(raw.strip())
        out.append((m["func"], m["file"]) if m else (raw.strip(), ""))
    return out


REPO_ROOT = Path(__file__).resolve().parents[1]


def short(file: str) -> str:
    """A file as a module path: inside site-packages or the repository, else (the standard
    library) its last two parts. Needs py-spy's --full-filenames."""
    path = Path(file)
    if "site-packages" in path.parts:
        return "/".join(path.parts[path.parts.index("site-packages") + 1 :])
    if path.is_absolute() and path.is_relative_to(REPO_ROOT):
        return str(path.relative_to(REPO_ROOT))
    return "/".join(path.parts[-2:])


def package(file: str) -> str:
    """The top-level package a file belongs to; "" for the standard library."""
    path = Path(file)
    if "site-packages" in path.parts:
        rest = path.parts[path.parts.index("site-packages") + 1 :]
        return rest[0].removesuffix(".py") if rest else ""
    if path.is_absolute() and path.is_relative_to(REPO_ROOT):
        return path.relative_to(REPO_ROOT).parts[0]
    return ""


LOOP_FRAMES = {"BaseEventLoop._run_once", "BaseEventLoop.run_forever"}


def callback_frames(stack: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The part of an event-loop stack that belongs to one callback or task step (below the
    loop's Handle._run); [] for the loop's own work (selecting, scheduling). Threads: all."""
    runs = [i for i, (func, _) in enumerate(stack) if func == "Handle._run"]
    if runs:
        return stack[runs[-1] + 1 :]
    if any(func in LOOP_FRAMES for func, _ in stack):
        return []
    return stack


def category(stack: list[tuple[str, str]]) -> str:
    ours = False
    for _, file in stack:
        pkg = package(file)
        if pkg in LIBRARIES:
            return LIBRARIES[pkg]
        ours = ours or pkg == "bot"
    return OURS if ours else LOOP


def inner_category(stack: list[tuple[str, str]]) -> str:
    for _, file in reversed(stack):
        pkg = package(file)
        if pkg == "bot":
            return OURS
        if pkg in LIBRARIES and pkg not in HELPERS:
            return LIBRARIES[pkg].removesuffix(" (direct)")
    return LOOP


def summarize(text: str, top: int = 15) -> dict[str, Any]:
    shares: Counter[str] = Counter()
    inner: Counter[str] = Counter()
    threads = 0
    leaves: Counter[str] = Counter()
    ours: Counter[str] = Counter()  # inclusive samples per function of ours
    total = 0
    for line in text.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        stack = frames(stack_text)
        total += count
        own = callback_frames(stack)
        shares[category(own)] += count
        inner[inner_category(own)] += count
        threads += count if stack and stack[0][0] == "Thread._bootstrap" else 0
        func, file = stack[-1]
        leaves[f"{func} ({short(file)})"] += count
        for name in {f"{f} ({short(file)})" for f, file in own if package(file) == "bot"}:
            ours[name] += count

    def share(counter: Counter[str], n: int | None = None) -> list[list[Any]]:
        return [[k, round(100 * v / total, 1)] for k, v in counter.most_common(n)]

    return {
        "samples": total,
        "share_pct": share(shares) if total else [],
        "innermost_share_pct": share(inner) if total else [],
        "worker_threads_pct": round(100 * threads / total, 1) if total else 0.0,
        "top_self_pct": share(leaves, top) if total else [],
        "our_functions_inclusive_pct": share(ours, top) if total else [],
    }


def render(summary: dict[str, Any]) -> str:
    lines = [f"samples: {summary['samples']}", "", "where the CPU went (outermost library):"]
    lines += [f"  {pct:5.1f}%  {name}" for name, pct in summary["share_pct"]]
    lines += ["", "whose code ran (innermost library; pydantic and stdlib go to their caller):"]
    lines += [f"  {pct:5.1f}%  {name}" for name, pct in summary["innermost_share_pct"]]
    lines += ["", f"in worker threads (not the event loop): {summary['worker_threads_pct']}%"]
    lines += ["", "top functions by own time:"]
    lines += [f"  {pct:5.1f}%  {name}" for name, pct in summary["top_self_pct"]]
    lines += ["", "our functions, including what they call:"]
    lines += [f"  {pct:5.1f}%  {name}" for name, pct in summary["our_functions_inclusive_pct"]]
    return "\n".join(lines)


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(f"== {path}")
        print(render(summarize(Path(path).read_text())))
