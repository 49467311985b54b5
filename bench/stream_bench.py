"""Streaming into Discord: how fast the first words show, how often replies are edited, and
whether Discord's per-channel rate limit is respected. Runs the real bot process against the
fake Discord (rate limits on: 5 message requests per 5 s per channel) and the scripted LLM.

    python bench/stream_bench.py            # prints a table; takes about a minute
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import bot_config  # noqa: E402
from tests.e2e.harness import INDICATOR, BotProcess, Chat  # noqa: E402
from tests.fakes.discord import FakeDiscord  # noqa: E402
from tests.fakes.llm import ScriptedLLM, Text  # noqa: E402


async def one_answer(
    discord: FakeDiscord,
    llm: ScriptedLLM,
    chat: Chat,
    key: str,
    text: str,
    chunk: int,
    delay: float,
) -> dict[str, float]:
    llm.script(key, Text(text, chunk_size=chunk, delay_s=delay))
    started = time.monotonic()
    asked = await chat.say(f"{key} go", user=discord.add_user(key))
    first = await discord.wait_for(lambda: chat.replies_to(int(asked["id"])), timeout=60)
    first_at = time.monotonic()
    await chat.answer(int(asked["id"]), lambda t: t.split() == text.split(), timeout=120)
    final_at = time.monotonic()
    stream_end = llm.requests_for(key)[0].t + (len(text) / chunk) * delay
    parts = chat.replies_to(int(asked["id"]))
    edits = [r for p in parts for r in discord.requests_to("PATCH", f"/messages/{p['id']}")]
    times = sorted(r.t for r in edits)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert first and not parts[-1]["content"].endswith(INDICATOR)
    return {
        "first_visible_s": first_at - started,
        "final_after_stream_s": max(0.0, final_at - stream_end),
        "parts": len(parts),
        "edits": len(edits),
        "median_edit_gap_s": statistics.median(gaps) if gaps else 0.0,
    }


async def main() -> None:
    llm = ScriptedLLM()
    await llm.start()
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    workdir = Path(tempfile.mkdtemp(prefix="mcpcord-bench-"))
    config = bot_config(llm, workdir, workdir / "calls.jsonl", "chat", mcp={"servers": {}})
    config["limits"] = {"user_concurrent_turns": 50, "user_turns_per_minute": 1000}
    bot = BotProcess(discord, config, workdir)
    await bot.start()
    try:
        print("scenario                         first(s) final-after-end(s) parts edits gap(s)")
        words = " ".join(f"word{i}" for i in range(400))  # ~3,500 chars
        for name, chunk, delay in (
            ("3.5k chars over ~6 s", 20, 0.035),
            ("3.5k chars in one burst", 4000, 0.0),
        ):
            chat = Chat(discord, "bench")
            r = await one_answer(discord, llm, chat, f"b-{chunk}", words, chunk, delay)
            print(
                f"{name:32} {r['first_visible_s']:8.2f} {r['final_after_stream_s']:18.2f} "
                f"{r['parts']:5d} {r['edits']:5d} {r['median_edit_gap_s']:6.2f}"
            )
        # Ten answers streaming at once into one channel share its 5-per-5-s bucket.
        chat = Chat(discord, "crowd")
        before_429 = discord.counters["429"]
        started = time.monotonic()
        results = await asyncio.gather(
            *(
                one_answer(
                    discord,
                    llm,
                    chat,
                    f"c-{i}",
                    " ".join(f"w{i}-{j}" for j in range(120)),
                    15,
                    0.05,
                )
                for i in range(10)
            )
        )
        total = time.monotonic() - started
        print(
            f"10 answers at once, one channel: all final after {total:.1f} s; "
            f"first words after {min(r['first_visible_s'] for r in results):.2f}-"
            f"{max(r['first_visible_s'] for r in results):.2f} s; "
            f"edits {sum(r['edits'] for r in results)}; "
            f"429s from Discord {discord.counters['429'] - before_429}"
        )
        creates = [
            r
            for r in discord.requests
            if r.method in ("POST", "PATCH") and "/messages" in r.path and r.status == 200
        ]
        print(
            f"message requests that reached Discord: {len(creates)}; "
            f"rejected with 429: {discord.counters['429']}"
        )
    finally:
        await bot.stop()
        await discord.stop()
        await llm.stop()


if __name__ == "__main__":
    asyncio.run(main())
