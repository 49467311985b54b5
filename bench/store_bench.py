"""SQLite store throughput: turns saved per second with 40-message histories, 1 and 50 writers.

python bench/store_bench.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.events import Usage  # noqa: E402
from bot.core.state import ConversationKey, ConversationState  # noqa: E402
from bot.store.records import TurnRecord  # noqa: E402
from bot.store.sqlite import Store  # noqa: E402

HISTORY = tuple(
    {"role": "user" if i % 2 == 0 else "assistant", "content": "some words " * 40}
    for i in range(40)
)


async def save(store: Store, conversation: int, turns: int) -> None:
    key = ConversationKey(guild_id=1, channel_id=2, user_id=conversation)
    state = ConversationState(backend="chat", history=HISTORY)
    record = TurnRecord(
        user_id=conversation,
        model="m",
        usage=Usage(input_tokens=900, output_tokens=100),
        duration_s=1.0,
    )
    for _ in range(turns):
        await store.save_turn(key, state, record)


async def main() -> None:
    path = Path(tempfile.mkdtemp(prefix="mcpcord-store-")) / "bench.db"
    async with Store.open(path) as store:
        for writers, turns in ((1, 500), (50, 20)):
            started = time.perf_counter()
            await asyncio.gather(*(save(store, w, turns) for w in range(writers)))
            elapsed = time.perf_counter() - started
            total = writers * turns
            print(
                f"{writers:3d} writers: {total} turns in {elapsed:.2f} s = {total / elapsed:,.0f} turns/s "
                f"({elapsed / total * 1000:.2f} ms per turn)"
            )
        started = time.perf_counter()
        for w in range(200):
            await store.load_conversation(ConversationKey(guild_id=1, channel_id=2, user_id=w % 50))
        print(f"load_conversation: {(time.perf_counter() - started) / 200 * 1000:.2f} ms each")


if __name__ == "__main__":
    asyncio.run(main())
