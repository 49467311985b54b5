"""ScriptedLLM: the loopback aiohttp server tests script, inspect and break on purpose."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import aiohttp
from aiohttp import web

from . import chat, history, refusals, responses, tokens
from .audio import Transcriptions
from .items import (
    Cut,
    Fault,
    HangUp,
    Item,
    Reply,
    Silent,
    Stall,
    Text,
    UsageReport,
    error_body,
    new_id,
    normalize,
    overflow_error,
)
from .stream import Plan, cut_body, hang_up, pump


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    key: str | None
    t: float
    headers: dict[str, str] = field(default_factory=dict)
    # The client closed the stream before its end (e.g. the bot stopped the answer).
    hung_up: bool = False

    @property
    def model(self) -> str | None:
        """The model the request asked for, as it named it (without a litellm prefix)."""
        model = self.body.get("model")
        return model if isinstance(model, str) else None


@dataclass
class _Stored:
    """What a Responses id remembers, so previous_response_id can continue it."""

    output: list[dict[str, Any]]
    key: str | None
    text: str | None
    request: dict[str, Any]


class ScriptedLLM:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.base_url = ""
        # The models this server serves; anything else gets OpenAI's 404 (see `serve`).
        self.models: list[str] = ["test-model"]
        self._scripts: dict[str, deque[Fault | HangUp | Cut | Stall | Silent | list[Item]]] = {}
        self._windows: dict[str, tuple[int, str]] = {}
        self._cached: dict[str, int] = {}
        self._usage: dict[str, deque[UsageReport]] = {}
        self._down: dict[tuple[str, str | None], Fault] = {}  # (model, key or None) -> fault
        self._stored: dict[str, _Stored] = {}
        self._runner: web.AppRunner | None = None
        self._changed: asyncio.Condition | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        # POST /v1/audio/transcriptions: scripted by a key in the audio's bytes (audio.py).
        self.audio = Transcriptions(self.models, self._fault)
        # Compress streams as the client's Accept-Encoding allows (gzip), as a proxy may.
        self.compress = False

    # -- lifecycle -----------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/audio/transcriptions", self.audio.handle)
        # Short shutdown timeout: a test's Stall must not hold up stop().
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]  # the real port when port=0
        self.base_url = f"http://{host}:{bound}/v1"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ScriptedLLM:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- scripting and inspection ---------------------------------------------------
    def serve(self, *models: str) -> None:
        """Serve these models too (as requests name them, without a litellm prefix); a request
        for any other model gets OpenAI's 404 `model_not_found`, as a typo would in production."""
        self.models.extend(m for m in models if m not in self.models)

    def script(self, key: str, *replies: Reply) -> None:
        queue = self._scripts.setdefault(key, deque())
        queue.extend(normalize(r) for r in replies)

    def context_window(self, key: str, tokens: int, *, style: str = "openai") -> None:
        """Refuse `key`'s requests over `tokens` (counted by a real tokenizer, tokens.py: the
        messages, or the whole previous_response_id chain) with an overflow error in `style`:
        "openai" or "litellm" (a LiteLLM proxy's form). A Responses request with
        `truncation: auto` is accepted."""
        self._windows[key] = (tokens, style)
        self._scripts.setdefault(key, deque())  # so requests are matched to the key

    def fail_model(self, model: str, fault: Fault, key: str | None = None) -> None:
        """Answer every request for `model` (as the request names it) with `fault`, scripts
        untouched: a model that is down. With `key`, only requests matched to that script, so
        other tests on a shared server still reach the model. A model that is down is one
        this server serves (`serve`)."""
        self.serve(model)
        self._down[(model, key)] = fault
        if key is not None:
            self._scripts.setdefault(key, deque())

    def cached_tokens(self, key: str, tokens: int) -> None:
        """Report up to `tokens` input tokens of `key`'s responses as cached."""
        self._cached[key] = tokens
        self._scripts.setdefault(key, deque())

    def report_usage(self, key: str, *reports: UsageReport) -> None:
        """`key`'s responses report these token counts, one per response in order; the last
        one repeats."""
        self._usage.setdefault(key, deque()).extend(reports)
        self._scripts.setdefault(key, deque())

    def _next_usage(self, key: str | None) -> UsageReport | None:
        queue = self._usage.get(key or "")
        if not queue:
            return None
        return queue.popleft() if len(queue) > 1 else queue[0]

    def requests_for(self, key: str) -> list[Recorded]:
        """Requests matched to `key`. Only scripted keys are ever matched, so asking for a key
        nobody scripted is refused: its list would be empty whatever the bot sent."""
        if key not in self._scripts:
            raise KeyError(
                f"requests_for({key!r}): nobody scripted this key, so no request is ever matched"
                f" to it; use requests_mentioning({key!r}) to see the requests that carry it"
            )
        return [r for r in self.requests if r.key == key]

    def requests_mentioning(self, marker: str) -> list[Recorded]:
        """Requests carrying `marker` anywhere in the body (history included): a test's own view
        of the shared log, e.g. every request of one conversation or one that should never come."""
        return [r for r in self.requests if marker in json.dumps(r.body, ensure_ascii=False)]

    def response_request(self, response_id: str) -> dict[str, Any] | None:
        """The request a stored Responses id answered: which turn a previous_response_id
        continues."""
        stored = self._stored.get(response_id)
        return stored.request if stored else None

    def forget_responses(self, key: str | None = None) -> None:
        """Drop stored responses, as a server does when they expire: old ids become unknown.
        With `key`, only that script's responses, so other tests' conversations go on."""
        for response_id, stored in list(self._stored.items()):
            if key is None or stored.key == key:
                del self._stored[response_id]

    def clear(self) -> None:
        # Stored responses stay: a bot process may still continue an earlier response id.
        self._scripts.clear()
        self._windows.clear()
        self._cached.clear()
        self._usage.clear()
        self._down.clear()
        self.requests.clear()
        self.audio.clear()

    # The timeout parameter is part of the agreed public API, hence the noqa.
    async def wait_for_requests(self, key: str, n: int, timeout: float = 10.0) -> list[Recorded]:  # noqa: ASYNC109
        cond = self._cond()
        try:
            async with asyncio.timeout(timeout), cond:
                await cond.wait_for(lambda: len(self.requests_for(key)) >= n)
        except TimeoutError:
            got = len(self.requests_for(key))
            raise TimeoutError(f"{got}/{n} requests for key {key!r} after {timeout}s") from None
        return self.requests_for(key)

    async def wait_for_hangup(self, key: str, timeout: float = 10.0) -> Recorded:  # noqa: ASYNC109
        """The first request of `key` whose client closed the stream before its end."""
        cond = self._cond()
        try:
            async with asyncio.timeout(timeout), cond:
                await cond.wait_for(lambda: any(r.hung_up for r in self.requests_for(key)))
        except TimeoutError:
            raise TimeoutError(f"no client hung up on key {key!r} in {timeout}s") from None
        return next(r for r in self.requests_for(key) if r.hung_up)

    # -- internals -----------------------------------------------------------------
    def _hangup(self, recorded: Recorded) -> Callable[[], None]:
        def hung_up() -> None:
            recorded.hung_up = True
            cond = self._cond()

            async def tell() -> None:
                async with cond:
                    cond.notify_all()

            self._tasks.add(task := asyncio.ensure_future(tell()))
            task.add_done_callback(self._tasks.discard)

        return hung_up

    def _cond(self) -> asyncio.Condition:
        # Created lazily so it binds to the loop the server actually runs on.
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def _match(self, text: str | None) -> str | None:
        """First registered key in the text, preferring keys that still have replies queued."""
        if text is None:
            return None
        # Whole words only: a script "k-always" must not answer a test that says "k-always-other".
        hits = [k for k in self._scripts if re.search(rf"(?<![\w-]){re.escape(k)}(?![\w-])", text)]
        return next((k for k in hits if self._scripts[k]), hits[0] if hits else None)

    def _next(
        self, key: str | None, text: str | None
    ) -> Fault | HangUp | Cut | Stall | Silent | list[Item]:
        queue = self._scripts.get(key) if key is not None else None
        if queue:
            return queue.popleft()
        return [Text("echo: " + (text or ""))]

    async def _record(
        self, request: web.Request, body: dict[str, Any], key: str | None
    ) -> Recorded:
        recorded = Recorded(request.path, body, key, time.monotonic(), dict(request.headers))
        self.requests.append(recorded)
        cond = self._cond()
        async with cond:
            cond.notify_all()
        return recorded

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response(
                error_body(400, "We could not parse the JSON body."), status=400
            )
        if not isinstance(body, dict):
            return web.json_response(error_body(400, "Request body must be an object."), status=400)
        return body

    @staticmethod
    def _headers() -> dict[str, str]:
        return {"x-request-id": new_id("req")}

    @staticmethod
    def _fault(fault: Fault) -> web.Response:
        headers = ScriptedLLM._headers()
        if fault.retry_after is not None and fault.retry_date:
            headers["Retry-After"] = formatdate(time.time() + fault.retry_after, usegmt=True)
        elif fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
            headers["retry-after-ms"] = str(int(fault.retry_after * 1000))
        body = error_body(fault.status, fault.message, **(fault.error or {}))
        return web.json_response(body, status=fault.status, headers=headers)

    def _model_down(self, body: dict[str, Any], key: str | None) -> web.Response | None:
        model = body.get("model")
        if not isinstance(model, str):
            return None
        fault = self._down.get((model, key)) or self._down.get((model, None))
        return self._fault(fault) if fault is not None else None

    def _overflow(self, key: str | None, size: int, truncation: Any = None) -> web.Response | None:
        """The context-window error for a request of `size` tokens, if `key` has a window."""
        if key not in self._windows or truncation == "auto":
            return None
        limit, style = self._windows[key]
        if size <= limit:
            return None
        body = overflow_error(style, limit, size)
        return web.json_response(body, status=400, headers=self._headers())

    def _chain_size(self, body: dict[str, Any]) -> int:
        """Tokens of a Responses request with everything its previous_response_id carries."""
        size = tokens.count(body.get("input"))
        seen: set[str] = set()
        prev_id = body.get("previous_response_id")
        while prev_id and prev_id not in seen and prev_id in self._stored:
            seen.add(prev_id)
            stored = self._stored[prev_id]
            size += tokens.count(stored.request.get("input")) + tokens.count(stored.output)
            prev_id = stored.request.get("previous_response_id")
        return size

    async def _dead_image(self, urls: list[str]) -> web.Response | None:
        """Like a real provider, fetch image URLs; one that does not load fails the request."""
        for url in urls:
            if not url.startswith(("http://", "https://")):
                continue
            try:
                async with aiohttp.ClientSession() as session, session.get(url) as got:
                    ok = got.status == 200
            except aiohttp.ClientError:
                ok = False
            if not ok:
                body = error_body(
                    400,
                    f"Error while downloading {url}.",
                    param="url",
                    code="invalid_image_url",
                )
                return web.json_response(body, status=400, headers=self._headers())
        return None

    def _refused(self, body: dict[str, Any], *, chat: bool) -> web.Response | None:
        """OpenAI's answer to a request it refuses for its model or its shape (refusals.py)."""
        unknown = refusals.unknown_model(body.get("model"), self.models)
        if unknown is not None:
            status, error = unknown
            return web.json_response(error, status=status, headers=self._headers())
        problem = refusals.shape_problem(body, chat=chat)
        if problem is not None:
            return web.json_response(problem, status=400, headers=self._headers())
        return None

    # -- handlers ------------------------------------------------------------------
    async def _models(self, request: web.Request) -> web.Response:
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "scripted"} for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        text = chat.last_user_text(body)
        key = self._match(text)
        recorded = await self._record(request, body, key)
        down = self._model_down(body, key) or self._refused(body, chat=True)
        if down is not None:
            return down
        problem = history.chat_problem(body)
        if problem is not None:
            return web.json_response(error_body(400, problem), status=400, headers=self._headers())
        refused = self._overflow(key, tokens.count(body.get("messages")))
        refused = refused or await self._dead_image(chat.image_urls(body))
        if refused is not None:
            return refused
        reply = self._next(key, text)
        if isinstance(reply, Fault):
            return self._fault(reply)
        if isinstance(reply, HangUp):
            return await hang_up(request)
        plan = Plan.of(reply, self._cached.get(key or "", 0), self._next_usage(key))
        try:
            chat.check_items(plan.items)
        except ValueError as e:
            return web.json_response(error_body(500, str(e)), status=500)
        renderer = chat.ChatRenderer(body, plan)
        if body.get("stream"):
            return await pump(
                request,
                self._headers(),
                renderer.events(plan),
                self._hangup(recorded),
                self.compress,
            )
        return await self._whole(request, plan, json.dumps(renderer.completion()).encode())

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        text = responses.last_user_text(body)
        key = self._match(text)
        prev_id = body.get("previous_response_id")
        prev = self._stored.get(prev_id) if prev_id else None
        if prev is not None and text is None:
            # Tool outputs / approval answers carry no user text: they continue the same script.
            key, text = prev.key, prev.text
        recorded = await self._record(request, body, key)
        down = self._model_down(body, key) or self._refused(body, chat=False)
        if down is not None:
            return down
        if prev_id and prev is None:
            return web.json_response(
                responses.not_found(prev_id), status=400, headers=self._headers()
            )
        problem = history.responses_problem(body, prev.output if prev else [])
        if problem is not None:
            return web.json_response(error_body(400, problem), status=400, headers=self._headers())
        refused = self._overflow(key, self._chain_size(body), body.get("truncation"))
        refused = refused or await self._dead_image(responses.image_urls(body))
        if refused is not None:
            return refused
        reply = self._next(key, text)
        if isinstance(reply, Fault):
            return self._fault(reply)
        if isinstance(reply, HangUp):
            return await hang_up(request)
        plan = Plan.of(reply, self._cached.get(key or "", 0), self._next_usage(key))
        renderer = responses.ResponsesRenderer(body, plan, new_id("resp"))
        self._stored[renderer.id] = _Stored(renderer.final, key, text, body)
        if body.get("stream"):
            return await pump(
                request,
                self._headers(),
                renderer.events(plan),
                self._hangup(recorded),
                self.compress,
            )
        return await self._whole(request, plan, responses.dumps(renderer.response(True)))

    async def _whole(self, request: web.Request, plan: Plan, payload: bytes) -> web.StreamResponse:
        """Non-streaming reply, honouring Stall (delay) and Cut (half a body, then drop)."""
        if plan.cut:
            return await cut_body(request, self._headers(), payload)
        if plan.stall:
            await asyncio.sleep(plan.stall)
        return web.Response(body=payload, content_type="application/json", headers=self._headers())
