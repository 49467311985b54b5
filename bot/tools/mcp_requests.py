"""Requests and notifications an MCP server sends the bot: sampling, questions, log messages."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import anyio
import mcp_types as types
from mcp.client.session import ClientRequestContext

from bot.tools.mcp_format import describe_error, redact
from bot.tools.mcp_session import ServerEntry

log = logging.getLogger("bot.tools.mcp")
server_log = logging.getLogger("bot.tools.mcp.server")  # servers' own log messages

_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emergency": logging.CRITICAL,
}


@dataclass(frozen=True)
class Sampled:
    """The bot's model's answer to a server's sampling request."""

    text: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0


Sampler = Callable[[types.CreateMessageRequestParams], Awaitable[Sampled]]
T = TypeVar("T")


class CallUpdates(Protocol):
    """What a call's caller hears while the call runs (bot/core/tool_updates.py fits)."""

    async def progress(self, progress: float, total: float | None, message: str | None) -> None: ...
    async def approve_sampling(self, server: str, summary: dict[str, Any]) -> str | None: ...
    def sampled(self, model: str, input_tokens: int, output_tokens: int) -> None: ...
    async def sampling_refusal(self) -> str | None:
        """Why the asker's allowance forbids spending more on sampling, or None."""
        ...

    async def elicit(
        self, server: str, message: str, schema: dict[str, Any] | None, url: str | None
    ) -> tuple[str, dict[str, Any] | None]: ...


MAX_ASKS_PER_CALL = 3  # sampling requests, and questions to a person, each per call


@dataclass(eq=False)
class InFlight:
    """A running call: server requests that arrive meanwhile are answered on its behalf, one
    at a time, a few per call, and none after the call ended."""

    updates: CallUpdates | None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    asked: dict[str, int] = field(default_factory=dict)
    ended: bool = False
    _one_at_a_time: anyio.Lock = field(default_factory=anyio.Lock)
    _open: set[anyio.CancelScope] = field(default_factory=set)
    _all_closed: anyio.Event | None = None

    def count(self, kind: str) -> bool:
        """Counts one request of `kind`; False once the call had its share."""
        n = self.asked.get(kind, 0)
        if n >= MAX_ASKS_PER_CALL:
            return False
        self.asked[kind] = n + 1
        return True

    async def answer(self, work: Callable[[], Awaitable[T]]) -> T | None:
        """`work`'s result, after the requests before it; None when the call ended first."""
        with anyio.CancelScope() as scope:
            self._open.add(scope)
            try:
                if self.ended:
                    scope.cancel()
                async with self._one_at_a_time:
                    return await work()
            finally:
                self._open.discard(scope)
                if not self._open and self._all_closed is not None:
                    self._all_closed.set()
        return None

    @contextmanager
    def person_asked(self) -> Iterator[None]:
        """Time a person spends answering does not count against the tool: the deadline waits."""
        remaining = self.scope.deadline - anyio.current_time()
        self.scope.deadline = math.inf
        try:
            yield
        finally:
            self.scope.deadline = anyio.current_time() + remaining

    def begin(self, calls: list[Any]) -> Token[InFlight | None]:
        """The call runs: listed among its server's calls, and the current call of its task."""
        calls.append(self)
        return current_call.set(self)

    async def end(self, calls: list[Any], started: Token[InFlight | None]) -> None:
        """The call is over: its open requests end too (a pending approval can no longer be
        given, no model answers for nobody). Waits briefly so they report their end."""
        current_call.reset(started)
        calls.remove(self)
        self.ended = True
        for scope in list(self._open):
            scope.cancel()
        if not self._open:
            return
        self._all_closed = anyio.Event()
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await self._all_closed.wait()


# The call whose task is running. The mcp SDK runs a server request's handler in the context
# of the task it came from: the call itself (2026 protocol, InputRequiredResult) or the reader
# of the call's own HTTP response stream, so such requests are answered for exactly that call.
current_call: ContextVar[InFlight | None] = ContextVar("mcpcord_current_call", default=None)


def _asking_call(server: ServerEntry) -> InFlight | None:
    """The call a server's request belongs to, or None when it cannot be told. A request sent
    on its own (2025 protocol, stdio or HTTP) does not say which call it is for: with one call
    running it is that one's; with several, guessing could show one user's question to another
    and let them answer it, so nobody is asked."""
    here = current_call.get()
    if here is not None and here in server.inflight:
        return here
    return server.inflight[0] if len(server.inflight) == 1 else None


