"""Streaming at Discord's limit: the real bot process against the fake Discord (its own process,
Discord-like rate limits and latency) and the scripted LLM (a third process), driven over HTTP.

    python bench/discord_bench.py            # all scenarios, both backends, budget on and off
    python bench/discord_bench.py --quick    # a smaller run that finishes in under two minutes

Every scenario runs twice per backend, with `DISCORD__WRITE_BUDGET=true` (the write budget) and
`=false` (no scheduling: only discord.py's own rate limiter, the baseline), each on a fresh bot process. Results go to
`bench/results/` as JSON and a markdown table. See bench/README.md for what each figure means.
"""

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_processes import (  # noqa: E402
    REPO_ROOT,
    BotRun,
    Child,
    base_env,
    loop_lags,
    proc_cpu_s,
    proc_status_kb,
    reset_peak_rss,
    start_bot,
    stop_process,
)
from bench.profile_stacks import render as render_profile  # noqa: E402
from bench.profile_stacks import summarize as summarize_profile  # noqa: E402
from bench.streaming_figures import (  # noqa: E402
    FULL,
    INDICATOR,
    MODES,
    QUICK,
    WARMUP,
    Conversation,
    Scenario,
    fmt,
    markdown,
    model_text,
    pct,
    peak_share,
    ratio,
    rnd,
    scenario_floor,
    summary_table,
)

RESULTS_DIR = REPO_ROOT / "bench" / "results"
SAMPLER = "sampler"  # --profile sampler: bench/probe/sitecustomize.py's in-process sampler
POLL_S = 0.25  # how often the bench reads the fakes' request logs
SETTLE_S = 1.0  # after the last final: late writes land, the loop probe flushes
UNFINISHED_FOR_S = 300.0  # a record unfinished this long after newer ones is given up
ORPHAN_WAIT_S = 10.0  # how long a write to an unknown message may wait for its mention's id


# -- talking to the fakes --------------------------------------------------------------------


class Fakes:
    """HTTP clients for the fake Discord's and the scripted LLM's control APIs."""

    def __init__(self, http: aiohttp.ClientSession, discord_url: str, llm_control: str) -> None:
        self.http, self.discord_url, self.llm_control = http, discord_url, llm_control

    async def _post(self, url: str, body: dict) -> Any:
        async with self.http.post(url, json=body) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def _get(self, url: str) -> Any:
        async with self.http.get(url) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def add_channel(self, name: str) -> int:
        return int((await self._post(f"{self.discord_url}/_fake/channels", {"name": name}))["id"])

    async def add_user(self, name: str) -> int:
        return int((await self._post(f"{self.discord_url}/_fake/users", {"name": name}))["id"])

    async def say(self, channel: int, author: int, content: str) -> dict:
        body = {"channel_id": channel, "author_id": author, "content": content}
        return await self._post(f"{self.discord_url}/_fake/messages", body)

    async def messages(self, channel: int) -> list[dict]:
        return await self._get(f"{self.discord_url}/_fake/channels/{channel}/messages")

    async def discord_requests(self, since: int) -> list[dict]:
        return await self._get(f"{self.discord_url}/_fake/requests?since={since}")

    async def script(self, scripts: list[dict]) -> None:
        await self._post(f"{self.llm_control}/_fake/script", {"scripts": scripts})

    async def forget(self, keys: list[str]) -> None:
        await self._post(f"{self.llm_control}/_fake/forget", {"keys": keys})

    async def llm_requests(self, since: int) -> list[dict]:
        return await self._get(f"{self.llm_control}/_fake/requests?since={since}")


