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
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

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


# Innermost Python frames of a thread that waits in C: the event loop's select(), a lock, and
# the work queues of thread pools and aiosqlite's connection thread.
IDLE_FRAMES = {
    ("select", "selectors.py"),
    ("wait", "threading.py"),
    ("_worker", "thread.py"),
    ("_connection_worker_thread", "core.py"),
}


class _Sampler:
    """A stack sampler inside the bot, for machines where py-spy cannot read another process.
    SIGUSR1 starts it, SIGUSR2 writes the stacks seen (py-spy's raw format: frames from the
    root down, then a count) to the path named in the control file, and stops. Samples where
    the main thread waits in select() are idle time and are not counted, like py-spy --gil."""

    INTERVAL_S = 0.01

    def __init__(self, control: str) -> None:
        self.control = control
        self.stacks: dict[str, int] = {}
        self.running = threading.Event()
        signal.signal(signal.SIGUSR1, lambda *_: self.start())
        signal.signal(signal.SIGUSR2, lambda *_: self.stop())

    def start(self) -> None:
        if self.running.is_set():
            return
        self.stacks = {}
        self.running.set()
        threading.Thread(target=self.run, name="bench-sampler", daemon=True).start()

    def run(self) -> None:
        me = threading.get_ident()
        while self.running.is_set():
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                top = frame.f_code
                if (top.co_name, Path(top.co_filename).name) in IDLE_FRAMES:
                    continue  # waiting for I/O, on a lock or for work: not CPU
                names = []
                f: Any = frame
                while f is not None:
                    names.append(f"{f.f_code.co_qualname} ({f.f_code.co_filename})")
                    f = f.f_back
                key = ";".join(reversed(names))
                self.stacks[key] = self.stacks.get(key, 0) + 1
            time.sleep(self.INTERVAL_S)

    def stop(self) -> None:
        self.running.clear()
        with open(self.control, encoding="utf-8") as control:
            path = control.read().strip()
        with open(path, "w", encoding="utf-8") as out:
            out.writelines(f"{stack} {count}\n" for stack, count in list(self.stacks.items()))


_sample_control = os.environ.pop("BENCH_SAMPLER_CONTROL", None)
if _sample_control:
    _Sampler(_sample_control)
