"""Prometheus metrics at /metrics (`metrics.port`), so an operator can watch the bot, not its log.

The names are a contract (dashboards and alerts use them, see deploy/grafana/mcpcord.json) and
carry no user, channel or guild label. Fed from hooks that exist anyway: a watcher on every turn
(core/conversations), discord.py's aiohttp trace, the write scheduler's waits and the approval
broker's count. `prometheus_client` is imported only when metrics are configured.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import start_http_server
from prometheus_client.process_collector import ProcessCollector

from bot.config import ConfigError
from bot.core.events import (
    ApprovalResolved,
    SamplingUsed,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    Usage,
)
from bot.core.state import TurnRequest
from bot.core.turn_log import CostOf

log = logging.getLogger(__name__)

RESULTS = ("completed", "failed", "stopped", "cancelled")
TOKEN_KINDS = ("input", "cached", "output", "reasoning")
LAG_EVERY_S = 0.5

_MESSAGE = re.compile(r"/channels/\d+/messages(?:/\d+)?$")


def discord_kind(method: str, path: str) -> str:
    """What a request to Discord did, in the few words the metric's `kind` label allows."""
    method = method.upper()
    if "/interactions/" in path or path.startswith("/api/v10/webhooks/") or "/webhooks/" in path:
        return "interaction"
    if "/reactions/" in path:
        return "reaction"
    if path.endswith("/typing"):
        return "typing"
    if _MESSAGE.search(path):
        return {"POST": "create", "PATCH": "edit", "DELETE": "delete"}.get(method, "other")
    return "other"


