"""The first call of a turn resumed after a restart, through the real broker and store: run once
when it may run, never when it may already have run, not at all when it was denied."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.core.approvals import ApprovalBroker, ApprovalPolicy, ApproverRule
from bot.core.events import ToolCallFinished, ToolCallStarted, TurnEvent
from bot.core.resume import LOST_OUTPUT, Resumable, call_entry, decode
from bot.core.state import ConversationKey, TurnRequest
from bot.core.tool_calls import ToolCall, ToolExecutor
from bot.store.sqlite import Store

KEY = ConversationKey(guild_id=1, channel_id=10, user_id=100)
CALL = ToolCall(call_id="call-1", name="files__write", arguments='{"path": "a"}')


@dataclass(frozen=True)
class Spec:
    name: str = "files__write"
    server: str = "files"
    tool: str = "write"
    description: str = "writes a file"
    input_schema: Any = None


@dataclass(frozen=True)
class Result:
    text: str
    is_error: bool = False


class Box:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def tools(self) -> list[Any]:
        return [Spec()]

    def find(self, name: str) -> Any:
        return Spec() if name == Spec.name else None

    async def call(self, name: str, arguments: dict[str, Any], **_: Any) -> Result:
        self.calls.append(arguments)
        return Result(f"wrote {arguments['path']}")


def position(started: bool = False) -> dict[str, Any]:
    calls = [call_entry(CALL.call_id, CALL.name, CALL.arguments)]
    return {"backend": "chat", "model": "m", "calls": calls, "round": 0, "started": started}


async def resume(
    store: Store, status: str, *, started: bool = False, click: str | None = None
) -> tuple[list[TurnEvent], Box, int]:
    """Asks (as the turn did before the restart), decides as given, then resumes the call on a
    new broker (a new process)."""
    approval_id = await store.create_approval(
        key=KEY,
        call_id=CALL.call_id,
        server="files",
        tool="write",
        arguments={"path": "a"},
        requester_id=100,
        resume=json.dumps({"v": 1, **position(started)}),
    )
    if status != "pending":
        await store.decide_approval(approval_id, status=status, decided_by=100)
    broker = ApprovalBroker(store, timeout_s=30, rules={"files": ApproverRule()})
    box = Box()
    executor = ToolExecutor(box, {"files": ApprovalPolicy("always")}, broker)
    request = TurnRequest(key=KEY, user_id=100, user_name="asker", text="")
    request.resume.position, request.resume.approval_id = position(), approval_id
    resumed = Resumable(approval_id=approval_id, status=status, position=position(started))
    if status == "pending":
        broker.adopt(approval_id, schema=None, grant="g", timeout_s=30)

    async def collect() -> list[TurnEvent]:
        return [event async for event in executor.run(CALL, request, resumed=resumed)]

    running = asyncio.create_task(collect())
    if click is not None:
        await asyncio.sleep(0.05)
        result = await broker.click(approval_id, user_id=100, is_admin=False, action=click)  # type: ignore[arg-type]
        assert result.outcome == "decided"
    return await running, box, approval_id


def finished(events: list[TurnEvent]) -> ToolCallFinished:
    last = events[-1]
    assert isinstance(last, ToolCallFinished)
    return last


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    async with Store.open(tmp_path / "bot.db") as opened:
        yield opened


async def test_approved_but_not_started_before_the_restart_runs_once_now(store: Store) -> None:
    events, box, approval_id = await resume(store, "approved")
    assert box.calls == [{"path": "a"}]
    assert finished(events).outcome == "done"
    [(_, stored)] = await store.unfinished_approvals()
    assert decode(stored) is not None and decode(stored)["started"] is True  # type: ignore[index]


async def test_one_that_may_have_started_is_never_run_again(store: Store) -> None:
    events, box, _ = await resume(store, "approved", started=True)
    assert box.calls == []
    assert not any(isinstance(e, ToolCallStarted) for e in events)
    assert (finished(events).outcome, finished(events).output) == ("lost", LOST_OUTPUT)


async def test_one_denied_before_the_restart_does_not_run(store: Store) -> None:
    events, box, _ = await resume(store, "denied")
    assert box.calls == []
    assert finished(events).outcome == "denied"
    assert "declined" in finished(events).output


async def test_a_pending_one_waits_for_the_click_and_runs_once(store: Store) -> None:
    events, box, approval_id = await resume(store, "pending", click="approve")
    assert box.calls == [{"path": "a"}]
    assert finished(events).outcome == "done"
    record = await store.get_approval(approval_id)
    assert record is not None and record.status == "approved"
