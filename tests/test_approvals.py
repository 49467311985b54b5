"""The approval broker over a real SQLite store: who may decide, decided once, timeouts, restarts."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import ApprovalLists, MCPServerConfig
from bot.core.approvals import (
    ApprovalBroker,
    ApprovalPolicy,
    ApprovalRequest,
    ApproverRule,
    Decision,
    grant_name,
)
from bot.core.audit import AuditTrail
from bot.core.events import ApprovalRequested, ApprovalResolved, ToolCallFinished, ToolCallStarted
from bot.core.state import ConversationKey, TurnRequest
from bot.core.tool_updates import CallUpdates
from bot.store.sqlite import Store

KEY = ConversationKey(guild_id=1, channel_id=2, user_id=3)
# "srv" with the configured defaults: the requester, admins. A server the broker does not know
# gets the strictest rule instead, so the tests name the one they use.
OPEN = {"srv": ApproverRule()}


def request(call_id: str = "call-1", tool: str = "write", server: str = "srv") -> ApprovalRequest:
    return ApprovalRequest(
        key=KEY,
        call_id=call_id,
        server=server,
        tool=tool,
        arguments={"x": 1},
        requester_id=3,
        input_schema={
            "type": "object",
            "properties": {"x": {"type": "integer"}},
            "required": ["x"],
        },
    )


def test_policy_defaults_to_asking() -> None:
    assert ApprovalPolicy().needs_approval("anything")
    assert not ApprovalPolicy("never").needs_approval("anything")
    lists = ApprovalPolicy(ApprovalLists(never=["read"], always=["write"]))
    assert not lists.needs_approval("read")
    assert lists.needs_approval("write") and lists.needs_approval("unlisted")


async def test_only_requester_or_admin_decides_and_only_once(tmp_path: Path) -> None:
    async with Store.open(tmp_path / "a.db") as store:
        broker = ApprovalBroker(store, timeout_s=5, rules=OPEN)
        approval_id = await broker.open(request())
        waiter = asyncio.create_task(broker.wait(approval_id))
        stranger = await broker.click(approval_id, user_id=99, is_admin=False, action="approve")
        assert stranger.outcome == "not_allowed"
        assert not waiter.done()
        results = await asyncio.gather(
            broker.click(approval_id, user_id=3, is_admin=False, action="deny"),
            broker.click(approval_id, user_id=42, is_admin=True, action="approve"),
        )
        assert sorted(r.outcome for r in results) == ["already_decided", "decided"]
        decision = await waiter
        record = await store.get_approval(approval_id)
        assert record.status == decision.status and record.decided_by == decision.decided_by


async def test_timeout_is_a_denial_and_late_clicks_change_nothing(tmp_path: Path) -> None:
    async with Store.open(tmp_path / "a.db") as store:
        broker = ApprovalBroker(store, timeout_s=0.2, rules=OPEN)
        approval_id = await broker.open(request())
        decision = await broker.wait(approval_id)
        assert decision.status == "timeout" and not decision.approved
        assert "not run" in decision.tool_output()
        late = await broker.click(approval_id, user_id=3, is_admin=False, action="approve")
        assert late.outcome == "already_decided" and late.status == "timeout"


async def test_always_grants_the_tool_for_this_conversation_only(tmp_path: Path) -> None:
    async with Store.open(tmp_path / "a.db") as store:
        broker = ApprovalBroker(store, timeout_s=5, rules=OPEN)
        approval_id = await broker.open(request())
        waiter = asyncio.create_task(broker.wait(approval_id))
        await broker.click(approval_id, user_id=3, is_admin=False, action="always")
        assert (await waiter).approved
        assert await broker.preapproved(KEY, grant_name("srv", "write"))
        assert not await broker.preapproved(KEY, grant_name("srv", "other"))
        # A same-named tool of another server is not covered by the grant.
        assert not await broker.preapproved(KEY, grant_name("srv2", "write"))
        other = ConversationKey(guild_id=1, channel_id=2, user_id=4)
        assert not await broker.preapproved(other, grant_name("srv", "write"))


async def test_a_click_after_a_restart_is_expired(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    async with Store.open(path) as store:
        approval_id = await ApprovalBroker(store, timeout_s=5, rules=OPEN).open(request())
    # A new process: a new broker with nobody waiting for the old row.
    async with Store.open(path) as store:
        broker = ApprovalBroker(store, timeout_s=5, rules=OPEN)
        result = await broker.click(approval_id, user_id=3, is_admin=False, action="approve")
        assert result.outcome == "expired"
        assert (await store.get_approval(approval_id)).status == "expired"
        again = await broker.click(approval_id, user_id=3, is_admin=False, action="approve")
        assert again.outcome == "expired"
        unknown = await broker.click(12345, user_id=3, is_admin=False, action="approve")
        assert unknown.outcome == "unknown"


async def test_approvers_and_requester_can_approve(tmp_path: Path) -> None:
    rules = {
        "srv": ApproverRule(
            users=frozenset({50}), roles=frozenset({60}), requester_can_approve=False
        )
    }
    async with Store.open(tmp_path / "a.db") as store:
        broker = ApprovalBroker(store, timeout_s=5, rules=rules)
        approval_id = await broker.open(request())
        waiter = asyncio.create_task(broker.wait(approval_id))
        # The requester may not approve alone, even as an admin.
        own = await broker.click(approval_id, user_id=3, is_admin=True, action="approve")
        assert own.outcome == "not_allowed"
        stranger = await broker.click(approval_id, user_id=99, is_admin=False, action="approve")
        assert stranger.outcome == "not_allowed"
        by_role = await broker.click(
            approval_id, user_id=77, is_admin=False, role_ids=[60], action="approve"
        )
        assert by_role.outcome == "decided"
        assert (await waiter).decided_by == 77
        # ... but may always withdraw their own request.
        second = await broker.open(request("call-2"))
        waiter = asyncio.create_task(broker.wait(second))
        withdrawn = await broker.click(
            second, user_id=3, is_admin=False, action="reason", reason="never mind"
        )
        assert withdrawn.outcome == "decided" and (await waiter).reason == "never mind"


async def test_a_server_the_broker_does_not_know_gets_the_strictest_rule(tmp_path: Path) -> None:
    async with Store.open(tmp_path / "a.db") as store:
        broker = ApprovalBroker(store, timeout_s=5, rules=OPEN)
        rule = broker.rule("unheard-of")
        assert rule == ApproverRule(requester_can_approve=False)  # admins only; asker may deny
        approval_id = await broker.open(request(server="unheard-of"))
        waiter = asyncio.create_task(broker.wait(approval_id))
        for action in ("approve", "always"):
            own = await broker.click(approval_id, user_id=3, is_admin=False, action=action)  # type: ignore[arg-type]
            assert own.outcome == "not_allowed"
        stranger = await broker.click(approval_id, user_id=99, is_admin=False, action="approve")
        assert stranger.outcome == "not_allowed"
        admin = await broker.click(approval_id, user_id=42, is_admin=True, action="approve")
        assert admin.outcome == "decided" and (await waiter).decided_by == 42
        second = await broker.open(request("call-2", server="unheard-of"))
        waiter = asyncio.create_task(broker.wait(second))
        withdrawn = await broker.click(second, user_id=3, is_admin=False, action="deny")
        assert withdrawn.outcome == "decided" and not (await waiter).approved


async def test_new_rules_decide_the_next_click(tmp_path: Path) -> None:
    """A reload hands the broker new rules; a request already open is judged by them too."""
    async with Store.open(tmp_path / "a.db") as store:
        broker = ApprovalBroker(
            store, timeout_s=5, rules={"srv": ApproverRule(users=frozenset({50}))}
        )
        approval_id = await broker.open(request())
        waiter = asyncio.create_task(broker.wait(approval_id))
        broker.set_rules({"srv": ApproverRule(requester_can_approve=False), "new": ApproverRule()})
        removed = await broker.click(approval_id, user_id=50, is_admin=False, action="approve")
        assert removed.outcome == "not_allowed"
        own = await broker.click(approval_id, user_id=3, is_admin=False, action="approve")
        assert own.outcome == "not_allowed"
        assert broker.rule("new") == ApproverRule()
        admin = await broker.click(approval_id, user_id=42, is_admin=True, action="approve")
        assert admin.outcome == "decided" and (await waiter).approved


async def test_edit_is_checked_against_the_schema_and_reason_reaches_the_decision(
    tmp_path: Path,
) -> None:
    async with Store.open(tmp_path / "a.db") as store:
        broker = ApprovalBroker(store, timeout_s=5, rules=OPEN)
        approval_id = await broker.open(request())
        waiter = asyncio.create_task(broker.wait(approval_id))
        bad_json = await broker.click(
            approval_id, user_id=3, is_admin=False, action="edit", edited="{x: 1"
        )
        assert bad_json.outcome == "invalid" and "not valid JSON" in bad_json.problem
        wrong_type = await broker.click(
            approval_id, user_id=3, is_admin=False, action="edit", edited='{"x": "one"}'
        )
        assert wrong_type.outcome == "invalid" and "x" in wrong_type.problem
        assert not waiter.done()
        good = await broker.click(
            approval_id,
            user_id=3,
            is_admin=False,
            action="edit",
            edited='{"x": 2}',
            user_name="Ann",
        )
        assert good.outcome == "decided"
        decision = await waiter
        assert decision.approved and decision.arguments == {"x": 2}
        assert (await store.get_approval(approval_id)).edited_arguments == {"x": 2}

        second = await broker.open(request("call-2"))
        waiter = asyncio.create_task(broker.wait(second))
        await broker.click(
            second,
            user_id=3,
            is_admin=False,
            action="reason",
            reason="use the staging db",
            user_name="Ann",
        )
        decision = await waiter
        assert not decision.approved and "use the staging db" in decision.tool_output()
        assert (await store.get_approval(second)).reason == "use the staging db"


def test_read_only_tools_run_unasked_only_when_configured() -> None:
    plain = ApprovalPolicy()
    assert plain.needs_approval("look", read_only=True)
    auto = ApprovalPolicy("always", auto_approve_read_only=True)
    assert not auto.needs_approval("look", read_only=True)
    assert auto.unasked_because("look", read_only=True) == "read-only"
    assert auto.needs_approval("write", read_only=False)


def test_audit_trail_has_one_line_per_decision_and_run_and_no_values() -> None:
    trail = AuditTrail(b"k" * 32)
    turn = TurnRequest(key=KEY, user_id=3, user_name="Ann", text="hi")
    secret = {"token": "sk-very-secret", "path": "/etc"}
    events = [
        ApprovalRequested(
            call_id="c1", approval_id=9, server="fs", tool="write", arguments=secret, requester_id=3
        ),
        ApprovalResolved(
            call_id="c1",
            approval_id=9,
            approved=True,
            status="approved",
            decided_by=4,
            arguments={"path": "/tmp"},
        ),
        ToolCallStarted(call_id="c1", server="fs", tool="write", arguments={"path": "/tmp"}),
        ToolCallFinished(call_id="c1", server="fs", tool="write", outcome="done", output="ok"),
        ToolCallFinished(call_id="c2", server="", tool="nope", outcome="failed", output="no"),
    ]
    lines = [line for e in events if (line := trail.observe(turn, e))]
    assert len(lines) == 2
    decision, run = lines
    assert "`fs.write`" in decision and "**edit** by <@4>" in decision and "<@3>" in decision
    assert "`path, token`" in decision and "edited: `path` · hmac " in decision
    assert "ran for <@3>: done" in run
    assert "sk-very-secret" not in "".join(lines) and "/etc" not in "".join(lines)


def test_read_only_auto_approval_needs_a_server_the_bot_runs() -> None:
    with pytest.raises(ValidationError, match="auto_approve_read_only"):
        MCPServerConfig(url="http://x/mcp", server_side=True, auto_approve_read_only=True)
    server = MCPServerConfig(
        command="x", approvers={"users": [1], "roles": [2]}, requester_can_approve=False
    )
    rule = ApproverRule.of(server)
    assert rule.users == {1} and rule.roles == {2} and not rule.requester_can_approve


class GrantWriteFails(Store):
    """A store whose "always allow" write fails, as it does on a full disk or a busy file."""

    async def grant_tool(self, key: ConversationKey, tool: str, granted_by: int) -> None:
        raise sqlite3.OperationalError("database is locked")


async def test_a_failed_always_grant_approves_once_and_frees_the_turn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with GrantWriteFails.open(tmp_path / "a.db") as store:
        broker = ApprovalBroker(store, timeout_s=0.5, rules=OPEN)
        approval_id = await broker.open(request())
        waiter = asyncio.create_task(broker.wait(approval_id))
        clicked = await broker.click(approval_id, user_id=3, is_admin=False, action="always")
        # A hang guard only: before the fix the waiter never returned.
        decision = await asyncio.wait_for(waiter, 30)
        assert decision.status == "approved" and decision.decided_by == 3
        assert clicked.outcome == "decided" and clicked.status == "approved"
        assert "could not keep" in caplog.text
        # No grant was kept: the next call of the tool asks again.
        assert not await broker.preapproved(KEY, grant_name("srv", "write"))


async def test_a_waiter_that_lost_the_race_reads_the_decision_instead_of_waiting(
    tmp_path: Path,
) -> None:
    async with Store.open(tmp_path / "a.db") as store:
        broker = ApprovalBroker(store, timeout_s=0.2, rules=OPEN)
        approval_id = await broker.open(request())
        # Decided in the database behind the broker's back (as by a click whose task died
        # between its write and waking the turn): the waiter must not wait for ever.
        assert await store.decide_approval(approval_id, status="denied", decided_by=7)
        decision = await asyncio.wait_for(broker.wait(approval_id), 60)
        assert decision.status == "denied" and decision.decided_by == 7


class Asked:
    """The broker as a turn's gate, noting each approval it opens (the prompts people see)."""

    def __init__(self, broker: ApprovalBroker) -> None:
        self.broker = broker
        self.opened: asyncio.Queue[int] = asyncio.Queue()

    async def preapproved(self, key: ConversationKey, tool: str) -> bool:
        return await self.broker.preapproved(key, tool)

    async def open(self, approval: ApprovalRequest) -> int:
        approval_id = await self.broker.open(approval)
        self.opened.put_nowait(approval_id)
        return approval_id

    async def wait(self, approval_id: int) -> Decision:
        return await self.broker.wait(approval_id)


async def test_the_sampling_grant_covers_no_tool_of_the_server(tmp_path: Path) -> None:
    async with Store.open(tmp_path / "a.db") as store:
        broker = ApprovalBroker(store, timeout_s=5, rules=OPEN)
        gate = Asked(broker)
        turn = TurnRequest(key=KEY, user_id=3, user_name="Ann", text="hi")
        updates = CallUpdates("call-9", turn, gate)
        asking = asyncio.create_task(updates.approve_sampling("srv", {"messages": []}))
        approval_id = await asyncio.wait_for(gate.opened.get(), 30)
        await broker.click(approval_id, user_id=3, is_admin=False, action="always")
        assert await asyncio.wait_for(asking, 30) is None
        # A real tool that happens to be called like the sampling key is not pre-approved.
        assert not await broker.preapproved(KEY, grant_name("srv", "srv__sampling"))
        assert not await broker.preapproved(KEY, grant_name("srv", "sampling"))
        # The sampling grant itself holds: the next request is not asked again.
        again = await asyncio.wait_for(updates.approve_sampling("srv", {"messages": []}), 30)
        assert again is None and gate.opened.empty()