class ServerRequests:
    """Answers what servers ask of the bot, on behalf of the call that is running."""

    def __init__(
        self,
        sampling: Literal["deny", "ask", "allow"],
        sampler: Sampler | None,
        timeout_s: float,
        elicitation: bool = False,
    ) -> None:
        self.sampling = sampling if sampler is not None else "deny"
        self._sampler = sampler
        self.elicitation = elicitation  # whether a front end can ask users (advertised then)
        # Every request a server sends us ends within this, answered or refused.
        self._timeout = timeout_s

    def client_options(self, server: ServerEntry) -> dict[str, Any]:
        async def on_log(params: types.LoggingMessageNotificationParams) -> None:
            data = params.data if isinstance(params.data, str) else json.dumps(params.data)
            where = f"{params.logger}: " if params.logger else ""
            server_log.log(
                _LOG_LEVELS.get(params.level, logging.INFO),
                "[%s] %s%s",
                server.name,
                where,
                redact(data, server.secrets)[:2000],
            )

        async def on_sampling(
            context: ClientRequestContext, params: types.CreateMessageRequestParams
        ) -> types.CreateMessageResult | types.ErrorData:
            return await self.answer_sampling(server, params)

        async def on_elicitation(
            context: ClientRequestContext, params: types.ElicitRequestParams
        ) -> types.ElicitResult | types.ErrorData:
            return await self.answer_elicitation(server, params)

        options: dict[str, Any] = {
            "logging_callback": on_log,
            "log_level": "info",
            # Advertised even with `deny`, so servers get a clear refusal instead of no tool.
            "sampling_callback": on_sampling,
        }
        if self.elicitation:
            options["elicitation_callback"] = on_elicitation
        return options

    async def answer_elicitation(
        self, server: ServerEntry, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        running = _asking_call(server)
        if running is None or running.updates is None:
            log.info("MCP server %r asked a question outside one call; declined", server.name)
            return types.ElicitResult(action="decline")
        if not running.count("elicitation"):
            log.info(
                "MCP server %r asked more than %d questions in one call; declined",
                server.name,
                MAX_ASKS_PER_CALL,
            )
            return types.ElicitResult(action="decline")
        updates = running.updates
        if isinstance(params, types.ElicitRequestURLParams):
            schema, url = None, params.url
        else:
            schema, url = params.requested_schema, None

        async def ask() -> tuple[str, dict[str, Any] | None]:
            try:
                with anyio.fail_after(self._timeout), running.person_asked():
                    return await updates.elicit(
                        server.name, params.message, dict(schema or {}), url
                    )
            except TimeoutError:
                return "cancel", None

        answered = await running.answer(ask)
        action, content = answered if answered is not None else ("cancel", None)
        log.info("MCP server %r asked the user something: %s", server.name, action)
        if action == "accept":
            return types.ElicitResult(action="accept", content=content or {})
        return types.ElicitResult(action="cancel" if action == "cancel" else "decline")

    async def answer_sampling(
        self, server: ServerEntry, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.ErrorData:
        if self.sampling == "deny" or self._sampler is None:
            log.info(
                "MCP server %r asked to use the model; refused (mcp.sampling: deny)", server.name
            )
            return _refused("This client does not allow sampling (mcp.sampling: deny).")
        running = _asking_call(server)
        if running is None or running.updates is None:
            # Nobody would be asked, charged or shown what the model wrote: even with `allow`.
            log.info("MCP server %r asked to use the model outside one call; refused", server.name)
            return _refused("Sampling is answered only during one tool call of this server.")
        if not running.count("sampling"):
            log.info(
                "MCP server %r asked to use the model more than %d times in one call; refused",
                server.name,
                MAX_ASKS_PER_CALL,
            )
            return _refused(f"At most {MAX_ASKS_PER_CALL} sampling requests per tool call.")
        answered = await running.answer(lambda: self._sample(server, running, params))
        if answered is None:
            return _refused("The tool call ended before the request was answered.")
        return answered

    async def _sample(
        self, server: ServerEntry, running: InFlight, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.ErrorData:
        updates = running.updates
        assert updates is not None and self._sampler is not None  # checked by the caller
        try:
            with anyio.fail_after(self._timeout):
                # The person's daily allowance, before asking them and again before spending.
                refusal = await updates.sampling_refusal()
                if refusal is None and self.sampling == "ask":
                    with running.person_asked():
                        refusal = await updates.approve_sampling(
                            server.name, sampling_summary(params)
                        )
                    refusal = refusal or await updates.sampling_refusal()
                if refusal is not None:
                    return _refused(refusal)
                answer = await self._sampler(params)
        except TimeoutError:
            return types.ErrorData(
                code=types.REQUEST_TIMEOUT,
                message=f"No answer within {self._timeout:g} s.",
            )
        except Exception as exc:
            log.warning("sampling for MCP server %r failed: %s", server.name, describe_error(exc))
            return types.ErrorData(code=types.INTERNAL_ERROR, message="The model request failed.")
        updates.sampled(answer.model, answer.input_tokens, answer.output_tokens)
        log.info("answered a sampling request of MCP server %r with %s", server.name, answer.model)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=answer.text),
            model=answer.model,
            stop_reason="endTurn",
        )


def _refused(message: str) -> types.ErrorData:
    return types.ErrorData(code=types.INVALID_REQUEST, message=message)


def sampling_summary(params: types.CreateMessageRequestParams) -> dict[str, Any]:
    """What a human approving a sampling request sees: the messages' text and the limits."""
    messages = []
    for message in params.messages:
        blocks = message.content if isinstance(message.content, list) else [message.content]
        text = " ".join(
            b.text if isinstance(b, types.TextContent) else f"[{b.type}]" for b in blocks
        )
        messages.append(f"{message.role}: {text}")
    summary: dict[str, Any] = {"messages": messages, "max_tokens": params.max_tokens}
    if params.system_prompt:
        summary["system_prompt"] = params.system_prompt
    return summary
