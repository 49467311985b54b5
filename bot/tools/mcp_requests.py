"""Requests and notifications an MCP server sends the bot: sampling, log messages."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

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


class CallUpdates(Protocol):
    """What a call's caller hears while the call runs (bot/core/tool_updates.py fits)."""

    async def progress(self, progress: float, total: float | None, message: str | None) -> None: ...
    async def approve_sampling(self, server: str, summary: dict[str, Any]) -> str | None: ...
    def sampled(self, model: str, input_tokens: int, output_tokens: int) -> None: ...
    async def elicit(
        self, server: str, message: str, schema: dict[str, Any] | None, url: str | None
    ) -> tuple[str, dict[str, Any] | None]: ...


@dataclass(eq=False)
class InFlight:
    """A running call: server requests that arrive meanwhile are answered on its behalf."""

    updates: CallUpdates | None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    def pause(self, seconds: float) -> None:
        # Time a human spends answering a server's question does not count against the tool.
        self.scope.deadline += seconds


def _asking_call(server: ServerEntry) -> InFlight | None:
    """The call a server's request belongs to. Over stdio the protocol does not say; with
    several calls running on one server, the newest is the best guess (whoever started it is
    asked, and may decline)."""
    return server.inflight[-1] if server.inflight else None


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
            return types.ElicitResult(action="decline")  # nobody to ask outside a call
        if isinstance(params, types.ElicitRequestURLParams):
            schema, url = None, params.url
        else:
            schema, url = params.requested_schema, None
        started = anyio.current_time()
        try:
            with anyio.fail_after(self._timeout):
                action, content = await running.updates.elicit(
                    server.name, params.message, dict(schema or {}), url
                )
        except TimeoutError:
            action, content = "cancel", None
        finally:
            running.pause(anyio.current_time() - started)
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
            return types.ErrorData(
                code=types.INVALID_REQUEST,
                message="This client does not allow sampling (mcp.sampling: deny).",
            )
        running = _asking_call(server)
        try:
            with anyio.fail_after(self._timeout):
                if self.sampling == "ask":
                    if running is None or running.updates is None:
                        return types.ErrorData(
                            code=types.INVALID_REQUEST,
                            message="Sampling needs a user's approval, and no call is running.",
                        )
                    started = anyio.current_time()
                    refusal = await running.updates.approve_sampling(
                        server.name, sampling_summary(params)
                    )
                    running.pause(anyio.current_time() - started)
                    if refusal is not None:
                        return types.ErrorData(code=types.INVALID_REQUEST, message=refusal)
                answer = await self._sampler(params)
        except TimeoutError:
            return types.ErrorData(
                code=types.REQUEST_TIMEOUT,
                message=f"No answer within {self._timeout:g} s.",
            )
        except Exception as exc:
            log.warning("sampling for MCP server %r failed: %s", server.name, describe_error(exc))
            return types.ErrorData(code=types.INTERNAL_ERROR, message="The model request failed.")
        if running is not None and running.updates is not None:
            running.updates.sampled(answer.model, answer.input_tokens, answer.output_tokens)
        log.info("answered a sampling request of MCP server %r with %s", server.name, answer.model)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=answer.text),
            model=answer.model,
            stop_reason="endTurn",
        )


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
