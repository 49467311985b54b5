"""What a streaming bench run means: its scenarios, the physical floor, staleness, percentiles
and the markdown table. Pure functions of recorded times, so tests can check the arithmetic."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

INDICATOR = " ▌"  # the bot's streaming indicator: a write without it is a reply's final text
CHANNEL_BUCKET = (5, 5.0)  # message creates+edits per channel, as the fake enforces them
GLOBAL_BUCKET = (50, 1.0)  # requests per bot
MODES = {"budget": "true", "baseline": "false"}  # DISCORD__WRITE_BUDGET per mode


@dataclass(frozen=True)
class Scenario:
    name: str
    conversations: int
    channels: int
    spread_s: float  # mentions evenly spread over this many seconds
    deltas: int = 120
    rate: float = 30.0  # deltas per second
    chunk: int = 8  # characters per delta: 120 x 8 = 960 characters, one Discord message

    def describe(self) -> str:
        where = "one channel" if self.channels == 1 else f"{self.channels} channels"
        when = "at once" if not self.spread_s else f"mentions spread over {self.spread_s:g} s"
        many = "conversation" if self.conversations == 1 else "conversations"
        return f"{self.conversations} {many} in {where}, {when}"

    def offsets(self) -> list[float]:
        n = self.conversations
        return [self.spread_s * i / n for i in range(n)]

    def channel_of(self, i: int) -> int:
        return i % self.channels

    def stream_s(self) -> float:
        return (self.deltas - 1) / self.rate


FULL = [
    Scenario("s1", 1, 1, 0.0),
    Scenario("s2", 50, 10, 2.0),
    Scenario("s3", 10, 1, 0.0),
    Scenario("s4", 200, 50, 4.0),
    # s4's answers from a model twice as fast: the same text and Discord writes, 12,000 deltas
    # a second. Run only when named (--scenarios s5).
    Scenario("s5", 200, 50, 4.0, deltas=240, rate=60.0, chunk=4),
]
# --quick: one backend (chat, the heavier one) and three smaller scenarios that still exercise
# each regime: a lone reply, a crowded channel (6 > 5 writes per window), many channels.
QUICK = [
    Scenario("s1", 1, 1, 0.0),
    Scenario("s3", 6, 1, 0.0),
    Scenario("s4", 40, 10, 1.0),
]
WARMUP = Scenario("warmup", 1, 1, 0.0, deltas=10)


# -- small statistics ------------------------------------------------------------------------


def pct(values: Iterable[float], p: float) -> float | None:
    """Nearest-rank percentile (p99 of 200 values is the 198th); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def rnd(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def ratio(value: float | None, floor: float | None) -> float | None:
    if value is None or not floor:
        return None
    return round(value / floor, 2)


# -- the physical floor ----------------------------------------------------------------------


class _Window:
    """A fixed window that opens at its first request, as the fake Discord models a bucket."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self.count, self.start, self.reset_at = 0, -math.inf, -math.inf

    def free_at(self, t: float) -> float:
        """The earliest time from t a request fits. Writes are placed in release order, so one
        released before the current window opened missed the earlier, full windows."""
        t = max(t, self.start)
        if t >= self.reset_at or self.count < self.limit:
            return t
        return self.reset_at

    def take(self, t: float) -> None:
        if t >= self.reset_at:
            self.count, self.start, self.reset_at = 0, t, t + self.period
        self.count += 1


def floor_delays(releases: list[tuple[float, int]], latency_s: float) -> list[float]:
    """For writes that may go at (time, channel), the earliest each can be visible, minus its
    release: one request per write, sent as soon as its channel's bucket and the global limit
    allow, in release order; a request is visible `latency_s` after it is sent."""
    channels: dict[int, _Window] = {}
    global_window = _Window(*GLOBAL_BUCKET)
    delays: list[float] = [0.0] * len(releases)
    for i in sorted(range(len(releases)), key=lambda i: releases[i][0]):
        release, channel = releases[i]
        window = channels.setdefault(channel, _Window(*CHANNEL_BUCKET))
        t = release
        while (free := max(window.free_at(t), global_window.free_at(t))) > t:
            t = free
        window.take(t)
        global_window.take(t)
        delays[i] = t + latency_s - release
    return delays


def scenario_floor(scenario: Scenario, latency_s: float) -> dict[str, float | None]:
    """Final texts: one create per conversation at its stream's scheduled end. First texts: one
    create per conversation at its mention (the model's first words come at once)."""
    offsets = scenario.offsets()
    channel = [scenario.channel_of(i) for i in range(len(offsets))]
    final = floor_delays(
        [(o + scenario.stream_s(), c) for o, c in zip(offsets, channel, strict=True)], latency_s
    )
    first = floor_delays(list(zip(offsets, channel, strict=True)), latency_s)
    return {
        "final_lag_p50": rnd(pct(final, 50)),
        "final_lag_p99": rnd(pct(final, 99)),
        "final_lag_max": rnd(max(final)),
        "first_text_p50": rnd(pct(first, 50)),
        "first_text_p99": rnd(pct(first, 99)),
        "all_final_after_first_mention": rnd(
            max(o + scenario.stream_s() + d for o, d in zip(offsets, final, strict=True))
        ),
    }


# -- one conversation ------------------------------------------------------------------------


def model_text(key: str, scenario: Scenario) -> str:
    """Exactly deltas x chunk characters of plain words, starting with the key, no markdown."""
    size = scenario.deltas * scenario.chunk
    words = [key] + [f"word{j}" for j in range(size)]
    text = " ".join(words)[:size]
    return text[:-1] + "." if text.endswith(" ") else text


@dataclass
class Conversation:
    index: int
    key: str
    channel: int
    user: int
    offset: float
    text: str
    mention_id: int | None = None
    mention_at: float | None = None
    stream_start: float | None = None
    stream_end: float | None = None
    llm_requests: int = 0
    messages: list[int] = field(default_factory=list)  # the reply's parts, in order
    # (visible at, message id, content) for every accepted create and edit
    writes: list[tuple[float, int, str]] = field(default_factory=list)
    creates: int = 0
    edits: int = 0
    deletes: int = 0
    final_at: float | None = None

    def shown_chars(self, content_by_message: dict[int, str]) -> int:
        return sum(len(c.removesuffix(INDICATOR)) for c in content_by_message.values())

    def produced_chars(self, t: float, scenario: Scenario) -> int:
        """How much of its text the model had streamed at t (deltas spaced evenly between
        the stream's measured start and end)."""
        if self.stream_start is None or t < self.stream_start:
            return 0
        end = self.stream_end if self.stream_end is not None else math.inf
        span = max(end - self.stream_start, 1e-9)
        sent = 1 + int((t - self.stream_start) / span * (scenario.deltas - 1))
        return min(len(self.text), sent * scenario.chunk)

    def behind_from(self, shown: int, scenario: Scenario) -> float:
        """When the model first had more than `shown` characters out (inf: never)."""
        if self.stream_start is None or shown >= len(self.text):
            return math.inf
        delta = shown // scenario.chunk  # 0-based index of the first delta not shown
        if self.stream_end is None:
            return self.stream_start + delta / scenario.rate
        return self.stream_start + delta / (scenario.deltas - 1) * (
            self.stream_end - self.stream_start
        )

    def staleness(self, scenario: Scenario, until: float) -> float:
        """Longest time the reply stood still while the model had more text than it showed."""
        if not self.writes:
            return 0.0
        content: dict[int, str] = {}
        worst = 0.0
        for n, (at, message, text) in enumerate(self.writes):
            content[message] = text
            if n + 1 < len(self.writes):
                next_at = self.writes[n + 1][0]
            else:
                next_at = until if self.final_at is None else at
            behind = max(at, self.behind_from(self.shown_chars(content), scenario))
            worst = max(worst, next_at - behind)
        return worst


# -- output ----------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def pair(a: Any, b: Any, digits: int = 2) -> str:
    return f"{fmt(a, digits)} / {fmt(b, digits)}"


ROWS: list[tuple[str, Any]] = [
    (
        "first text p50 / p99 (s)",
        lambda r: pair(r["first_text_s"]["p50"], r["first_text_s"]["p99"]),
    ),
    ("first text p99 ÷ floor", lambda r: fmt(r["vs_floor"]["first_text_p99"], 1)),
    (
        "typing (or text) p50 / p99 / max (s)",
        lambda r: " / ".join(
            fmt(r["typing_s"].get(q))
            for q in ("p50", "p99", "max")  # older results: no max
        ),
    ),
    (
        "LLM asked p50 / p99 (s)",
        lambda r: pair(r["llm_request_s"]["p50"], r["llm_request_s"]["p99"]),
    ),
    (
        "final-text lag p50 / p99 (s)",
        lambda r: pair(r["final_lag_s"]["p50"], r["final_lag_s"]["p99"]),
    ),
    (
        "final-text lag p50 / p99 ÷ floor",
        lambda r: pair(r["vs_floor"]["final_lag_p50"], r["vs_floor"]["final_lag_p99"], 1),
    ),
    ("staleness p50 / max (s)", lambda r: pair(r["staleness_s"]["p50"], r["staleness_s"]["max"])),
    ("edits per message", lambda r: fmt(r["edits_per_message"])),
    ("429 responses", lambda r: fmt(r["responses_429"])),
    ("history reads (GET messages)", lambda r: fmt(r.get("history_reads"))),
    ("status reactions (PUT/DELETE)", lambda r: fmt(r.get("reactions"))),
    ("wrong final texts", lambda r: fmt(r["wrong_final"])),
    ("unfinished replies", lambda r: fmt(r["unfinished"])),
    ("bot CPU s per 1,000 deltas", lambda r: fmt(r["bot_cpu_s_per_1k_deltas"])),
    ("bot peak CPU (share of one core, any 1 s)", lambda r: fmt(r.get("bot_peak_cpu_share"))),
    ("bot peak RSS (MB)", lambda r: fmt(r["peak_rss_mb"], 0)),
    (
        "event-loop lag p99 / max (s)",
        lambda r: pair(r["loop_lag_s"]["p99"], r["loop_lag_s"]["max"], 3),
    ),
    ("fakes' CPU s (Discord + LLM)", lambda r: fmt(r["fakes_cpu_s"])),
    ("load average (1 min) at start", lambda r: fmt(r["load_avg_1m"])),
]


SUMMARY: list[tuple[str, Any, int]] = [
    ("first text p99 (s)", lambda r: r["first_text_s"]["p99"], 2),
    ("final-text lag p99 (s)", lambda r: r["final_lag_s"]["p99"], 2),
    ("÷ floor", lambda r: r["vs_floor"]["final_lag_p99"], 1),
    ("staleness max (s)", lambda r: r["staleness_s"]["max"], 2),
    ("429s", lambda r: r["responses_429"], 0),
    ("wrong finals", lambda r: r["wrong_final"], 0),
    ("CPU s / 1k deltas", lambda r: r["bot_cpu_s_per_1k_deltas"], 2),
    ("peak CPU (1 core = 1)", lambda r: r.get("bot_peak_cpu_share"), 2),
    ("peak RSS (MB)", lambda r: r["peak_rss_mb"], 0),
    ("loop lag p99 (s)", lambda r: r["loop_lag_s"]["p99"], 3),
]


def summary_table(result: dict[str, Any]) -> str:
    """One row per scenario and backend; each cell "budget / baseline"."""
    runs = result["runs"]
    backends = list(dict.fromkeys(r["backend"] for r in runs))
    lines = [
        "| scenario | backend | " + " | ".join(label for label, _, _ in SUMMARY) + " |",
        "|---|---|" + "---|" * len(SUMMARY),
    ]
    for name in result["floors"]:
        for backend in backends:
            hits = {r["mode"]: r for r in runs if r["scenario"] == name and r["backend"] == backend}
            if not hits:
                continue
            cells = []
            for _, get, digits in SUMMARY:
                values = [fmt(get(hits[m]), digits) if m in hits else "" for m in MODES]
                cells.append(" / ".join(values))
            lines.append(f"| {name} | `{backend}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [
        f"# Discord streaming bench ({meta['kind']}, {meta['started']})",
        "",
        f"Commit `{meta['commit']}`; {meta['cpus']} CPUs; fake Discord latency "
        f"{meta['latency_s']:g} s with Discord-like limits (5 message writes per 5 s per channel, "
        f"50 requests/s); scripted LLM: {meta['deltas']} deltas at {meta['rate']:g}/s. "
        "Each backend ran with the write budget on (**budget**) and off (**baseline**: no "
        "scheduling), on fresh bot processes in the same run. Bot config: the defaults "
        "(status reactions and the Stop button on)"
        + (
            f", `discord.recent_context.messages: {meta['recent_context']}`."
            if meta.get("recent_context")
            else ", recent context off."
        ),
    ]
    if not all(r["write_budget_applied"] for r in result["runs"]):
        lines += [
            "",
            "**Note:** this bot has no `discord.write_budget` key yet; both columns ran the same "
            "code.",
        ]
    runs = result["runs"]
    backends = list(dict.fromkeys(r["backend"] for r in runs))
    lines += ["", "## Summary (each cell: budget / baseline)", "", summary_table(result)]
    for name, floor_info in result["floors"].items():
        scen = [r for r in runs if r["scenario"] == name]
        if not scen:
            continue
        lines += [
            "",
            f"## {name}: {floor_info['description']}",
            "",
            f"Physical floor: final text {fmt(floor_info['final_lag_p50'])} / "
            f"{fmt(floor_info['final_lag_p99'])} s after the stream ends (p50 / p99), first text "
            f"{fmt(floor_info['first_text_p50'])} / {fmt(floor_info['first_text_p99'])} s after "
            f"the mention; everything final {fmt(floor_info['all_final_after_first_mention'])} s "
            "after the first mention.",
            "",
        ]
        cols = [(b, m) for b in backends for m in MODES]
        lines.append("| figure | " + " | ".join(f"`{b}` {m}" for b, m in cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        for label, get in ROWS:
            cells = []
            for b, m in cols:
                hit = next((r for r in scen if r["backend"] == b and r["mode"] == m), None)
                cells.append(get(hit) if hit else "")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if result.get("errors"):
        lines += ["", "**Failed runs:**", ""] + [f"- {e.splitlines()[0]}" for e in result["errors"]]
    lines += ["", f"Reproduce: `{meta['command']}`", ""]
    return "\n".join(lines)


def peak_share(samples: list[tuple[float, float]], window_s: float = 1.0) -> float | None:
    """The most CPU a process used in any `window_s` or more, as a share of one core, from
    (time, CPU seconds so far) samples in time order."""
    best = None
    start = 0
    for end in range(len(samples)):
        while start + 1 < end and samples[end][0] - samples[start + 1][0] >= window_s:
            start += 1
        span = samples[end][0] - samples[start][0]
        if span >= window_s:
            share = (samples[end][1] - samples[start][1]) / span
            best = share if best is None else max(best, share)
    return best