class Feed:
    """Reads a request log incrementally. A record still unfinished (a Discord request in
    flight, an LLM response still streaming) keeps the cursor before it, so it is read again."""

    def __init__(self, fetch: Any, finished: Any) -> None:
        self.fetch, self.finished = fetch, finished
        self.cursor = 0
        self._done: set[int] = set()

    async def read(self) -> tuple[list[dict], list[dict]]:
        """(records finished since the last read, records still unfinished)."""
        records = await self.fetch(self.cursor)
        newest = max((r["t"] for r in records), default=0.0)
        fresh = [r for r in records if self.finished(r) and r["index"] not in self._done]
        # One that never finishes (a handler that crashed) must not pin the cursor for good.
        unfinished = [
            r for r in records if not self.finished(r) and newest - r["t"] < UNFINISHED_FOR_S
        ]
        self._done.update(r["index"] for r in fresh)
        self.cursor = unfinished[0]["index"] if unfinished else self.cursor + len(records)
        self._done = {i for i in self._done if i >= self.cursor}
        return fresh, unfinished


# -- one scenario ----------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, fakes: Fakes, bot_user_id: int) -> None:
        self.args = args
        self.fakes = fakes
        self.bot_user_id = bot_user_id
        self.latency = args.latency
        self.recent_context = args.recent_context
        self.discord_feed = Feed(fakes.discord_requests, lambda r: r["status"] != 0)
        self.llm_feed = Feed(fakes.llm_requests, lambda r: r["ended"] is not None)
        self.llm_calls: dict[
            str, dict[int, tuple[float, float | None]]
        ] = {}  # key -> index -> (arrived, ended)
        self.owner: dict[int, Conversation] = {}  # mention or reply message id -> conversation
        self.discord_records: list[dict] = []  # every finished Discord request, for counting
        self.fake_pids: list[int] = []
        self.tags: set[str] = set()
        self.orphans: list[dict] = []  # message writes not yet attributable, oldest first

    async def poll(self) -> None:
        fresh, streaming = await self.llm_feed.read()
        for r in fresh + streaming:
            if r["key"]:
                self.llm_calls.setdefault(r["key"], {})[r["index"]] = (r["t"], r["ended"])
        fresh, _ = await self.discord_feed.read()
        for r in fresh:
            self.discord_records.append(
                {k: r[k] for k in ("method", "path", "status", "t")} | {"index": r["index"]}
            )
        # A reply can reach the fake before `say` has told the bench its mention's id: such
        # writes wait here (in order, briefly) until their message is known.
        newest = max((r["t"] for r in fresh), default=0.0)
        waiting = self.orphans + fresh
        self.orphans = [
            r for r in waiting if not self._apply(r) and newest - r["t"] < ORPHAN_WAIT_S
        ]

    def _apply(self, r: dict) -> bool:
        """Attribute one finished Discord request to the conversation whose reply it writes;
        False for a message write whose message the bench does not know (yet)."""
        parts = r["path"].rstrip("/").split("/")
        if "messages" not in parts:
            return True
        at = r["t"] + self.latency  # the fake applies a request after its latency
        body = r["json"] if isinstance(r["json"], dict) else {}
        if r["method"] == "POST" and parts[-1] == "messages":
            ref = (body.get("message_reference") or {}).get("message_id")
            conv = self.owner.get(int(ref)) if ref else None
            if conv is None:
                return not ref
            if r["status"] == 200 and r["response_id"]:
                message = int(r["response_id"])
                self.owner[message] = conv
                conv.messages.append(message)
                conv.creates += 1
                self._written(conv, at, message, body.get("content") or "")
            return True
        message = int(parts[-1]) if parts[-1].isdigit() else None
        conv = self.owner.get(message) if message is not None else None
        if conv is None or message is None:
            return message is None
        if r["method"] == "PATCH" and r["status"] == 200 and "content" in body:
            conv.edits += 1
            self._written(conv, at, message, body.get("content") or "")
        elif r["method"] == "DELETE" and r["status"] in (200, 204):
            conv.deletes += 1
            conv.messages = [m for m in conv.messages if m != message]
        return True

    def _signs_of_life(self, convs: list[Conversation], records: list[dict]) -> list[float]:
        """Per conversation: mention until its channel shows the bot typing (the first typing
        request there after the mention, whoever it was for) or its first text, if sooner."""
        typing: dict[int, list[float]] = {}
        for r in records:
            parts = r["path"].rstrip("/").split("/")
            if r["method"] == "POST" and parts[-1] == "typing" and r["status"] in (200, 204):
                typing.setdefault(int(parts[-2]), []).append(r["t"] + self.latency)
        out = []
        for c in convs:
            if c.mention_at is None:
                continue
            seen = [t for t in typing.get(c.channel, []) if t >= c.mention_at]
            if c.writes:
                seen.append(c.writes[0][0])
            if seen:
                out.append(min(seen) - c.mention_at)
        return out

    @staticmethod
    def _written(conv: Conversation, at: float, message: int, content: str) -> None:
        conv.writes.append((at, message, content))
        last = conv.messages[-1] if conv.messages else message
        conv.final_at = at if message == last and not content.endswith(INDICATOR) else None

    def _update_streams(self, convs: list[Conversation]) -> None:
        """A conversation's stream is its last LLM request (a retry replaces a failed one)."""
        for conv in convs:
            calls = self.llm_calls.get(conv.key, {})
            if calls:
                conv.stream_start, conv.stream_end = calls[max(calls)]
            conv.llm_requests = len(calls)

    async def run_scenario(self, run: BotRun, scenario: Scenario) -> dict[str, Any]:
        tag = f"{run.tag}{scenario.name}"
        # Script keys and channel names must never repeat within a bench: the scripted LLM
        # answers a key from its queue, and the bench reads its log by key.
        if tag in self.tags:
            raise RuntimeError(f"scenario tag {tag!r} used twice")
        self.tags.add(tag)
        channels = [await self.fakes.add_channel(f"{tag}-{j}") for j in range(scenario.channels)]
        convs = []
        for i, offset in enumerate(scenario.offsets()):
            key = f"q{tag}n{i:04d}z"
            user = await self.fakes.add_user(f"{tag}-u{i}")
            convs.append(
                Conversation(
                    i,
                    key,
                    channels[scenario.channel_of(i)],
                    user,
                    offset,
                    model_text(key, scenario),
                )
            )
        await self.fakes.script(
            [
                {
                    "key": c.key,
                    "text": c.text,
                    "chunk_size": scenario.chunk,
                    "delay_s": 1 / scenario.rate,
                }
                for c in convs
            ]
        )
        await asyncio.sleep(0.3 + 0.005 * len(convs))  # new channels and members reach the bot
        await self.poll()
        first_record = len(self.discord_records)
        load = os.getloadavg()[0]
        pid = run.proc.pid
        rss_reset = reset_peak_rss(pid)
        cpu0 = proc_cpu_s(pid)
        fakes_cpu0 = sum(proc_cpu_s(p) for p in self.fake_pids)
        profiler = self._start_profiler(run, scenario)
        t0 = time.monotonic()

        async def mention(conv: Conversation) -> None:
            await asyncio.sleep(max(0.0, t0 + conv.offset - time.monotonic()))
            conv.mention_at = time.monotonic()
            content = f"<@{self.bot_user_id}> {conv.key} please answer"
            message = await self.fakes.say(conv.channel, conv.user, content)
            conv.mention_id = int(message["id"])
            self.owner[conv.mention_id] = conv

        senders = [asyncio.create_task(mention(c)) for c in convs]
        floor = scenario_floor(scenario, self.latency)
        slowest = float(floor["all_final_after_first_mention"] or 0.0)
        deadline = t0 + slowest + 60  # bounded: a stuck reply ends the wait, not the bench
        done_at = None
        cpu_samples = [(t0, cpu0)]
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(POLL_S)
                if run.proc.poll() is None:
                    cpu_samples.append((time.monotonic(), proc_cpu_s(pid)))
                await self.poll()
                self._update_streams(convs)
                if all(c.final_at is not None and c.stream_end is not None for c in convs):
                    done_at = time.monotonic()
                    break
        finally:
            for task in senders:
                task.cancel()
            for outcome in await asyncio.gather(*senders, return_exceptions=True):
                if isinstance(outcome, Exception):
                    print(f"  a mention could not be sent: {outcome!r}", flush=True)
        end = done_at or time.monotonic()
        cpu = proc_cpu_s(pid) - cpu0 if run.proc.poll() is None else None
        fakes_cpu = sum(proc_cpu_s(p) for p in self.fake_pids) - fakes_cpu0
        hwm = proc_status_kb(pid, "VmHWM") if run.proc.poll() is None else None
        profile = await self._stop_profiler(run, profiler)
        await asyncio.sleep(SETTLE_S)
        await self.poll()
        self._update_streams(convs)
        wrong = await self._wrong_finals(convs)
        # The scripted LLM tries every key it knows on each request: a long run that kept them
        # all would slow the LLM down, scenario after scenario.
        await self.fakes.forget([c.key for c in convs])
        records = self.discord_records[first_record:]
        figures = self._figures(
            run, scenario, convs, records, floor, wrong, t0, end, cpu, fakes_cpu, hwm, rss_reset
        )
        peak = peak_share(cpu_samples)
        figures |= {
            "load_avg_1m": round(load, 2),
            "finished": done_at is not None,
            "bot_peak_cpu_share": round(peak, 2) if peak is not None else None,
        }
        if profile is not None:
            figures["profile"] = profile
        return figures

    def _start_profiler(
        self, run: BotRun, scenario: Scenario
    ) -> tuple[subprocess.Popen[bytes] | None, Path] | None:
        """py-spy sampling the bot during one scenario (not the warm-up)."""
        if not self.args.profile or scenario is WARMUP:
            return None
        out = run.workdir / f"profile-{scenario.name}.txt"
        if self.args.profile == SAMPLER:
            (run.workdir / "sampler-control").write_text(str(out))
            run.proc.send_signal(signal.SIGUSR1)
            return None, out
        cmd = [self.args.profile, "record", "--pid", str(run.proc.pid), "--format", "raw"]
        cmd += ["--rate", "100", "--gil", "--nonblocking", "--nolineno", "--full-filenames"]
        cmd += ["-o", str(out)]
        with (run.workdir / "py-spy.log").open("ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        return proc, out

    async def _stop_profiler(
        self, run: BotRun, profiler: tuple[subprocess.Popen[bytes] | None, Path] | None
    ) -> dict[str, Any] | None:
        if profiler is None:
            return None
        proc, out = profiler
        if proc is None:  # the sampler inside the bot writes its file on SIGUSR2
            run.proc.send_signal(signal.SIGUSR2)
            for _ in range(50):
                if out.exists():
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.2)  # let it finish writing
        else:
            proc.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not out.exists():
            return {"error": f"py-spy wrote nothing; see {out.parent / 'py-spy.log'}"}
        summary = summarize_profile(out.read_text())
        print(f"  profile {out}:\n" + render_profile(summary), flush=True)
        return summary | {"raw": str(out)}

    async def _wrong_finals(self, convs: list[Conversation]) -> list[int]:
        shown: dict[int, str] = {}
        for channel in {c.channel for c in convs}:
            for m in await self.fakes.messages(channel):
                shown[int(m["id"])] = m["content"]
        wrong = []
        for c in convs:
            parts = [shown.get(m, "") for m in c.messages]
            text = "".join(parts) if len(parts) <= 1 else " ".join(" ".join(parts).split())
            expected = c.text if len(parts) <= 1 else " ".join(c.text.split())
            if text != expected:
                wrong.append(c.index)
        return wrong

    def _figures(
        self,
        run: BotRun,
        scenario: Scenario,
        convs: list[Conversation],
        records: list[dict],
        floor: dict[str, float | None],
        wrong: list[int],
        t0: float,
        end: float,
        cpu: float | None,
        fakes_cpu: float,
        hwm_kb: int | None,
        rss_reset: bool,
    ) -> dict[str, Any]:
        first = [
            c.writes[0][0] - c.mention_at for c in convs if c.writes and c.mention_at is not None
        ]
        final = [
            c.final_at - c.stream_end
            for c in convs
            if c.final_at is not None and c.stream_end is not None
        ]
        stale = [c.staleness(scenario, end) for c in convs]
        asked = [
            c.stream_start - c.mention_at
            for c in convs
            if c.stream_start is not None and c.mention_at is not None
        ]
        signs = self._signs_of_life(convs, records)
        messages = sum(len(c.messages) for c in convs)
        deltas = scenario.deltas * len(convs)
        lags = loop_lags(run.probe, t0, end)
        statuses = [r["status"] for r in records]
        return {
            "scenario": scenario.name,
            "backend": run.backend,
            "mode": run.mode,
            "write_budget_applied": run.budget_applied,
            "conversations": len(convs),
            "unfinished": sum(1 for c in convs if c.final_at is None),
            "first_text_s": {"p50": rnd(pct(first, 50)), "p99": rnd(pct(first, 99))},
            "typing_s": {
                "p50": rnd(pct(signs, 50)),
                "p99": rnd(pct(signs, 99)),
                "max": rnd(max(signs, default=None)),
            },
            "llm_request_s": {"p50": rnd(pct(asked, 50)), "p99": rnd(pct(asked, 99))},
            "final_lag_s": {"p50": rnd(pct(final, 50)), "p99": rnd(pct(final, 99))},
            "staleness_s": {"p50": rnd(pct(stale, 50)), "max": rnd(max(stale, default=None))},
            "edits_per_message": rnd(sum(c.edits for c in convs) / messages, 2)
            if messages
            else None,
            "writes": {
                "creates": sum(c.creates for c in convs),
                "edits": sum(c.edits for c in convs),
                "deletes": sum(c.deletes for c in convs),
            },
            "responses_429": statuses.count(429),
            "requests": len(records),
            # Besides the replies' own writes: recent-context reads and status reactions.
            "history_reads": sum(
                1 for r in records if r["method"] == "GET" and r["path"].endswith("/messages")
            ),
            "reactions": sum(1 for r in records if "/reactions/" in r["path"]),
            "wrong_final": len(wrong),
            "llm_requests": sum(c.llm_requests for c in convs),
            "bot_cpu_s": rnd(cpu),
            "bot_cpu_s_per_1k_deltas": rnd(cpu / deltas * 1000) if cpu is not None else None,
            "fakes_cpu_s": rnd(fakes_cpu),
            "peak_rss_mb": rnd(hwm_kb / 1024, 1) if hwm_kb is not None else None,
            "peak_rss_since": "scenario start" if rss_reset else "bot start",
            "loop_lag_s": {
                "p99": rnd(pct(lags, 99)),
                "max": rnd(max(lags, default=None)),
                "samples": len(lags),
            },
            "floor_s": floor,
            "vs_floor": {
                "first_text_p50": ratio(pct(first, 50), floor["first_text_p50"]),
                "first_text_p99": ratio(pct(first, 99), floor["first_text_p99"]),
                "final_lag_p50": ratio(pct(final, 50), floor["final_lag_p50"]),
                "final_lag_p99": ratio(pct(final, 99), floor["final_lag_p99"]),
            },
            "wall_s": rnd(end - t0, 2),
            "timelines": [self._timeline(c, t0) for c in convs],
        }

    @staticmethod
    def _timeline(conv: Conversation, t0: float) -> dict[str, Any]:
        """One reply's story in seconds from the scenario's start, for reading a run later:
        each accepted write as [time, characters shown, final?]."""

        def at(t: float | None) -> float | None:
            return None if t is None else round(t - t0, 3)

        return {
            "mention": at(conv.mention_at),
            "stream": [at(conv.stream_start), at(conv.stream_end)],
            "llm_requests": conv.llm_requests,
            "writes": [
                [at(t), len(text.removesuffix(INDICATOR)), not text.endswith(INDICATOR)]
                for t, _, text in conv.writes
            ],
        }


