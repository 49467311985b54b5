"""Runs turns: one at a time per conversation, state loaded before and saved only on success."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AsyncExitStack, aclosing, asynccontextmanager, contextmanager
from dataclasses import replace
from typing import Any, Literal, Protocol, TypeVar

from bot.core.backend import Backend
from bot.core.events import (
    ApprovalRequested,
    SamplingUsed,
    ToolCallStarted,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    Usage,
)
from bot.core.resume import Resumable
from bot.core.state import ConversationKey, ConversationState, TurnRequest
from bot.core.stops import stopped_here
from bot.core.turn_log import CostOf, TurnLog, price, turn_cost
from bot.core.turn_watchers import TurnLogWatcher, WatcherFactory, tell

log = logging.getLogger(__name__)

Scope = Literal["user", "channel", "thread"]
T = TypeVar("T")


class Busy(enum.Enum):
    BUSY = "busy"


BUSY = Busy.BUSY
# Sees every event of every turn (e.g. the audit trail); must be quick and must not fail the turn.
Observer = Callable[[TurnRequest, TurnEvent], Awaitable[None]]


def conversation_key(
    scope: Scope, *, guild_id: int | None, channel_id: int, user_id: int, in_thread: bool
) -> ConversationKey:
    """`user`: one conversation per user per channel. `channel`: one per channel.
    `thread`: one per thread, and per user in ordinary channels."""
    shared = scope == "channel" or (scope == "thread" and in_thread)
    return ConversationKey(
        guild_id=guild_id or 0, channel_id=channel_id, user_id=0 if shared else user_id
    )


class TurnStore(Protocol):
    async def load_conversation(self, key: ConversationKey) -> ConversationState | None: ...
    # ends_resume: the turn's stored position (bot/core/resume.py) goes in the same transaction.
    async def save_turn(
        self,
        key: ConversationKey,
        state: ConversationState,
        turn: Any,
        *,
        ends_resume: bool = False,
    ) -> None: ...
    async def save_usage(
        self, key: ConversationKey, turn: Any, *, ends_resume: bool = False
    ) -> None: ...
    async def end_resume(self, key: ConversationKey) -> None: ...


class _KeyedLocks:
    """A lock per conversation, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[ConversationKey, tuple[asyncio.Lock, int]] = {}

    @contextmanager
    def claim(self, key: ConversationKey) -> Iterator[asyncio.Lock]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            yield lock
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def busy(self, key: ConversationKey) -> bool:
        return key in self._locks

    def busy_in_channel(self, guild_id: int, channel_id: int) -> bool:
        return any(k.guild_id == guild_id and k.channel_id == channel_id for k in self._locks)


