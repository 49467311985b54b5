"""Runs the fake as its own process: `python -m tests.fakes.discord --port 8000`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal

from .fake import FakeDiscord


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeDiscord(
        token=args.token,
        rate_limits=args.rate_limits,
        latency_s=args.latency,
        interaction_deadline_s=args.interaction_deadline,
    )
    if args.channel:
        fake.add_channel(args.channel)
    await fake.start(args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # First line is the bare URL so scripts can `read` it; the second is machine-readable detail.
    print(fake.url, flush=True)
    details = {
        "token": fake.token,
        "guild_id": fake.guild_id,
        "bot_user_id": fake.bot_user_id,
        "owner_id": fake.owner_id,
        "channels": [c for c in fake.world.channels],
        "env": fake.bot_env(),
    }
    print(json.dumps(details), flush=True)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="fake-bot-token")
    parser.add_argument("--rate-limits", action="store_true")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--interaction-deadline", type=float, default=3.0)
    parser.add_argument("--channel", default="general", help="create a text channel ('' for none)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
