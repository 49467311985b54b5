"""Who may run which tool: the approval policy, decisions as values, and the broker that waits for them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bot.config import ApprovalLists, ApprovalSetting
from bot.core.state import ConversationKey

log = logging.getLogger(__name__)

DecisionStatus = Literal["approved", "always", "denied", "timeout", "expired"]
Action = Literal["approve", "deny", "always"]
_STATUS_OF_ACTION: dict[Action, DecisionStatus] = {
    "approve": "approved",
    "deny": "denied",
    "always": "always",
}


@dataclass(frozen=True)
class ApprovalPolicy:
    """`require_approval` of one server: never, always, or lists (unlisted tools need approval)."""

    setting: ApprovalSetting = "always"

    def needs_approval(self, tool: str) -> bool:
        if self.setting == "never":
            return False
        if self.setting == "always":
            return True
        assert isinstance(self.setting, ApprovalLists)
        return tool not in self.setting.never

    def describe(self) -> str:
        if isinstance(self.setting, str):
            return self.setting
        never = ", ".join(self.setting.never) or "none"
        return f"never for: {never}; always for the rest"


@dataclass(frozen=True, kw_only=True)
class Decision:
    status: DecisionStatus
    decided_by: int | None = None

    @property
    def approved(self) -> bool:
        return self.status in ("approved", "always")

    def tool_output(self) -> str:
        """What the model reads when the call did not run."""
        if self.status == "denied":
            return "The user declined to run this tool call. It was not run."
        if self.status == "timeout":
            return "Nobody approved this tool call in time, so it was not run."
        return "This tool call was not approved, so it was not run."


@dataclass(frozen=True, kw_only=True)
class ApprovalRequest:
    key: ConversationKey
    call_id: str
    server: str
    tool: str  # the name the model used; grants ("always") key on it
    arguments: dict[str, Any] = field(default_factory=dict)
    requester_id: int


class ApprovalStore(Protocol):
    async def create_approval(
        self,
        *,
        key: ConversationKey,
        call_id: str,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        requester_id: int,
    ) -> int: ...
    async def decide_approval(
        self, approval_id: int, *, status: str, decided_by: int | None
    ) -> bool: ...
    async def get_approval(self, approval_id: int) -> Any: ...
    async def grant_tool(self, key: ConversationKey, tool: str, granted_by: int) -> None: ...
    async def granted_tools(self, key: ConversationKey) -> set[str]: ...


class ApprovalGate(Protocol):
    """What a backend needs to ask a human. `open` persists the request before anyone sees it."""

    async def preapproved(self, key: ConversationKey, tool: str) -> bool: ...
    async def open(self, request: ApprovalRequest) -> int: ...
    async def wait(self, approval_id: int) -> Decision: ...


ClickOutcome = Literal["decided", "not_allowed", "already_decided", "expired", "unknown"]


@dataclass(frozen=True, kw_only=True)
class ClickResult:
    outcome: ClickOutcome
    status: str | None = None  # the approval's status after the click
    tool: str = ""
    server: str = ""
    requester_id: int | None = None


class ApprovalBroker:
    """Persists approval requests and hands a click's decision to the turn that is waiting for it.

    The database row is the single source of truth: a decision is a compare-and-set on a pending
    row, so two clicks (or a click racing the timeout) can never both win and a tool runs once.
    """

    def __init__(self, store: ApprovalStore, *, timeout_s: float) -> None:
        self._store = store
        self._timeout_s = timeout_s
        self._waiting: dict[int, asyncio.Future[Decision]] = {}

    async def preapproved(self, key: ConversationKey, tool: str) -> bool:
        return tool in await self._store.granted_tools(key)

    async def open(self, request: ApprovalRequest) -> int:
        approval_id = await self._store.create_approval(
            key=request.key,
            call_id=request.call_id,
            server=request.server,
            tool=request.tool,
            arguments=request.arguments,
            requester_id=request.requester_id,
        )
        # Registered before anyone can see the buttons, so an instant click finds its waiter.
        self._waiting[approval_id] = asyncio.get_running_loop().create_future()
        return approval_id

    async def wait(self, approval_id: int) -> Decision:
        future = self._waiting[approval_id]
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._timeout_s)
        except TimeoutError:
            if await self._store.decide_approval(approval_id, status="timeout", decided_by=None):
                return Decision(status="timeout")
            # A click won the race against the timeout; its decision stands.
            return await future
        finally:
            # On cancellation (shutdown) the row stays pending: the next start-up marks it
            # expired and updates its message, and a click meanwhile is answered "expired".
            self._waiting.pop(approval_id, None)

    async def click(
        self, approval_id: int, *, user_id: int, is_admin: bool, action: Action
    ) -> ClickResult:
        record = await self._store.get_approval(approval_id)
        if record is None:
            return ClickResult(outcome="unknown")
        facts = {"tool": record.tool, "server": record.server, "requester_id": record.requester_id}
        if user_id != record.requester_id and not is_admin:
            return ClickResult(outcome="not_allowed", status=record.status, **facts)
        future = self._waiting.get(approval_id)
        status = _STATUS_OF_ACTION[action]
        if future is None:
            # No turn waits for this row: it is from before a restart, or already finished.
            if record.status == "pending":
                await self._store.decide_approval(approval_id, status="expired", decided_by=None)
                return ClickResult(outcome="expired", status="expired", **facts)
            outcome: ClickOutcome = "expired" if record.status == "expired" else "already_decided"
            return ClickResult(outcome=outcome, status=record.status, **facts)
        if not await self._store.decide_approval(approval_id, status=status, decided_by=user_id):
            fresh = await self._store.get_approval(approval_id)
            return ClickResult(outcome="already_decided", status=fresh.status, **facts)
        if status == "always":
            await self._store.grant_tool(record.key, record.tool, user_id)
        if not future.done():
            future.set_result(Decision(status=status, decided_by=user_id))
        return ClickResult(outcome="decided", status=status, **facts)
