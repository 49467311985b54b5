"""The write budget alone, in virtual time, against Discord's fixed windows.

    python bench/budget_sim.py            # the four bench scenarios in a few seconds

The real bench (discord_bench.py) runs three processes and needs a quiet machine; this runs the
budget's own decisions (bot/discord/streaming/budget.py, unchanged) on a simulated clock, so a change to
its policy can be judged in a second and the figures do not move with the machine's load. Each
conversation acts as the renderer does: a FIRST write at the model's first words, an EDIT one
edit interval after each write while the model streams, a FINAL when the stream ends (an edit
still waiting is withdrawn), and a typing indicator after 0.15 s without words whenever the budget
allows one. A granted request is written a few milliseconds later (when the budget counts it),
reaches Discord `latency` plus a seeded jitter after that, and meets Discord's fixed windows (5
writes per 5 s per channel and 50 requests per second, each window opening at its first request,
as the fake Discord enforces them). Its answer is read a moment after that (up to `jitter` more:
a busy event loop reads late). A refused request is a 429 and is sent again 0.2 s later.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.streaming_figures import (  # noqa: E402
    CHANNEL_BUCKET,
    FULL,
    GLOBAL_BUCKET,
    Scenario,
    pct,
)
from bot.discord.streaming.budget import Counted, Limits, Priority, Ticket, WriteBudget  # noqa: E402
from bot.discord.streaming.typing_indicator import TYPING_DELAY_S, TYPING_RETRY_S  # noqa: E402

TTFT_S = 0.012  # the scripted LLM's first delta, as measured in the bench
SEND_DELAY_S = 0.005  # from a grant to the request being written, at most
RETRY_429_S = 0.2
ANSWER_S = 0.002  # from Discord counting a request to the bot reading its answer, at least


@dataclass
class _Window:
    """A fixed window opening at its first request, like Discord's (and the fake's)."""

    limit: int
    period: float
    count: int = 0
    reset_at: float = -1.0

    def take(self, now: float) -> bool:
        if now >= self.reset_at:
            self.count, self.reset_at = 0, now + self.period
        if self.count >= self.limit:
            return False
        self.count += 1
        return True


@dataclass
class _Reply:
    index: int
    channel: int
    mention: float
    stream_end: float
    ticket: Ticket | None = None
    shown: bool = False
    done: bool = False
    first_at: float | None = None
    typing_at: float | None = None
    final_at: float | None = None
    last_visible: float | None = None
    staleness: float = 0.0


@dataclass
class SimResult:
    first_text: list[float] = field(default_factory=list)
    typing_or_text: list[float] = field(default_factory=list)
    final_lag: list[float] = field(default_factory=list)
    staleness: list[float] = field(default_factory=list)
    responses_429: int = 0
    requests: int = 0
    unfinished: int = 0

    def figures(self) -> dict[str, Any]:
        def p(values: list[float], q: float) -> float | None:
            v = pct(values, q)
            return None if v is None else round(v, 2)

        return {
            "first text p50 / p99": (p(self.first_text, 50), p(self.first_text, 99)),
            "typing or text p99": p(self.typing_or_text, 99),
            "final-text lag p50 / p99": (p(self.final_lag, 50), p(self.final_lag, 99)),
            "staleness max": p(self.staleness, 100),
            "429s": self.responses_429,
            "requests": self.requests,
            "unfinished": self.unfinished,
        }


class Simulation:
    def __init__(
        self,
        scenario: Scenario,
        *,
        limits: Limits | None = None,
        latency_s: float = 0.05,
        jitter_s: float = 0.02,
        edit_interval_s: float = 1.0,
        seed: int = 1,
    ) -> None:
        self.scenario = scenario
        self.budget = WriteBudget(limits or Limits())
        self.latency_s, self.jitter_s, self.interval_s = latency_s, jitter_s, edit_interval_s
        self.random = random.Random(seed)
        self.events: list[tuple[float, int, Callable[[float], None]]] = []
        self.order = itertools.count()
        self.global_window = _Window(*GLOBAL_BUCKET)
        self.channel_windows: dict[int, _Window] = {}
        self.result = SimResult()
        self.wake_generation = 0
        self.replies = [
            _Reply(i, scenario.channel_of(i), at, at + TTFT_S + scenario.stream_s())
            for i, at in enumerate(scenario.offsets())
        ]

    def run(self) -> SimResult:
        for reply in self.replies:
            self._at(reply.mention, lambda now, r=reply: self._start(now, r))
        while self.events:
            now, _, action = heapq.heappop(self.events)
            action(now)
        for r in self.replies:
            if r.final_at is None or r.first_at is None:
                self.result.unfinished += 1
                continue
            self.result.first_text.append(r.first_at - r.mention)
            shown = min(r.first_at, r.typing_at if r.typing_at is not None else r.first_at)
            self.result.typing_or_text.append(shown - r.mention)
            self.result.final_lag.append(r.final_at - r.stream_end)
            self.result.staleness.append(r.staleness)
        return self.result

    # -- the renderer's side -------------------------------------------------------------------

    def _at(self, when: float, action: Callable[[float], None]) -> None:
        heapq.heappush(self.events, (when, next(self.order), action))

    def _start(self, now: float, reply: _Reply) -> None:
        self.budget.expect_first(reply.channel, reply.index)
        self._at(now + TTFT_S, lambda t: self._ask(t, reply, Priority.FIRST))
        self._at(now + TYPING_DELAY_S, lambda t: self._type(t, reply))
        self._at(reply.stream_end, lambda t: self._finish(t, reply))

    def _ask(self, now: float, reply: _Reply, priority: Priority) -> None:
        if reply.done or reply.ticket is not None:
            return
        reply.ticket = self.budget.submit(reply.channel, reply.index, priority)
        self._pump(now)

    def _finish(self, now: float, reply: _Reply) -> None:
        reply.done = True
        if reply.ticket is not None:
            self.budget.cancel(reply.ticket)
        reply.ticket = self.budget.submit(reply.channel, reply.index, Priority.FINAL)
        self._pump(now)

    def _type(self, now: float, reply: _Reply) -> None:
        if reply.shown or reply.done:
            return
        if self.budget.may_type(now):
            self._send(now, reply, "typing")
        else:
            self._at(now + TYPING_RETRY_S, lambda t: self._type(t, reply))

    def _pump(self, now: float) -> None:
        for ticket in self.budget.grant(now):
            reply = self.replies[ticket.reply_id]
            reply.ticket = None
            if ticket.priority is Priority.FINAL:
                self._send(now, reply, "final")
                continue
            reply.shown = True  # the renderer stops typing once its first write is under way
            self._send(now, reply, "write")
            self._at(now + self.interval_s, lambda t, r=reply: self._ask(t, r, Priority.EDIT))
        # One wake-up pending at a time, as WriteScheduler keeps one timer.
        self.wake_generation += 1
        wake = self.budget.next_wake(now)
        if wake is not None:
            generation = self.wake_generation
            self._at(max(wake, now + 1e-4), lambda t: self._wake(t, generation))

    def _wake(self, now: float, generation: int) -> None:
        if generation == self.wake_generation:
            self._pump(now)

    # -- the wire and Discord ------------------------------------------------------------------

    def _send(self, now: float, reply: _Reply, kind: str) -> None:
        written = now + self.random.uniform(0, SEND_DELAY_S)

        def write(t: float) -> None:
            if kind == "typing":
                counted = self.budget.note_other_request(t, typing=True)
            else:
                counted = self.budget.note_write(reply.channel, t)
            arrival = t + self.latency_s + self.random.uniform(0, self.jitter_s)
            answer = arrival + ANSWER_S + self.random.uniform(0, self.jitter_s)
            self._at(arrival, lambda a: self._arrive(a, reply, kind))
            self._at(answer, lambda a: self._answered(a, counted))

        self._at(written, write)

    def _answered(self, now: float, counted: Counted) -> None:
        self.budget.answered(counted, now)
        self._pump(now)

    def _arrive(self, now: float, reply: _Reply, kind: str) -> None:
        self.result.requests += 1
        accepted = self.global_window.take(now)
        if accepted and kind != "typing":
            window = self.channel_windows.setdefault(reply.channel, _Window(*CHANNEL_BUCKET))
            accepted = window.take(now)
        if not accepted:
            self.result.responses_429 += 1
            self._at(now + RETRY_429_S, lambda t: self._send(t, reply, kind))
            return
        if kind == "typing":
            reply.typing_at = reply.typing_at or now
            return
        if reply.last_visible is not None:
            reply.staleness = max(reply.staleness, now - reply.last_visible)
        reply.last_visible = now
        if reply.first_at is None:
            reply.first_at = now
            self.budget.shown(reply.channel, reply.index)
        if kind == "final":
            reply.final_at = now
            self.budget.finish(reply.channel, reply.index)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--jitter", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    for scenario in FULL:
        sim = Simulation(scenario, latency_s=args.latency, jitter_s=args.jitter, seed=args.seed)
        print(f"{scenario.name} ({scenario.describe()}): {sim.run().figures()}")


if __name__ == "__main__":
    main()
