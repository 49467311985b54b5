"""Measures the bot's event-loop lag from the bench, without touching the bot's code.

The bench puts this directory first on the bot process's PYTHONPATH. Python then imports this
`sitecustomize` at start-up; it runs the fake Discord's own `sitecustomize` (the next file named
in BENCH_NEXT_SITECUSTOMIZE) and, when BENCH_LOOP_PROBE names a file, installs an event-loop
policy whose loops carry a probe: a timer due every PROBE_INTERVAL_S that writes how late it
fired ("<monotonic time> <lag s>" lines, flushed once a second). A late timer is exactly what
every other callback of the loop suffers at that moment, so its lag is the loop's lag.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import runpy
import threading
import time

PROBE_INTERVAL_S = 0.02
FLUSH_EVERY_S = 1.0

_next = os.environ.get("BENCH_NEXT_SITECUSTOMIZE")
if _next:
    runpy.run_path(_next, run_name="sitecustomize")


class _Probe:
    def __init__(self, loop: asyncio.AbstractEventLoop, path: str) -> None:
        self.loop = loop
        self.out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the loop
        self.lines: list[str] = []
        self.flushed_at = time.monotonic()
        self.due = loop.time() + PROBE_INTERVAL_S
        loop.call_at(self.due, self.tick)
        atexit.register(self.flush)

    def tick(self) -> None:
        now = self.loop.time()
        self.lines.append(f"{time.monotonic():.4f} {max(0.0, now - self.due):.4f}\n")
        if now - self.flushed_at >= FLUSH_EVERY_S:
            self.flush()
        self.due = now + PROBE_INTERVAL_S
        self.loop.call_at(self.due, self.tick)

    def flush(self) -> None:
        if self.lines and not self.out.closed:
            self.out.writelines(self.lines)
            self.out.flush()
        self.lines.clear()
        self.flushed_at = self.loop.time()


class _ProbingPolicy(asyncio.DefaultEventLoopPolicy):
    """Probes the main thread's first loop only: the bot's. Libraries may run short loops of
    their own in worker threads (litellm's logging does), whose lag is not the bot's."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path: str | None = path

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        if self.path is not None and threading.current_thread() is threading.main_thread():
            loop.call_soon(_Probe, loop, self.path)
            self.path = None
        return loop


# Popped, so that processes the bot starts (MCP servers) do not write into the same file.
_path = os.environ.pop("BENCH_LOOP_PROBE", None)
if _path:
    asyncio.set_event_loop_policy(_ProbingPolicy(_path))