# -- output ----------------------------------------------------------------------------------


def write_results(result: dict[str, Any], out_dir: Path, quick: bool) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = result["meta"]["started"].replace(":", "").replace("-", "")
    kind = "quick" if quick else "full"
    latest = "latest-quick" if quick else "latest"
    text = json.dumps(result, indent=1)
    table = markdown(result)
    for name in (f"{stamp}-{kind}", latest):
        (out_dir / f"{name}.json").write_text(text + "\n", "utf-8")
        (out_dir / f"{name}.md").write_text(table, "utf-8")
    return out_dir / f"{latest}.md"


README_START = "<!-- bench:start"
README_END = "<!-- bench:end -->"


def update_readme(result: dict[str, Any], readme: Path = REPO_ROOT / "README.md") -> bool:
    """Puts the summary table between the README's bench markers; False if they are missing."""
    text = readme.read_text("utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    meta = result["meta"]
    head = text[: text.index("\n", start) + 1]  # keep the start marker line
    table = (
        f"Measured {meta['started']} at commit `{meta['commit']}` on {meta['cpus']} CPUs "
        f"(load average {max(r['load_avg_1m'] for r in result['runs']):.1f} at worst); each cell: "
        "write budget on / off (no scheduling). Floors and every figure: "
        "[bench/results/latest.md](bench/results/latest.md).\n\n" + summary_table(result) + "\n"
    )
    readme.write_text(head + table + text[end:], "utf-8")
    return True


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


# -- main ------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    scenarios = [s for s in (QUICK if args.quick else FULL) if s.name in args.scenarios]
    if args.conversations:
        scenarios = [
            dataclasses.replace(s, conversations=min(s.conversations, args.conversations))
            for s in scenarios
        ]
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    workroot = Path(tempfile.mkdtemp(prefix="mcpcord-discord-bench-"))
    print(f"logs and bot workdirs: {workroot}", flush=True)
    discord = Child(
        "fake Discord",
        [
            sys.executable,
            "-m",
            "tests.fakes.discord",
            "--rate-limits",
            "--latency",
            str(args.latency),
            "--channel",
            "",
        ],
        workroot / "fake-discord.log",
        base_env(),
    )
    llm = Child(
        "scripted LLM",
        [sys.executable, "-m", "tests.fakes.llm", "--serve", "bench-model"],
        workroot / "llm.log",
        base_env(),
    )
    runs: list[dict[str, Any]] = []
    errors: list[str] = []
    try:
        _, details = await discord.start(2)
        info = json.loads(details)
        _, llm_line = await llm.start(2)
        llm_info = json.loads(llm_line)
        discord_url = info["env"]["FAKE_DISCORD_URL"]
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30), connector=aiohttp.TCPConnector(limit=64)
        ) as http:
            fakes = Fakes(http, discord_url, llm_info["control_url"])
            runner = Bench(args, fakes, int(info["bot_user_id"]))
            runner.fake_pids = [p.pid for p in (discord.proc, llm.proc) if p is not None]
            for backend in args.backends:
                for mode in args.modes:
                    try:
                        runs += await one_bot(
                            runner, backend, mode, scenarios, workroot, info, llm_info
                        )
                    except (RuntimeError, TimeoutError, OSError, aiohttp.ClientError) as exc:
                        # One broken bot must not cost the figures of the others.
                        errors.append(f"{backend}/{mode}: {type(exc).__name__}: {exc}"[:2000])
                        print(f"  FAILED: {errors[-1]}", flush=True)
    finally:
        await discord.stop()
        await llm.stop()
    return {
        "meta": {
            "kind": "quick" if args.quick else "full",
            "started": started,
            "commit": git_commit(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "latency_s": args.latency,
            "recent_context": args.recent_context,
            "deltas": scenarios[0].deltas if scenarios else None,
            "rate": scenarios[0].rate if scenarios else None,
            "command": "python bench/discord_bench.py " + " ".join(sys.argv[1:]),
            "visible_at": "arrival at the fake Discord + its latency (when it applies a write)",
        },
        "floors": {
            s.name: scenario_floor(s, args.latency) | {"description": s.describe()}
            for s in scenarios
        },
        "runs": runs,
        "errors": errors,
    }


async def one_bot(
    runner: Bench,
    backend: str,
    mode: str,
    scenarios: list[Scenario],
    workroot: Path,
    info: dict[str, Any],
    llm_info: dict[str, Any],
) -> list[dict[str, Any]]:
    run = await start_bot(
        backend,
        mode,
        workroot / f"bot-{backend}-{mode}",
        info["env"]["FAKE_DISCORD_URL"],
        info["token"],
        llm_info["base_url"],
        recent_context=runner.recent_context,
    )
    print(
        f"bot {backend}/{mode}: pid {run.proc.pid}"
        + ("" if run.budget_applied else " (no discord.write_budget key: pacing only)"),
        flush=True,
    )
    results = []
    try:
        # One untimed answer first: litellm's and the SDKs' one-time warm-up is not a scenario.
        warm = await runner.run_scenario(run, WARMUP)
        if warm["unfinished"]:
            raise RuntimeError(f"warm-up reply never finished; see {run.workdir / 'bot.log'}")
        for scenario in scenarios:
            figures = await runner.run_scenario(run, scenario)
            results.append(figures)
            print(
                f"  {scenario.name}: first p99 {fmt(figures['first_text_s']['p99'])} s, final lag "
                f"p99 {fmt(figures['final_lag_s']['p99'])} s (floor "
                f"{fmt(figures['floor_s']['final_lag_p99'])}), 429s {figures['responses_429']}, "
                f"wrong {figures['wrong_final']}, unfinished {figures['unfinished']}, "
                f"history GETs {figures['history_reads']}, reactions {figures['reactions']}, "
                f"CPU/1k deltas {fmt(figures['bot_cpu_s_per_1k_deltas'])} s, "
                f"RSS {fmt(figures['peak_rss_mb'], 0)} MB",
                flush=True,
            )
    finally:
        stopping = time.monotonic()
        code = await stop_process(run.proc)
        took = time.monotonic() - stopping
        print(f"  bot exited with {code} {took:.1f} s after SIGTERM", flush=True)
        if code not in (0, None):
            print(f"  see {run.workdir / 'bot.log'}", flush=True)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="chat backend only; s1, s3 with 6 and s4 with 40 conversations (under 2 minutes)",
    )
    parser.add_argument("--backends", default=None, help="comma-separated: chat,responses")
    parser.add_argument("--scenarios", default="s1,s2,s3,s4", help="comma-separated")
    parser.add_argument("--modes", default="budget,baseline", help="budget and/or baseline")
    parser.add_argument(
        "--conversations", type=int, default=0, help="cap each scenario's conversations"
    )
    parser.add_argument("--latency", type=float, default=0.05, help="fake Discord latency (s)")
    parser.add_argument(
        "--recent-context",
        type=int,
        default=0,
        help="discord.recent_context.messages for the bot (0: off, the default config)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--profile",
        nargs="?",
        const="py-spy",
        default=None,
        help="sample the bot during each scenario: with py-spy (optionally: its path), or with "
        f"'{SAMPLER}', a sampler inside the bot (where py-spy cannot read other processes)",
    )
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="put the summary table into README.md's Performance section (full runs only)",
    )
    args = parser.parse_args(argv)
    if args.profile and args.profile != SAMPLER:
        found = shutil.which(args.profile)
        if found is None:
            parser.error(f"--profile: {args.profile!r} not found (pip install py-spy)")
        args.profile = found
    args.backends = (args.backends or ("chat" if args.quick else "chat,responses")).split(",")
    args.scenarios = args.scenarios.split(",")
    args.modes = args.modes.split(",")
    for m in args.modes:
        if m not in MODES:
            parser.error(f"--modes: {m!r} is not one of {', '.join(MODES)}")
    for b in args.backends:
        if b not in ("chat", "responses"):
            parser.error(f"--backends: {b!r} is not chat or responses")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    result = asyncio.run(bench(args))
    path = write_results(result, args.out, args.quick)
    print(markdown(result))
    if args.update_readme:
        if not result["runs"] or args.quick:
            print("README not updated: --update-readme needs a full run with results")
        elif not update_readme(result):
            print("README not updated: its bench markers are missing")
    print(f"written: {path} (and .json); took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
