"""Who may run which tool: the approval policy, who may decide, and the broker that waits for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

from bot.config import MCPServerConfig

# Re-exported: callers import the approval rules from here.
from bot.core.approval_policy import ApprovalPolicy as ApprovalPolicy
from bot.core.approval_policy import is_read_only as is_read_only
from bot.core.approval_policy import policy_of as policy_of
from bot.core.arguments import check_arguments
from bot.core.decisions import ApprovalRequest, Decision, DecisionStatus, grant_name
from bot.core.resume import encode
from bot.core.state import ConversationKey

log = logging.getLogger(__name__)

Action = Literal["approve", "deny", "always", "edit", "reason"]
_STATUS_OF_ACTION: dict[Action, DecisionStatus] = {
    "approve": "approved",
    "deny": "denied",
    "always": "always",
    "edit": "approved",
    "reason": "denied",
}
# After a click won the race against the timeout, how long the waiter gives it to hand over its
# decision (writing an "always" grant may wait for a busy database file) before reading the row.
_HANDOVER_S = 10.0


@dataclass(frozen=True, kw_only=True)
class ApproverRule:
    """Who may decide a server's approvals: admins, listed users and roles, and the person who
    asked, who with `requester_can_approve: false` may only say no (withdraw their request)."""

    users: frozenset[int] = frozenset()
    roles: frozenset[int] = frozenset()
    requester_can_approve: bool = True

    @classmethod
    def of(cls, server: MCPServerConfig) -> ApproverRule:
        return cls(
            users=frozenset(server.approvers.users),
            roles=frozenset(server.approvers.roles),
            requester_can_approve=server.requester_can_approve,
        )

    def allows(
        self,
        user_id: int,
        *,
        requester_id: int,
        is_admin: bool,
        role_ids: Iterable[int] = (),
        approving: bool = True,
    ) -> bool:
        if user_id == requester_id:
            # "Someone else must approve" holds for an admin's own request too: that is the point.
            return self.requester_can_approve or not approving
        return is_admin or user_id in self.users or bool(self.roles & set(role_ids))


def rules_of(servers: dict[str, MCPServerConfig]) -> dict[str, ApproverRule]:
    return {name: ApproverRule.of(server) for name, server in servers.items()}


# For a server the configuration does not name (a server-side label nobody configured, a name
# from before a reload): nobody but admins may approve, and the asker may only withdraw.
STRICTEST = ApproverRule(requester_can_approve=False)


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
        resume: str | None = None,
    ) -> int: ...
    async def keep_resume(self, approval_id: int, resume: str) -> None: ...
    async def decide_approval(
        self,
        approval_id: int,
        *,
        status: str,
        decided_by: int | None,
        edited_arguments: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> bool: ...
    async def get_approval(self, approval_id: int) -> Any: ...
    async def grant_tool(self, key: ConversationKey, tool: str, granted_by: int) -> None: ...
    async def granted_tools(self, key: ConversationKey) -> set[str]: ...


class ApprovalGate(Protocol):
    """What a backend needs to ask a human. `open` persists the request before anyone sees it."""

    async def preapproved(self, key: ConversationKey, tool: str) -> bool: ...
    async def open(self, request: ApprovalRequest) -> int: ...
    async def wait(self, approval_id: int) -> Decision: ...
    async def withdraw(self, approval_id: int) -> None: ...
    async def keep_position(self, approval_id: int, position: dict[str, Any]) -> None: ...


ClickOutcome = Literal[
    "decided", "not_allowed", "already_decided", "expired", "unknown", "invalid", "not_editable"
]


@dataclass(frozen=True, kw_only=True)
class ClickResult:
    outcome: ClickOutcome
    status: str | None = None  # the approval's status after the click
    tool: str = ""
    server: str = ""
    requester_id: int | None = None
    problem: str = ""  # for "invalid": what is wrong with edited arguments
    # For "expired": whether this click did the expiring (else start-up or an earlier click did,
    # and already said so).
    expired_now: bool = False


class ApprovalBroker:
    """Persists approval requests and hands a click's decision to the turn that is waiting for it.

    The database row is the single source of truth: a decision is a compare-and-set on a pending
    row, so two clicks (or a click racing the timeout) can never both win and a tool runs once.
    """

    def __init__(
        self,
        store: ApprovalStore,
        *,
        timeout_s: float,
        rules: dict[str, ApproverRule] | None = None,
    ) -> None:
        self._store = store
        self._timeout_s = timeout_s
        self._rules = dict(rules or {})
        self._waiting: dict[int, asyncio.Future[Decision]] = {}
        self._schemas: dict[int, dict[str, Any] | None] = {}
        self._grants: dict[int, str] = {}
        # Approvals adopted after a restart wait only what is left of their timeout.
        self._timeouts: dict[int, float] = {}

    def rule(self, server: str) -> ApproverRule:
        return self._rules.get(server, STRICTEST)

    def set_rules(self, rules: dict[str, ApproverRule]) -> None:
        """A reload's rules; every later click (also on a prompt already shown) is judged by them."""
        self._rules = dict(rules)

    def pending(self) -> int:
        """Approvals this process's turns wait for right now."""
        return len(self._waiting)

    def waiting(self, approval_id: int) -> bool:
        """Whether a turn of this process waits for this approval (not so after a restart)."""
        return approval_id in self._waiting

    def editable(self, approval_id: int) -> bool:
        return self._schemas.get(approval_id) is not None

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
            resume=encode(request.resume) if request.resume is not None else None,
        )
        # Registered before anyone can see the buttons, so an instant click finds its waiter.
        self.adopt(approval_id, schema=request.input_schema, grant=request.grant())
        return approval_id

    def adopt(
        self,
        approval_id: int,
        *,
        schema: dict[str, Any] | None,
        grant: str,
        timeout_s: float | None = None,
    ) -> None:
        """Wait for this approval's decision: one just opened, or (after a restart) one whose
        turn resumes, with what is left of its timeout. Clicks on its buttons then decide."""
        self._waiting[approval_id] = asyncio.get_running_loop().create_future()
        self._schemas[approval_id] = schema
        self._grants[approval_id] = grant
        if timeout_s is not None:
            self._timeouts[approval_id] = timeout_s

    async def keep_position(self, approval_id: int, position: dict[str, Any]) -> None:
        """Where the turn of this approval stands now (before a tool call, after a round)."""
        await self._store.keep_resume(approval_id, encode(position))

    async def wait(self, approval_id: int) -> Decision:
        """The decision, within the timeout and a short handover: never unbounded, since the
        waiting turn holds its conversation's lock."""
        future = self._waiting[approval_id]
        timeout_s = self._timeouts.pop(approval_id, self._timeout_s)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            if await self._store.decide_approval(approval_id, status="timeout", decided_by=None):
                return Decision(status="timeout")
            # A click won the race against the timeout; its decision stands. The click hands it
            # over in a moment; should it never (its task died after its write), the row says.
            try:
                return await asyncio.wait_for(
                    asyncio.shield(future), min(self._timeout_s, _HANDOVER_S)
                )
            except TimeoutError:
                return await self._decision_in_row(approval_id)
        finally:
            # On cancellation (shutdown) the row stays pending: the next start-up resumes the
            # turn (or expires the row), and a click meanwhile is answered "expired".
            self._waiting.pop(approval_id, None)
            self._schemas.pop(approval_id, None)
            self._grants.pop(approval_id, None)

    async def withdraw(self, approval_id: int) -> None:
        """The turn that asked was stopped: nobody can decide any more. Stored as expired (a
        click then hears so); a click that won just before keeps its decision, but no tool runs."""
        self._waiting.pop(approval_id, None)
        await self._store.decide_approval(approval_id, status="expired", decided_by=None)

    async def _decision_in_row(self, approval_id: int) -> Decision:
        record = await self._store.get_approval(approval_id)
        if record is None or record.status not in get_args(DecisionStatus):
            return Decision(status="expired")
        status: DecisionStatus = record.status
        grant = self._grants.get(approval_id)
        if status == "always" and grant not in await self._store.granted_tools(record.key):
            status = "approved"  # the grant was not kept: approved this once
        return Decision(
            status=status,
            decided_by=record.decided_by,
            arguments=record.edited_arguments,
            reason=record.reason,
        )

    async def may_decide(
        self,
        approval_id: int,
        *,
        user_id: int,
        is_admin: bool,
        action: Action,
        role_ids: Iterable[int] = (),
    ) -> ClickResult | None:
        """A refusal for this user (or an unknown approval), or None when they may decide.

        For opening a modal: nobody should type a reason or edit arguments only to be refused.
        """
        record = await self._store.get_approval(approval_id)
        if record is None:
            return ClickResult(outcome="unknown")
        if not self.rule(record.server).allows(
            user_id,
            requester_id=record.requester_id,
            is_admin=is_admin,
            role_ids=role_ids,
            approving=_STATUS_OF_ACTION[action] != "denied",
        ):
            return ClickResult(
                outcome="not_allowed",
                status=record.status,
                tool=record.tool,
                server=record.server,
                requester_id=record.requester_id,
            )
        return None

    async def click(
        self,
        approval_id: int,
        *,
        user_id: int,
        is_admin: bool,
        action: Action,
        role_ids: Iterable[int] = (),
        user_name: str = "",
        edited: str | None = None,
        reason: str | None = None,
        where: str = "",
    ) -> ClickResult:
        """One decision. `edited` is the JSON text of edited arguments (action "edit");
        `reason` the words of a denial with a reason (action "reason"); `where` names the place
        of the click for the audit line."""
        record = await self._store.get_approval(approval_id)
        if record is None:
            return ClickResult(outcome="unknown")
        facts = {"tool": record.tool, "server": record.server, "requester_id": record.requester_id}
        if not self.rule(record.server).allows(
            user_id,
            requester_id=record.requester_id,
            is_admin=is_admin,
            role_ids=role_ids,
            approving=_STATUS_OF_ACTION[action] != "denied",
        ):
            return ClickResult(outcome="not_allowed", status=record.status, **facts)
        future = self._waiting.get(approval_id)
        status = _STATUS_OF_ACTION[action]
        if future is None:
            # No turn waits for this row: it is from before a restart, or already finished.
            if record.status == "pending":
                now = await self._store.decide_approval(
                    approval_id, status="expired", decided_by=None
                )
                return ClickResult(outcome="expired", status="expired", expired_now=now, **facts)
            outcome: ClickOutcome = "expired" if record.status == "expired" else "already_decided"
            return ClickResult(outcome=outcome, status=record.status, **facts)
        arguments: dict[str, Any] | None = None
        if action == "edit":
            schema = self._schemas.get(approval_id)
            if schema is None:
                return ClickResult(outcome="not_editable", status=record.status, **facts)
            arguments, problem = check_arguments(edited or "", schema)
            if problem:
                return ClickResult(
                    outcome="invalid", status=record.status, problem=problem, **facts
                )
        reason = ((reason or "").strip() or "(no reason given)") if action == "reason" else None
        if not await self._store.decide_approval(
            approval_id,
            status=status,
            decided_by=user_id,
            edited_arguments=arguments,
            reason=reason,
        ):
            fresh = await self._store.get_approval(approval_id)
            return ClickResult(outcome="already_decided", status=fresh.status, **facts)
        # The turn is woken whatever becomes of the grant: it waits holding its conversation.
        try:
            if status == "always":
                status = await self._grant(approval_id, record, user_id)
        finally:
            if not future.done():
                future.set_result(
                    Decision(
                        status=status,
                        decided_by=user_id,
                        decided_by_name=user_name,
                        arguments=arguments,
                        reason=reason,
                        where=where,
                    )
                )
        return ClickResult(outcome="decided", status=status, **facts)

    async def _grant(self, approval_id: int, record: Any, user_id: int) -> DecisionStatus:
        """Keep an "always allow"; when that fails the call is still approved, once."""
        grant = self._grants.get(approval_id, grant_name(record.server, record.tool))
        try:
            await self._store.grant_tool(record.key, grant, user_id)
        except Exception as exc:
            log.warning(
                "approval %s: could not keep the 'always allow' for %s.%s (%s); approved once,"
                " the next call asks again",
                approval_id,
                record.server,
                record.tool,
                exc,
            )
            return "approved"
        return "always"
