"""Two shard processes of one bot token, one fake Discord: what Discord's global limit does to them.

Discord's 50 requests/s belong to the token. This bench runs s4's load (200 answers in 50
channels over 4 s, 120 deltas of 8 characters at 30/s each) split over two shard processes of
one bot against one fake Discord that enforces the 50/s per token, in three modes:

- `share`: the default without any service: each process plans its shards' share (25/s);
- `redis`: `coordination.redis_url` set: one window in Redis for both;
- `whole`: both processes forced to plan the whole 50/s (`discord.global_rate_limit: 50`), as
  every process did before shares existed: the 429s that the other two modes avoid.

It reports per mode the 429s (global and per channel), answers whose final text is exact,
unfinished ones, and time from the mention to the first and to the final text (p50/p99). The
fakes run in this process; the two bots are their own processes, all at the same priority.

    python bench/shard_bench.py                       # all three modes, results in bench/results
    python bench/shard_bench.py --modes share,whole --conversations 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.harness import INDICATOR, Chat  # noqa: E402
from tests.e2e.shards import story, two_shards  # noqa: E402
from tests.fakes.llm import ScriptedLLM, Text  # noqa: E402
from tests.redis_service import SHARED_URL, drop_prefix, own_prefix, shared_redis  # noqa: E402

RESULTS_DIR = REPO_ROOT / "bench" / "results"
POLL_S = 0.25  # the fakes share this process: reading them often would slow them down


def p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)], 2)


async def run_mode(mode: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    llm = ScriptedLLM()
    await llm.start()
    overrides: dict[str, Any] = {}
    prefix = None
    if mode == "redis":
        prefix = own_prefix()
        overrides["coordination"] = {"redis_url": args.redis_url, "prefix": prefix}
    elif mode == "whole":
        overrides["discord"] = {"global_rate_limit": 50}
    channels = args.conversations // (2 * args.per_channel)
    try:
        async with two_shards(llm, workdir / mode, channels, overrides) as world:
            world.discord.latency_s = args.latency
            chats: list[Chat] = [chat for shard in world.chats for chat in shard]
            # One untimed question per process first: litellm's one-time set-up is no scenario.
            for shard, shard_chats in enumerate(world.chats):
                warm = f"b{mode}-warm{shard}"
                llm.script(warm, Text("ready"))
                asked = await shard_chats[0].say(f"{warm} go")
                await shard_chats[0].answer(int(asked["id"]), timeout=60)
            asks: list[tuple[Chat, str, str]] = []
            for n in range(args.per_channel):
                for c, chat in enumerate(chats):
                    marker = f"b{mode}-{c}-{n}"
                    text = story(f"{c}x{n}", args.words)
                    llm.script(marker, Text(text, chunk_size=8, delay_s=1 / args.rate))
                    asks.append((chat, marker, text))
            users = [world.discord.add_user(marker) for _, marker, _ in asks]
            gap = args.spread / len(asks)
            t0 = time.monotonic()
            mentioned: dict[int, float] = {}
            first: dict[int, float] = {}
            final: dict[int, float] = {}
            ask_ids: dict[int, int] = {}

            async def mention(i: int) -> None:
                await asyncio.sleep(i * gap)
                chat, marker, _ = asks[i]
                message = await chat.say(f"{marker} go", user=users[i])
                mentioned[i] = time.monotonic()
                ask_ids[i] = int(message["id"])

            senders = asyncio.gather(*(mention(i) for i in range(len(asks))))
            give_up = t0 + args.spread + args.words * 2 / args.rate + 60
            while time.monotonic() < give_up and len(final) < len(asks):
                await asyncio.sleep(POLL_S)
                now = time.monotonic()
                for i, message_id in list(ask_ids.items()):
                    if i in final:
                        continue
                    parts = asks[i][0].replies_to(message_id)
                    if parts and i not in first:
                        first[i] = now
                    text = "\n".join(part["content"] for part in parts)
                    if parts and not text.endswith(INDICATOR) and INDICATOR not in text:
                        final[i] = now
            await senders
            counters = dict(world.discord.counters)
            exact = sum(
                1
                for i, message_id in ask_ids.items()
                if "\n".join(p["content"] for p in asks[i][0].replies_to(message_id)) == asks[i][2]
            )
    finally:
        await llm.stop()
        if prefix is not None:
            client = await shared_redis()
            await drop_prefix(client, prefix)
            await client.aclose()
    firsts = [first[i] - mentioned[i] for i in first]
    finals = [final[i] - mentioned[i] for i in final]
    return {
        "mode": mode,
        "answers": len(asks),
        "exact_finals": exact,
        "unfinished": len(asks) - len(final),
        "global_429": counters.get("global_429", 0),
        "all_429": counters.get("429", 0),
        "writes": counters.get("messages_created", 0) + counters.get("messages_edited", 0),
        "typing": counters.get("typing", 0),
        "reactions": counters.get("reactions_added", 0),
        "first_text_p50_s": p(firsts, 0.5),
        "first_text_p99_s": p(firsts, 0.99),
        "final_text_p50_s": p(finals, 0.5),
        "final_text_p99_s": p(finals, 0.99),
        "stream_s": round(statistics.mean(len(a[2]) for a in asks) / 8 / args.rate, 2),
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| mode | answers | exact finals | unfinished | 429 (global) | writes | typing | "
        "reactions | first text p50 / p99 (s) | final text p50 / p99 (s) |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    return head + "".join(
        f"| {r['mode']} | {r['answers']} | {r['exact_finals']} | {r['unfinished']} | "
        f"{r['all_429']} ({r['global_429']}) | {r['writes']} | {r['typing']} | {r['reactions']} | "
        f"{r['first_text_p50_s']} / {r['first_text_p99_s']} | "
        f"{r['final_text_p50_s']} / {r['final_text_p99_s']} |\n"
        for r in rows
    )


async def main(args: argparse.Namespace) -> int:
    rows = []
    with tempfile.TemporaryDirectory(prefix="shard-bench-") as tmp:
        for mode in args.modes.split(","):
            row = await run_mode(mode, args, Path(tmp))
            print(json.dumps(row), flush=True)
            rows.append(row)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    (args.out / f"shards-{stamp}.json").write_text(
        json.dumps({"settings": settings, "rows": rows}, indent=1) + "\n"
    )
    text = f"# Two shard processes, one token ({stamp})\n\n{table(rows)}"
    (args.out / f"shards-{stamp}.md").write_text(text)
    print(text)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="share,redis,whole")
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--per-channel", type=int, default=4, help="answers per channel")
    parser.add_argument("--spread", type=float, default=4.0, help="mentions over this many s")
    parser.add_argument("--words", type=int, default=140, help="about 7 characters each")
    parser.add_argument("--rate", type=float, default=30.0, help="deltas per second")
    parser.add_argument("--latency", type=float, default=0.05, help="fake Discord latency (s)")
    parser.add_argument("--redis-url", default=SHARED_URL)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
