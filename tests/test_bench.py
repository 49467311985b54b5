"""The bench's arithmetic: the physical floor, staleness, and where a profile says CPU went."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bench.bench_processes import Child, base_env
from bench.discord_bench import Bench, Fakes, update_readme
from bench.profile_stacks import summarize
from bench.streaming_figures import (
    FULL,
    Conversation,
    Scenario,
    floor_delays,
    pct,
    peak_share,
    scenario_floor,
)

LATENCY = 0.05


def test_floor_lone_reply_is_the_latency() -> None:
    assert floor_delays([(4.0, 1)], LATENCY) == [pytest.approx(LATENCY)]


def test_floor_one_channel_waits_for_the_next_window() -> None:
    # 10 finals at once in one channel: 5 go now, 5 when the 5 s window has passed.
    delays = floor_delays([(0.0, 1)] * 10, LATENCY)
    assert sorted(delays) == pytest.approx([LATENCY] * 5 + [5 + LATENCY] * 5)


def test_floor_global_limit_spills_into_the_next_second() -> None:
    # 60 channels, one write each at the same moment: 50 per second overall.
    delays = floor_delays([(0.0, c) for c in range(60)], LATENCY)
    assert sorted(delays) == pytest.approx([LATENCY] * 50 + [1 + LATENCY] * 10)


def test_scenario_floors() -> None:
    s3 = scenario_floor(Scenario("s3", 10, 1, 0.0), LATENCY)
    assert s3["final_lag_p99"] == pytest.approx(5.05)
    assert s3["final_lag_p50"] == pytest.approx(LATENCY)
    s4 = scenario_floor(Scenario("s4", 200, 50, 4.0), LATENCY)
    assert s4["final_lag_p99"] == pytest.approx(LATENCY)  # 4 per channel, 50/s overall: fits


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 201))
    assert pct(values, 50) == 100
    assert pct(values, 99) == 198
    assert pct([], 99) is None


def test_staleness_counts_only_time_spent_behind_the_model() -> None:
    scenario = Scenario("t", 1, 1, 0.0, deltas=11, rate=10.0, chunk=1)
    conv = Conversation(0, "k", 1, 1, 0.0, "abcdefghijk", stream_start=0.0, stream_end=1.0)
    # Shown: "a" at 0.05, "abcdef" at 0.6, the full text (final) at 2.0.
    conv.writes = [(0.05, 7, "a ▌"), (0.6, 7, "abcdef ▌"), (2.0, 7, "abcdefghijk")]
    conv.messages, conv.final_at = [7], 2.0
    # Behind from 0.1 ("b" streamed) to 0.6; then from 0.6 ("g" was out at 0.6) to 2.0.
    assert conv.staleness(scenario, until=3.0) == pytest.approx(1.4)


def test_profile_shares_go_to_the_outermost_and_innermost_library() -> None:
    loop = "run_forever (/usr/lib/python3.11/asyncio/base_events.py);Handle._run (/usr/lib/python3.11/asyncio/events.py)"
    site = "/venv/lib/python3.11/site-packages"
    text = "\n".join(
        [
            f"{loop};acompletion ({site}/litellm/main.py);construct ({site}/openai/_models.py);"
            f"__getattr__ ({site}/pydantic/main.py) 6",
            f"{loop};acompletion ({site}/litellm/main.py) 2",
            f"{loop};edit ({site}/discord/message.py) 2",
            "run_forever (/usr/lib/python3.11/asyncio/base_events.py);select (/usr/lib/python3.11/selectors.py) 10",
        ]
    )
    summary = summarize(text)
    assert summary["samples"] == 20
    assert dict(summary["share_pct"]) == {
        "litellm": 40.0,
        "discord.py": 10.0,
        "event loop + stdlib": 50.0,
    }
    assert dict(summary["innermost_share_pct"])["openai SDK"] == 30.0


async def test_fakes_as_processes_report_what_the_bench_needs(tmp_path: Path) -> None:
    """The bench's view of the fakes: scripted streams with their real end, and Discord's
    request log read incrementally, naming the messages that requests created."""
    discord = Child(
        "fake Discord",
        [sys.executable, "-m", "tests.fakes.discord", "--rate-limits", "--channel", "general"],
        tmp_path / "discord.log",
        base_env(),
    )
    llm = Child("LLM", [sys.executable, "-m", "tests.fakes.llm"], tmp_path / "llm.log", base_env())
    try:
        url, details = await discord.start(2)
        info = json.loads(details)
        _, llm_details = await llm.start(2)
        llm_info = json.loads(llm_details)
        async with aiohttp.ClientSession() as http:
            fakes = Fakes(http, url, llm_info["control_url"])
            await fakes.script(
                [{"key": "k1", "text": "abcdefgh", "chunk_size": 2, "delay_s": 0.05}]
            )
            body = {
                "model": "test-model",  # the one model the fake serves unless told more
                "stream": True,
                "messages": [{"role": "user", "content": "say k1"}],
            }
            async with http.post(f"{llm_info['base_url']}/chat/completions", json=body) as resp:
                streamed = await resp.text()
            assert streamed.count('"content": "') >= 4 and "[DONE]" in streamed
            (record,) = await fakes.llm_requests(0)
            assert record["key"] == "k1" and record["ended"] - record["t"] >= 0.15
            await fakes.script([{"key": "k2", "text": "unused"}])
            await fakes.forget(["k2"])
            async with http.post(
                f"{llm_info['base_url']}/chat/completions",
                json={**body, "messages": [{"role": "user", "content": "say k2"}]},
            ) as resp:
                assert "unused" not in await resp.text()  # forgotten: an echo instead

            channel = info["channels"][0]
            headers = {"Authorization": f"Bot {info['token']}"}
            sent = []
            for n in range(2):
                async with http.post(
                    f"{url}/api/v10/channels/{channel}/messages",
                    json={"content": f"hi {n}"},
                    headers=headers,
                ) as resp:
                    sent.append((await resp.json())["id"])
            log = await fakes.discord_requests(0)
            assert [r["response_id"] for r in log] == sent
            assert [r["index"] for r in await fakes.discord_requests(1)] == [1]
    finally:
        await discord.stop()
        await llm.stop()


class _CannedLogs:
    """Stands in for the fakes' control APIs: serves request logs the test writes."""

    def __init__(self) -> None:
        self.discord: list[dict] = []
        self.llm: list[dict] = []

    async def discord_requests(self, since: int) -> list[dict]:
        return self.discord[since:]

    async def llm_requests(self, since: int) -> list[dict]:
        return self.llm[since:]

    def write(self, method: str, path: str, t: float, body: dict, created: int | None = None):
        index = len(self.discord)
        self.discord.append(
            {
                "index": index,
                "method": method,
                "path": path,
                "status": 200,
                "json": body,
                "t": t,
                "response_id": str(created) if created else None,
            }
        )