class Metrics:
    """Every metric of the contract, in a registry of its own (no module-level state)."""

    def __init__(self, cost_of: CostOf | None = None) -> None:
        self.registry = CollectorRegistry()
        self._cost_of = cost_of
        r = self.registry
        self.turns = Counter("mcpcord_turns", "Turns by how they ended.", ["result"], registry=r)
        for result in RESULTS:
            self.turns.labels(result)
        self.turn_seconds = Histogram(
            "mcpcord_turn_seconds",
            "From the question taken to the turn's end (queued time included).",
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
            registry=r,
        )
        self.first_text_seconds = Histogram(
            "mcpcord_first_text_seconds",
            "From the question taken to the model's first words.",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.tokens = Counter(
            "mcpcord_llm_tokens", "Model tokens by kind.", ["model", "kind"], registry=r
        )
        self.cost = Counter("mcpcord_llm_cost_usd", "Model cost in USD.", ["model"], registry=r)
        self.llm_requests = Counter(
            "mcpcord_llm_requests", "Answers asked of a model.", ["model", "outcome"], registry=r
        )
        self.discord_requests = Counter(
            "mcpcord_discord_requests",
            "Requests to Discord's REST API.",
            ["kind", "status"],
            registry=r,
        )
        self.discord_429 = Counter(
            "mcpcord_discord_429", "Discord's 429 answers.", ["scope"], registry=r
        )
        for scope in ("channel", "global"):
            self.discord_429.labels(scope)
        self.write_queue_depth = Gauge(
            "mcpcord_write_queue_depth", "Message writes waiting for the budget.", registry=r
        )
        self.write_wait_seconds = Histogram(
            "mcpcord_write_wait_seconds",
            "How long a message write waited for the budget.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
            registry=r,
        )
        self.approvals_pending = Gauge(
            "mcpcord_approvals_pending", "Approvals waiting for a person.", registry=r
        )
        self.mcp_calls = Counter(
            "mcpcord_mcp_calls",
            "MCP tool calls by outcome.",
            ["server", "tool", "outcome"],
            registry=r,
        )
        self.mcp_call_seconds = Histogram(
            "mcpcord_mcp_call_seconds",
            "How long an MCP tool ran (after its approval).",
            ["server", "tool"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.loop_lag = Gauge(
            "mcpcord_event_loop_lag_seconds",
            "How late the event loop ran a timer, last measured.",
            registry=r,
        )
        ProcessCollector(registry=r)

    # --- feeds --------------------------------------------------------------------------------

    def watcher(self, request: TurnRequest) -> TurnMetrics:
        return TurnMetrics(self)

    def discord_answer(self, method: str, path: str, status: int, is_global: bool) -> None:
        self.discord_requests.labels(discord_kind(method, path), str(status)).inc()
        if status == 429:
            self.discord_429.labels("global" if is_global else "channel").inc()

    def usage(self, model: str, usage: Usage) -> None:
        model = model or "unknown"
        for kind, count in zip(
            TOKEN_KINDS,
            (
                usage.input_tokens,
                usage.cached_input_tokens,
                usage.output_tokens,
                usage.reasoning_tokens,
            ),
            strict=True,
        ):
            if count:
                self.tokens.labels(model, kind).inc(count)
        cost = self._cost_of(model, usage) if self._cost_of is not None and usage else None
        if cost:
            self.cost.labels(model).inc(cost)

    def watch_bot(self, bot: Any) -> None:
        """Discord's answers through the client's aiohttp trace (before it logs in: the trace
        is frozen with the session), the budget's queue and waits, the pending approvals."""
        trace = bot.http.http_trace
        if trace is not None:

            async def on_end(_: Any, __: SimpleNamespace, params: Any) -> None:
                headers = params.response.headers
                is_global = headers.get("X-RateLimit-Global", "").lower() == "true"
                self.discord_answer(
                    params.method, params.url.path, params.response.status, is_global
                )

            trace.on_request_end.append(on_end)
        self.write_queue_depth.set_function(bot.budget.waiting)
        bot.budget.on_waited.append(self.write_wait_seconds.observe)
        self.approvals_pending.set_function(bot.services.broker.pending)

    async def watch_loop(self) -> None:
        """How late a timer fires: a blocked event loop delays every answer at once."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(LAG_EVERY_S)
            self.loop_lag.set(max(loop.time() - asked - LAG_EVERY_S, 0.0))

    def serve(self, host: str, port: int) -> Any:
        """Serve /metrics in a thread of its own; returns the server (its `shutdown()` stops it).
        Port 0 takes a free port; the log says which."""
        try:
            server, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"metrics.port: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                "pick a free port, or null to turn metrics off"
            ) from None
        log.info("metrics at http://%s:%d/metrics", host, server.server_port)
        return server


class TurnMetrics:
    """One turn's metrics, from the question taken to its end, however it ends."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self._started = time.monotonic()
        self._first_text = False
        self._result = "cancelled"
        self._calls: dict[str, float] = {}  # call id -> when it began running
        self._timed_out: set[str] = set()

    def see(self, event: TurnEvent) -> None:
        m = self._m
        now = time.monotonic()
        if isinstance(event, TextDelta) and not self._first_text and event.text:
            self._first_text = True
            m.first_text_seconds.observe(now - self._started)
        elif isinstance(event, ToolCallStarted):
            self._calls[event.call_id] = now
        elif isinstance(event, ApprovalResolved):
            # The tool runs from the decision on: a person's time is not the tool's.
            self._calls[event.call_id] = now
            if event.status == "timeout":
                self._timed_out.add(event.call_id)
        elif isinstance(event, ToolCallFinished):
            began = self._calls.pop(event.call_id, now)
            outcome = "timeout" if _timed_out(event, self._timed_out) else event.outcome
            m.mcp_calls.labels(event.server, event.tool, outcome).inc()
            if event.outcome != "denied":
                m.mcp_call_seconds.labels(event.server, event.tool).observe(now - began)
        elif isinstance(event, SamplingUsed):
            m.usage(event.model, event.usage)
        elif isinstance(event, TurnCompleted | TurnFailed):
            completed = isinstance(event, TurnCompleted)
            self._result = "completed" if completed else "failed"
            m.usage(event.model, event.usage)
            if event.model:
                m.llm_requests.labels(event.model, "ok" if completed else "error").inc()

    def ended(self) -> None:
        self._m.turns.labels(self._result).inc()
        self._m.turn_seconds.observe(time.monotonic() - self._started)


def _timed_out(event: ToolCallFinished, approvals_timed_out: set[str]) -> bool:
    """Nobody answered its approval in time, or the tool ran past `mcp.tool_timeout_s` (the
    result tools/mcp.py gives the model then says so)."""
    if event.call_id in approvals_timed_out:
        return True
    return event.outcome == "failed" and " timed out after " in event.output