class Conversations:
    def __init__(
        self,
        store: TurnStore,
        backend: Backend,
        *,
        make_record: Callable[..., Any],
        cost_of: CostOf | None = None,
    ) -> None:
        self._store = store
        self._backend = backend
        self._locks = _KeyedLocks()
        # Builds the usage row for a finished turn; the store module owns its type.
        self._make_record = make_record
        self._cost_of = cost_of
        self._observers: list[Observer] = []
        # Turns whose backend runs now (not those queued behind them), by turn id: what /stop
        # and the Stop button look up.
        self._running: dict[str, TurnRequest] = {}
        self._watchers: list[WatcherFactory] = []

    def add_observer(self, observer: Observer) -> None:
        self._observers.append(observer)

    def add_watcher(self, factory: WatcherFactory) -> None:
        self._watchers.append(factory)

    async def _tell_observers(self, request: TurnRequest, event: TurnEvent) -> None:
        for observer in self._observers:
            try:
                await observer(request, event)
            except Exception:
                log.exception("turn observer failed on %s", event.kind)

    @property
    def backend(self) -> Backend:
        return self._backend

    def use_backend(self, backend: Backend) -> None:
        """After a reload: new turns use `backend`; running turns finish on the one they began."""
        self._backend = backend

    def busy(self, key: ConversationKey) -> bool:
        return self._locks.busy(key)

    def busy_in_channel(self, guild_id: int, channel_id: int) -> bool:
        """Whether any conversation of this channel has a turn running (or waiting to)."""
        return self._locks.busy_in_channel(guild_id, channel_id)

    def running_in(self, guild_id: int, channel_id: int) -> list[TurnRequest]:
        """The turns running now in one channel (a thread is a channel of its own)."""
        return [
            r
            for r in self._running.values()
            if r.key.guild_id == guild_id and r.key.channel_id == channel_id
        ]

    def running(self, turn_id: str) -> TurnRequest | None:
        return self._running.get(turn_id)

    async def when_idle(self, key: ConversationKey, action: Callable[[], Awaitable[T]]) -> T | Busy:
        """Run `action` (e.g. a reset) holding the conversation's lock, or return BUSY at once
        when a turn runs: a turn that started first would save its old state over the reset."""
        if self.busy(key):
            return BUSY
        # No await between the check and the claim, so no turn can slip in; one that starts
        # meanwhile waits for the lock and then loads the state as `action` left it.
        with self._locks.claim(key) as lock:
            async with lock:
                return await action()

    @asynccontextmanager
    async def holding(self, keys: Iterable[ConversationKey]) -> AsyncIterator[None]:
        """Wait for the turns running in these conversations, and keep new ones waiting until
        the block ends (an erasure: a turn that loaded the old history would save it back).
        A turn holds one conversation only, so taking several in a fixed order cannot deadlock."""
        async with AsyncExitStack() as stack:
            for key in sorted(set(keys), key=str):
                lock = stack.enter_context(self._locks.claim(key))
                await stack.enter_async_context(lock)
            yield

    async def run_turn(
        self,
        request: TurnRequest,
        *,
        on_start: Callable[[], None] | None = None,
        resumed: Resumable | None = None,
    ) -> AsyncGenerator[TurnEvent, None]:
        """The turn's events; the new state is saved before TurnCompleted is passed on.
        A turn queues behind another one of the same conversation; `on_start` is called once it
        holds the conversation, so a front end can tell waiting from working. `resumed`: the
        turn continues from where it stood at a restart (bot/core/resume.py)."""
        if resumed is not None:
            request.resume.approval_id = resumed.approval_id
        turn_log = TurnLog(request.key, "", self._cost_of)
        watchers = [TurnLogWatcher(turn_log), *(make(request) for make in self._watchers)]
        try:
            with self._locks.claim(request.key) as lock:
                async with lock:
                    if on_start is not None:
                        on_start()
                    async for event in self._run_locked(request, resumed):
                        await self._tell_observers(request, event)
                        tell(watchers, "see", event)
                        yield event
        finally:
            tell(watchers, "ended")

    async def _run_locked(
        self, request: TurnRequest, resumed: Resumable | None
    ) -> AsyncIterator[TurnEvent]:
        started = time.monotonic()
        state = await self._store.load_conversation(request.key)
        if state is None or state.backend != self._backend.name:
            # A conversation stored by another backend cannot be continued by this one.
            state = ConversationState(
                backend=self._backend.name, model=state.model if state else None
            )
        sampled = Usage()  # MCP servers' sampling requests answered during this turn
        sampled_costs: list[float | None] = []  # priced by the model that answered each
        ended = False
        try:
            async with aclosing(self._backend_events(state, request, resumed)) as events:
                async for event in events:
                    if isinstance(event, ToolCallStarted | ApprovalRequested):
                        request.cut.acted = True
                    if isinstance(event, SamplingUsed):
                        sampled = sampled + event.usage
                        sampled_costs.append(price(self._cost_of, event.model, event.usage))
                    if isinstance(event, TurnCompleted | TurnFailed):
                        ended = True
                        elapsed = time.monotonic() - started
                        cost = await self._save(request, event, elapsed, sampled, sampled_costs)
                        if isinstance(event, TurnCompleted):
                            event = replace(event, cost_usd=cost, seconds=elapsed)
                    yield event
                    if isinstance(event, TurnCompleted | TurnFailed):
                        return
        except Exception:
            # Errors are values at this boundary: the user gets words, the log gets the trace.
            log.exception("turn failed unexpectedly for %s", request.key)
            await self._end_resume(request)  # a restart does not try it again
            yield TurnFailed(
                message="Something went wrong on my side. Please try again.", retryable=True
            )
            return
        finally:
            if not ended:
                # Cut by a shutdown, or closed by the front end: keep the completed tool rounds
                # and count the tokens. Shielded: the cancel that cut the turn must not cut this.
                cut = self._save_cut(request, time.monotonic() - started, sampled, sampled_costs)
                await asyncio.shield(cut)
        log.error("backend %s ended a turn without a final event", self._backend.name)
        await self._end_resume(request)
        yield TurnFailed(message="The answer ended unexpectedly. Please try again.")

    async def _backend_events(
        self, state: ConversationState, request: TurnRequest, resumed: Resumable | None
    ) -> AsyncGenerator[TurnEvent, None]:
        """The backend's events, produced in a task of their own: a stop cancels that task, so
        whatever the backend awaits (the LLM stream, a tool call, an approval) ends at once and
        the backend ends the turn with what was shown. The turn's save happens here, outside
        that task, after the stop has been disarmed: a late stop cannot cut it."""
        queue: asyncio.Queue[TurnEvent | Exception | None] = asyncio.Queue()

        async def produce() -> None:
            events = (
                self._backend.resume_turn(state, request, resumed)
                if resumed is not None
                else self._backend.run_turn(state, request)
            )
            try:
                async for event in events:
                    final = isinstance(event, TurnCompleted | TurnFailed)
                    if final:
                        request.stop.disarm()
                    queue.put_nowait(event)
                    if final:
                        break
                await _close(events)
            except asyncio.CancelledError:
                if not stopped_here(request.stop):
                    raise
                # Stopped before the backend had anything to keep: the conversation stays.
                queue.put_nowait(TurnCompleted(state=state, stopped_by=request.stop.by))
            except Exception as exc:
                queue.put_nowait(exc)
            finally:
                queue.put_nowait(None)

        producer = asyncio.create_task(produce())
        request.stop.arm(producer.cancel)
        self._running[request.turn_id] = request
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self._running.pop(request.turn_id, None)
            request.stop.disarm()
            if not producer.done():
                producer.cancel()  # the consumer went away (Discord failed, shutdown)
                with contextlib.suppress(asyncio.CancelledError):
                    await producer

    async def _end_resume(self, request: TurnRequest) -> None:
        if request.resume.approval_id is None:
            return
        try:
            await self._store.end_resume(request.key)
        except Exception:
            log.exception("could not end the stored position of a turn for %s", request.key)

    async def _save_cut(
        self,
        request: TurnRequest,
        duration_s: float,
        sampled: Usage,
        sampled_costs: list[float | None],
    ) -> None:
        cut = request.cut
        if cut.state is None and not cut.usage and not sampled:
            return
        final = TurnFailed(
            message="", state=cut.state, usage=cut.usage or Usage(), model=cut.model or ""
        )
        try:
            await self._save(request, final, duration_s, sampled, sampled_costs, final=False)
        except Exception:
            log.exception("could not store what the cut turn did for %s", request.key)

    async def _save(
        self,
        request: TurnRequest,
        event: TurnCompleted | TurnFailed,
        duration_s: float,
        sampled: Usage,
        sampled_costs: list[float | None],
        *,
        final: bool = True,
    ) -> float | None:
        """Store the new state with the turn's usage. A failed turn stores what it completed
        (or a repaired state) if the backend says so, and its usage whenever it cost tokens,
        so failed and retried attempts count toward the daily budget too."""
        # MCP servers' sampling requests were answered by the bot's model: they count too.
        usage = event.usage + sampled
        # Priced once, at the turn's end: /status and the daily cost limit read the stored number.
        cost = turn_cost([price(self._cost_of, event.model, event.usage), *sampled_costs])
        record = self._make_record(
            user_id=request.user_id,
            model=event.model,
            usage=usage,
            duration_s=duration_s,
            cost_usd=cost,
        )
        # A final event ends what a restart would have continued (the cut turn's does not).
        ends = {"ends_resume": True} if final and request.resume.approval_id is not None else {}
        if event.state is not None:
            await self._store.save_turn(request.key, event.state, record, **ends)
        elif usage:
            await self._store.save_usage(request.key, record, **ends)
        elif ends:
            await self._store.end_resume(request.key)
        return cost


async def _close(events: AsyncIterator[TurnEvent]) -> None:
    """End a backend's turn generator now (its cleanup runs here, not at garbage collection)."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