async def test_a_reply_written_before_the_bench_knows_its_mention_is_still_counted() -> None:
    logs = _CannedLogs()
    bench = Bench(
        argparse.Namespace(latency=LATENCY, profile=None, recent_context=0), logs, bot_user_id=1
    )  # type: ignore[arg-type]
    conv = Conversation(0, "k", 5, 9, 0.0, "hello there")
    logs.write(
        "POST",
        "/api/v10/channels/5/messages",
        1.0,
        {"content": "hello ▌", "message_reference": {"message_id": "100"}},
        created=200,
    )
    await bench.poll()  # the reply's create arrives before `say` returned the mention's id
    assert conv.writes == []
    bench.owner[100] = conv
    logs.write("PATCH", "/api/v10/channels/5/messages/200", 2.0, {"content": "hello there"})
    await bench.poll()
    assert [(t, text) for t, _, text in conv.writes] == [
        (1.0 + LATENCY, "hello ▌"),
        (2.0 + LATENCY, "hello there"),
    ]
    assert conv.final_at == 2.0 + LATENCY and conv.creates == 1 and conv.edits == 1


def test_readme_table_is_rewritten_between_its_markers(tmp_path: Path) -> None:
    run = {
        "scenario": "s1",
        "backend": "chat",
        "mode": "budget",
        "first_text_s": {"p99": 0.1},
        "final_lag_s": {"p99": 0.2},
        "vs_floor": {"final_lag_p99": 4.0},
        "staleness_s": {"max": 1.0},
        "responses_429": 0,
        "wrong_final": 0,
        "bot_cpu_s_per_1k_deltas": 0.5,
        "peak_rss_mb": 150.0,
        "loop_lag_s": {"p99": 0.004},
        "load_avg_1m": 1.0,
    }
    result = {
        "meta": {"started": "T", "commit": "abc", "cpus": 2},
        "floors": {"s1": {}},
        "runs": [run],
    }
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- bench:start -->\nold\n<!-- bench:end -->\ntail\n")
    assert update_readme(result, readme) and update_readme(result, readme)
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- bench:end -->\ntail\n")
    assert "| s1 | `chat` | 0.10 / " in text and text.count("| scenario |") == 1
    readme.write_text("no markers\n")
    assert not update_readme(result, readme)


