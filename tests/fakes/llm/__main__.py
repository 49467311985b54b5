"""Runs ScriptedLLM as its own process (echo replies) for manual runs and out-of-process tests."""

from __future__ import annotations

import argparse
import asyncio
import signal

from .server import ScriptedLLM


async def main(host: str, port: int) -> None:
    llm = ScriptedLLM()
    await llm.start(host, port)
    print(llm.base_url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await llm.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
