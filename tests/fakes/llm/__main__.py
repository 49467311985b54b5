"""Runs ScriptedLLM as its own process, scripted over a small HTTP control API (bench, manual use).

    python -m tests.fakes.llm [--port P]

Prints the base URL (`http://127.0.0.1:P/v1`) on the first line and, on the second, a JSON line
with `base_url` and `control_url`. Unscripted requests get echo replies. The control server
(its own loopback port, so the LLM's routes stay exactly those of the in-process fake):

- `POST /_fake/script` `{"scripts": [{"key", "text", "chunk_size", "delay_s"}, ...]}`: queue a
  streamed text reply for each key (a request whose last user text contains the key gets it).
- `POST /_fake/forget` `{"keys": [...]}`: drop those keys' scripts. Every request is matched
  against every key, so a long run forgets the keys it is done with.
- `GET /_fake/requests?since=N`: the requests after the first N, each with `key`, `path`,
  `t` (arrival) and `ended` (when the whole response had been written; null while streaming),
  both `time.monotonic()`, which is one clock for every process on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time

from aiohttp import web

from .items import Text
from .server import ScriptedLLM

RECORD_INDEX: web.RequestKey[int] = web.RequestKey("record_index", int)


class TimedLLM(ScriptedLLM):
    """Remembers when each response was completely written: a stream's real end, which a
    client cannot see and which a loaded machine moves away from the scripted schedule."""

    def __init__(self) -> None:
        super().__init__()
        self.ended: dict[int, float] = {}

    async def _record(self, request: web.Request, body: dict, key: str | None) -> None:
        request[RECORD_INDEX] = len(self.requests)
        await super()._record(request, body, key)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            return await super()._chat(request)
        finally:
            self._note_end(request)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        try:
            return await super()._responses(request)
        finally:
            self._note_end(request)

    def forget(self, keys: list[str]) -> int:
        return sum(self._scripts.pop(k, None) is not None for k in keys)

    def _note_end(self, request: web.Request) -> None:
        index = request.get(RECORD_INDEX)
        if index is not None:
            self.ended[index] = time.monotonic()


def control_app(llm: TimedLLM) -> web.Application:
    async def script(request: web.Request) -> web.Response:
        body = await request.json()
        for s in body["scripts"]:
            chunk, delay = int(s.get("chunk_size", 20)), float(s.get("delay_s", 0.0))
            llm.script(s["key"], Text(s["text"], chunk_size=chunk, delay_s=delay))
        return web.json_response({"queued": len(body["scripts"])})

    async def forget(request: web.Request) -> web.Response:
        return web.json_response({"forgotten": llm.forget((await request.json())["keys"])})

    async def requests(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return web.json_response(
            [
                {
                    "index": since + n,
                    "key": r.key,
                    "path": r.path,
                    "t": r.t,
                    "ended": llm.ended.get(since + n),
                }
                for n, r in enumerate(llm.requests[since:])
            ]
        )

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/_fake/script", script)
    app.router.add_post("/_fake/forget", forget)
    app.router.add_get("/_fake/requests", requests)
    return app


async def main(host: str, port: int, control_port: int, models: list[str]) -> None:
    llm = TimedLLM()
    llm.serve(*models)
    await llm.start(host, port)
    runner = web.AppRunner(control_app(llm), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, control_port)
    await site.start()
    control_url = f"http://{host}:{runner.addresses[0][1]}"
    print(llm.base_url, flush=True)
    print(json.dumps({"base_url": llm.base_url, "control_url": control_url}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await llm.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument(
        "--serve",
        action="append",
        default=[],
        metavar="MODEL",
        help="a model to serve besides test-model (repeat); others get OpenAI's 404",
    )
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port, args.control_port, args.serve))