def test_loop_probe_measures_the_main_loop_only(tmp_path: Path) -> None:
    """The bench's sitecustomize times the main thread's loop, not loops in worker threads,
    and a blocking callback shows up as lag. The blocks are long so that load on the machine
    (which only adds lag) cannot make one look like the other."""
    out = tmp_path / "lag.txt"
    code = (
        "import asyncio, threading, time\n"
        "started = threading.Event()\n"
        "async def worker():\n"
        "    started.set()\n"
        "    time.sleep(3.0)  # a worker thread's loop is blocked: not the bot's lag\n"
        "threading.Thread(target=lambda: asyncio.run(worker())).start()\n"
        "started.wait()  # the worker's loop is the process's first\n"
        "async def main():\n"
        "    await asyncio.sleep(0.3)\n"
        "    time.sleep(1.0)  # the main loop is blocked\n"
        "    await asyncio.sleep(0.3)\n"
        "asyncio.run(main())\n"
    )
    env = base_env() | {
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "bench" / "probe"),
        "BENCH_LOOP_PROBE": str(out),
    }
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=30)
    samples = [line.split() for line in out.read_text().splitlines()]
    times = [float(t) for t, _ in samples]
    lags = [float(lag) for _, lag in samples]
    assert times == sorted(times) and len(samples) >= 5  # one loop, ticking
    assert max(lags) >= 0.95  # the main loop's 1 s block shows up...
    assert max(lags) < 2.5  # ...and the worker's 3 s block does not
    assert sum(lag >= 0.95 for lag in lags) == 1  # once


def test_peak_share_is_the_busiest_second_of_a_process() -> None:
    # Idle for 2 s, a whole core for 1 s, then half a core: the peak is the whole core.
    samples = [(t / 10, 0.0) for t in range(21)]
    samples += [(2 + t / 10, t / 10) for t in range(1, 11)]
    samples += [(3 + t / 10, 1 + t / 20) for t in range(1, 21)]
    assert peak_share(samples) == pytest.approx(1.0)
    assert peak_share(samples[:5]) is None  # under a second of samples: no figure


def test_s5_streams_s4s_text_twice_as_fast() -> None:
    s4, s5 = (next(s for s in FULL if s.name == name) for name in ("s4", "s5"))
    assert s5.deltas * s5.chunk == s4.deltas * s4.chunk  # the same answers, the same writes
    assert s5.rate == 2 * s4.rate and s5.stream_s() == pytest.approx(s4.stream_s(), abs=0.05)
