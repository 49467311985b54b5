"""End to end: approvals people can trust: nothing hidden, the right deciders, edit, reasons, audit."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import bot_config
from tests.e2e.harness import BotProcess, Chat, buttons, running
from tests.e2e.test_tools import tool_outputs
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import McpApprovalRequest, McpCall, ScriptedLLM, Text, ToolCall
from tests.fakes.mcp_server import read_calls, stdio_params

ADMINISTRATOR = 1 << 3


@dataclass
class Approvals:
    """A bot process configured for approval flows, and the people and places it knows."""

    discord: FakeDiscord
    llm: ScriptedLLM
    bot: BotProcess
    backend: str
    call_log: object
    audit_channel: int
    approver: int  # has the approver role of the "strict" server
    approver_user: int  # named in the "strict" server's approvers.users, no role
    manager: int  # has a manager role
    blocked: int  # in discord.permissions.users.block
    guild_admin: int  # Discord Administrator, but blocked too: block wins over that

    def calls(self, tool: str, marker: str) -> list[dict]:
        return [
            c
            for c in read_calls(self.call_log)  # type: ignore[arg-type]
            if c["tool"] == tool and marker in json.dumps(c)
        ]

    def audit_lines(self) -> list[str]:
        return [
            line
            for m in self.discord.messages(self.audit_channel)
            for line in m["content"].splitlines()
        ]


async def _start(tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM, backend: str):
    discord = FakeDiscord()
    await discord.start()
    approver_role = discord.add_role("approvers")
    manager_role = discord.add_role("managers")
    admin_role = discord.add_role("admins", permissions=ADMINISTRATOR)
    people = {
        "approver": discord.add_user("approver", roles=[approver_role]),
        "approver_user": discord.add_user("approver-user"),
        "manager": discord.add_user("manager", roles=[manager_role]),
        "blocked": discord.add_user("blocked"),
        "guild_admin": discord.add_user("guild-admin", roles=[admin_role]),
    }
    audit_channel = discord.add_channel("audit")
    workdir = tmp_path_factory.mktemp(f"approvals-{backend}")
    call_log = workdir / "calls.jsonl"
    config = bot_config(llm, workdir, call_log, backend)
    config["discord"] = {
        "edit_interval_s": 1.0,
        "scope": "channel",
        "audit_channel_id": audit_channel,
        # The approver users of "strict" get each of its prompts by DM too.
        "approvals": {"dm": True},
        "permissions": {
            "users": {"block": [people["blocked"], people["guild_admin"]]},
            "manager_roles": [manager_role],
        },
    }
    config["mcp"]["approval_timeout_s"] = 20
    servers = {
        "gated": {**stdio_params(call_log, name="gated"), "require_approval": "always"},
        "strict": {
            **stdio_params(call_log, name="strict"),
            "requester_can_approve": False,
            "approvers": {"roles": [approver_role], "users": [people["approver_user"]]},
        },
        "ro": {
            **stdio_params(call_log, name="ro", annotated=True),
            "auto_approve_read_only": True,
        },
        # Dies at start-up with a line on stderr: /tools may show why to admins only.
        "broken": {
            "command": sys.executable,
            "args": ["-c", "import sys; sys.stderr.write('private-stderr-line'); sys.exit(3)"],
        },
    }
    if backend == "responses":
        for name in ("docs", "wiki"):
            servers[name] = {
                "url": f"http://127.0.0.1:9/{name}-mcp",
                "server_side": True,
                "require_approval": "always",
            }
    config["mcp"]["servers"] = servers
    bot = BotProcess(discord, config, workdir)
    await bot.start()
    return Approvals(
        discord=discord,
        llm=llm,
        bot=bot,
        backend=backend,
        call_log=call_log,
        audit_channel=audit_channel,
        **people,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["chat", "responses"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, llm: ScriptedLLM
) -> AsyncIterator[Approvals]:
    made = await _start(tmp_path_factory, llm, request.param)
    try:
        yield made
    finally:
        try:
            assert await made.bot.stop() == 0, made.bot.log()[-3000:]
        finally:
            await made.discord.stop()


def custom_id_of(prompt: dict, action: str) -> str:
    return next(b["custom_id"] for b in buttons(prompt) if b["custom_id"].endswith(f":{action}"))


async def click(world: Approvals, prompt: dict, action: str, user: int):
    return await world.discord.click_button(int(prompt["id"]), custom_id_of(prompt, action), user)


def attachment_json(world: Approvals, message: dict, filename: str) -> dict:
    (attachment,) = [a for a in message["attachments"] if a["filename"] == filename]
    return json.loads(world.discord.attachment_data(attachment))


# -- nothing hidden -----------------------------------------------------------------------------


async def test_long_arguments_are_attached_in_full(world: Approvals) -> None:
    chat = Chat(world.discord, "long-args")
    key = f"k-long-{world.backend}"
    note = "x" * 5000 + f" and then rm -rf / {world.backend}"
    world.llm.script(key, [ToolCall("gated__record", {"note": note})], Text("Not recorded."))
    asked = await chat.say(f"{key} record")
    prompt = await chat.prompt()
    assert len(prompt["content"]) <= 2000
    assert '"note"' in prompt["content"]
    assert "shortened" in prompt["content"] and "arguments.json" in prompt["content"]
    assert attachment_json(world, prompt, "arguments.json") == {"note": note}
    edit = next(b for b in buttons(prompt) if b["custom_id"].endswith(":edit"))
    assert edit["disabled"]  # over Discord's 4,000 characters for a text input
    await (await click(world, prompt, "deny", chat.user)).wait_response()
    await chat.answer_text(int(asked["id"]), "Not recorded.")
    assert world.calls("record", "rm -rf") == []


async def test_short_arguments_need_no_attachment(world: Approvals) -> None:
    chat = Chat(world.discord, "short-args")
    key = f"k-short-{world.backend}"
    world.llm.script(key, [ToolCall("gated__echo", {"text": "hi"})], Text("Fine."))
    asked = await chat.say(f"{key} echo")
    prompt = await chat.prompt()
    assert prompt["attachments"] == [] and "shortened" not in prompt["content"]
    assert "Who may decide" in prompt["content"]
    await (await click(world, prompt, "approve", chat.user)).wait_response()
    await chat.answer_text(int(asked["id"]), "Fine.")


# -- who may decide -----------------------------------------------------------------------------


async def test_requester_cannot_approve_alone_but_an_approver_can(world: Approvals) -> None:
    chat = Chat(world.discord, "strict")
    key = f"k-strict-{world.backend}"
    note = f"strict-note-{world.backend}"
    world.llm.script(key, [ToolCall("strict__record", {"note": note})], Text("Recorded."))
    asked = await chat.say(f"{key} record")
    prompt = await chat.prompt()
    assert f"<@{chat.user}>, who asked, may only deny" in prompt["content"]
    refused = await (await click(world, prompt, "approve", chat.user)).wait_response()
    assert refused["type"] == 4 and refused["data"]["flags"] & 64
    assert "can't decide" in refused["data"]["content"]
    assert world.calls("record", note) == []
    done = await (await click(world, prompt, "approve", world.approver)).wait_response()
    assert f"Approved by <@{world.approver}>" in done["data"]["content"]
    await chat.answer_text(int(asked["id"]), "Recorded.")
    assert len(world.calls("record", note)) == 1


async def test_an_approver_user_and_an_admin_decide_for_someone_else(world: Approvals) -> None:
    chat = Chat(world.discord, "deciders")
    key = f"k-deciders-{world.backend}"
    strict, gated = f"by-approver-user-{world.backend}", f"by-admin-{world.backend}"
    world.llm.script(
        key,
        [ToolCall("strict__record", {"note": strict})],
        [ToolCall("gated__record", {"note": gated})],
        Text("Both decided by others."),
    )
    asked = await chat.say(f"{key} record twice")
    prompt = await chat.prompt()
    stranger = world.discord.add_user("deciders-stranger")
    refused = await (await click(world, prompt, "approve", stranger)).wait_response()
    assert "can't decide" in refused["data"]["content"]
    done = await (await click(world, prompt, "approve", world.approver_user)).wait_response()
    assert f"Approved by <@{world.approver_user}>" in done["data"]["content"]
    prompt = await chat.prompt(newer_than=prompt)
    refused = await (await click(world, prompt, "approve", world.approver_user)).wait_response()
    assert "can't decide" in refused["data"]["content"]  # an approver of "strict" only
    admin = world.discord.owner_id  # the guild owner: an Administrator, not blocked
    done = await (await click(world, prompt, "approve", admin)).wait_response()
    assert f"Approved by <@{admin}>" in done["data"]["content"]
    await chat.answer_text(int(asked["id"]), "Both decided by others.")
    assert len(world.calls("record", strict)) == 1 and len(world.calls("record", gated)) == 1


async def test_an_approver_decides_from_the_dm_copy_and_every_copy_shows_it(
    world: Approvals,
) -> None:
    chat = Chat(world.discord, "dm-copy")
    key = f"k-dm-copy-{world.backend}"
    note = f"dm-copy-note-{world.backend}"
    world.llm.script(key, [ToolCall("strict__record", {"note": note})], Text("Decided afar."))
    dm_channel = world.discord.add_dm_channel(world.approver_user)
    seen = {int(m["id"]) for m in world.discord.messages(dm_channel)}
    asked = await chat.say(f"{key} record")
    prompt = await chat.prompt()

    def dm_copy() -> dict | None:
        new = [m for m in world.discord.messages(dm_channel) if int(m["id"]) not in seen]
        return next((m for m in new if m.get("components")), None)

    copy = await world.discord.wait_for(dm_copy, timeout=20)
    link = f"/channels/{world.discord.guild_id}/{chat.channel}/{prompt['id']}"
    assert link in copy["content"] and f"<#{chat.channel}>" in copy["content"]
    assert "Fake Guild" in copy["content"] and "`strict`" in copy["content"]
    assert custom_id_of(copy, "approve") == custom_id_of(prompt, "approve")
    assert world.discord.pings(int(copy["id"]))["users"] == []
    done = await (await click(world, copy, "approve", world.approver_user)).wait_response()
    assert f"Approved by <@{world.approver_user}>" in done["data"]["content"]
    await chat.answer_text(int(asked["id"]), "Decided afar.")
    assert len(world.calls("record", note)) == 1

    def channel_prompt_decided() -> bool:
        shown = world.discord.message(int(prompt["id"])) or {}
        return f"Approved by <@{world.approver_user}>" in shown.get("content", "") and all(
            b["disabled"] for b in buttons(shown)
        )

    await world.discord.wait_for(channel_prompt_decided, timeout=10)

    def audited() -> list[str]:
        return [
            line
            for line in world.audit_lines()
            if f"<@{chat.user}>" in line and "`strict.record` asked" in line
        ]

    (line,) = await world.discord.wait_for(audited, timeout=10)
    assert f"**approve** by <@{world.approver_user}> in a DM" in line


async def test_a_decision_in_the_channel_closes_the_dm_copy(world: Approvals) -> None:
    chat = Chat(world.discord, "dm-closed")
    key = f"k-dm-closed-{world.backend}"
    note = f"dm-closed-note-{world.backend}"
    world.llm.script(key, [ToolCall("strict__record", {"note": note})], Text("Denied here."))
    dm_channel = world.discord.add_dm_channel(world.approver_user)
    seen = {int(m["id"]) for m in world.discord.messages(dm_channel)}
    asked = await chat.say(f"{key} record")
    prompt = await chat.prompt()

    def dm_copy() -> dict | None:
        new = [m for m in world.discord.messages(dm_channel) if int(m["id"]) not in seen]
        return next((m for m in new if "dm-closed" in json.dumps(m)), None)

    copy = await world.discord.wait_for(dm_copy, timeout=20)
    await (await click(world, prompt, "deny", chat.user)).wait_response()
    await chat.answer_text(int(asked["id"]), "Denied here.")

    def dm_copy_closed() -> bool:
        shown = world.discord.message(int(copy["id"])) or {}
        return f"Denied by <@{chat.user}>" in shown.get("content", "") and all(
            b["disabled"] for b in buttons(shown)
        )

    await world.discord.wait_for(dm_copy_closed, timeout=10)
    assert world.calls("record", note) == []


@pytest.mark.discord_errors(403)  # the refused DM is the point of the test
async def test_an_approver_with_closed_dms_decides_in_the_channel(world: Approvals) -> None:
    """Their DM copy fails (Discord's 50007): logged, and the channel prompt works as always."""
    chat = Chat(world.discord, "dm-refused")
    key = f"k-dm-refused-{world.backend}"
    note = f"dm-refused-note-{world.backend}"
    world.llm.script(key, [ToolCall("strict__record", {"note": note})], Text("Decided here."))
    dm_channel = world.discord.add_dm_channel(world.approver_user)
    seen = {int(m["id"]) for m in world.discord.messages(dm_channel)}
    world.discord.close_dms(world.approver_user)
    try:
        asked = await chat.say(f"{key} record")
        prompt = await chat.prompt()

        def refused() -> bool:
            return any(
                r.method == "POST"
                and r.path.endswith(f"/channels/{dm_channel}/messages")
                and r.status == 403
                for r in world.discord.requests
            )

        await world.discord.wait_for(refused, timeout=20)
        done = await (await click(world, prompt, "approve", world.approver_user)).wait_response()
        assert f"Approved by <@{world.approver_user}>" in done["data"]["content"]
        await chat.answer_text(int(asked["id"]), "Decided here.")
    finally:
        world.discord.close_dms(world.approver_user, closed=False)
    assert len(world.calls("record", note)) == 1
    assert [m for m in world.discord.messages(dm_channel) if int(m["id"]) not in seen] == []
    await world.bot.wait_logged(
        f"could not send its prompt to approver {world.approver_user} by DM: 403 Forbidden"
    )


async def test_the_prompt_pings_the_requester_and_never_a_role(world: Approvals) -> None:
    # The requester holds a role and the text names the approvers' role: neither may notify.
    chat = Chat(world.discord, "role-ping")
    key = f"k-role-ping-{world.backend}"
    note = f"role-ping-note-{world.backend}"
    world.llm.script(key, [ToolCall("strict__record", {"note": note})], Text("Left alone."))
    asked = await chat.say(f"{key} record", user=world.manager)
    prompt = await chat.prompt()
    assert "members of <@&" in prompt["content"]
    pings = world.discord.pings(int(prompt["id"]))
    assert pings["users"] == [world.manager]
    assert pings["roles"] == [] and not pings["everyone"]
    allowed = pings["allowed_mentions"]
    assert allowed["parse"] == [] and not allowed.get("roles") and not allowed.get("replied_user")
    assert [int(u) for u in allowed["users"]] == [world.manager]
    denied = await (await click(world, prompt, "deny", world.manager)).wait_response()
    assert f"Denied by <@{world.manager}>" in denied["data"]["content"]
    await chat.answer_text(int(asked["id"]), "Left alone.")
    assert world.calls("record", note) == []


# -- edit & approve -----------------------------------------------------------------------------


async def test_edit_runs_the_edited_arguments_once(world: Approvals) -> None:
    chat = Chat(world.discord, "edit")
    key = f"k-edit-{world.backend}"
    wrong, right = f"wrong-{world.backend}", f"right-{world.backend}"
    world.llm.script(key, [ToolCall("gated__record", {"note": wrong})], Text("Edited run."))
    asked = await chat.say(f"{key} record")
    prompt = await chat.prompt()

    opened = await click(world, prompt, "edit", chat.user)
    await opened.wait_response()
    assert opened.modal is not None and opened.modal["custom_id"].endswith(":edit")
    field = opened.text_inputs()["arguments"]
    assert json.loads(field["value"]) == {"note": wrong}

    bad = await world.discord.submit_modal(opened, {"arguments": '{"note": '})
    answer = await bad.wait_response()
    assert answer["type"] == 4 and answer["data"]["flags"] & 64
    assert "not valid JSON" in answer["data"]["content"]
    opened = await click(world, prompt, "edit", chat.user)
    await opened.wait_response()
    off_schema = await world.discord.submit_modal(opened, {"arguments": '{"note": 5}'})
    answer = await off_schema.wait_response()
    assert answer["data"]["flags"] & 64 and "note" in answer["data"]["content"]
    assert world.calls("record", wrong) == [] and world.calls("record", right) == []

    opened = await click(world, prompt, "edit", chat.user)
    await opened.wait_response()
    good = await world.discord.submit_modal(opened, {"arguments": json.dumps({"note": right})})
    answer = await good.wait_response()
    assert answer["type"] == 7
    assert (
        "edited arguments" in answer["data"]["content"]
        and str(chat.user) in answer["data"]["content"]
    )
    await chat.answer_text(int(asked["id"]), "Edited run.")
    assert world.calls("record", wrong) == []
    assert [c["arguments"] for c in world.calls("record", right)] == [{"note": right}]
    (output,) = tool_outputs(world.llm.requests_for(key)[1].body)
    assert "edited the arguments" in output and right in output
    final = world.discord.message(int(prompt["id"]))
    assert attachment_json(world, final, "edited-arguments.json") == {"note": right}


async def test_every_copy_of_a_form_is_answered_and_only_the_first_decision_runs(
    world: Approvals,
) -> None:
    """Forms are read from the submit itself, not from a copy discord.py holds (it keeps one
    per custom_id, and only once the bot heard Discord accepted it): an older copy of the
    form is answered too, and the one-winner rule still holds."""
    chat = Chat(world.discord, "stale-form")
    key = f"k-stale-form-{world.backend}"
    note = f"stale-form-{world.backend}"
    world.llm.script(key, [ToolCall("gated__record", {"note": "x"})], Text("First form won."))
    asked = await chat.say(f"{key} record")
    prompt = await chat.prompt()
    first = await click(world, prompt, "edit", chat.user)
    await first.wait_response()
    second = await click(world, prompt, "edit", chat.user)  # the same form again
    await second.wait_response()
    invalid = await world.discord.submit_modal(second, {"arguments": "{"})
    assert "not valid JSON" in (await invalid.wait_response())["data"]["content"]
    older = await world.discord.submit_modal(first, {"arguments": json.dumps({"note": note})})
    answer = await older.wait_response()
    assert answer["type"] == 7 and "edited arguments" in answer["data"]["content"]
    late = await world.discord.submit_modal(second, {"arguments": json.dumps({"note": "late"})})
    answer = await late.wait_response()
    assert answer["data"]["flags"] & 64 and "already decided" in answer["data"]["content"]
    await chat.answer_text(int(asked["id"]), "First form won.")
    assert [c["arguments"] for c in world.calls("record", note)] == [{"note": note}]
    assert world.calls("record", "late") == [] and world.calls("record", "x") == []


# -- deny with a reason -------------------------------------------------------------------------


async def test_reason_reaches_the_model_and_nothing_runs(world: Approvals) -> None:
    chat = Chat(world.discord, "reason")
    key = f"k-reason-{world.backend}"
    note = f"reason-note-{world.backend}"
    world.llm.script(key, [ToolCall("gated__record", {"note": note})], Text("I'll ask Bob."))
    asked = await chat.say(f"{key} record")
    prompt = await chat.prompt()
    opened = await click(world, prompt, "reason", chat.user)
    await opened.wait_response()
    assert opened.modal is not None and "reason" in opened.text_inputs()
    submitted = await world.discord.submit_modal(opened, {"reason": "ask Bob first @everyone"})
    answer = await submitted.wait_response()
    assert answer["type"] == 7 and "ask Bob first" in answer["data"]["content"]
    assert world.discord.pings(int(prompt["id"]))["everyone"] is False
    await chat.answer_text(int(asked["id"]), "I'll ask Bob.")
    assert world.calls("record", note) == []
    (output,) = tool_outputs(world.llm.requests_for(key)[1].body)
    assert "ask Bob first" in output and "not run" in output


async def test_a_stranger_cannot_open_the_modals(world: Approvals) -> None:
    chat = Chat(world.discord, "stranger-modal")
    key = f"k-stranger-modal-{world.backend}"
    world.llm.script(key, [ToolCall("gated__echo", {"text": "x"})], Text("Ok."))
    asked = await chat.say(f"{key} echo")
    prompt = await chat.prompt()
    stranger = world.discord.add_user("stranger")
    for action in ("edit", "reason"):
        refused = await (await click(world, prompt, action, stranger)).wait_response()
        assert refused["type"] == 4 and "can't decide" in refused["data"]["content"]
    await (await click(world, prompt, "deny", chat.user)).wait_response()
    await chat.answer_text(int(asked["id"]), "Ok.")


# -- read-only tools ----------------------------------------------------------------------------


async def test_read_only_tools_run_unasked_others_ask(world: Approvals) -> None:
    chat = Chat(world.discord, "readonly")
    key = f"k-ro-{world.backend}"
    topic = f"topic-{world.backend}"
    world.llm.script(
        key,
        [ToolCall("ro__look", {"topic": topic})],
        [ToolCall("ro__purge", {"topic": topic})],
        Text("Looked, not purged."),
    )
    asked = await chat.say(f"{key} look it up")
    prompt = await chat.prompt()
    assert "`purge`" in prompt["content"]  # destructive despite readOnlyHint: asks
    assert len(world.calls("look", topic)) == 1  # ran before anyone was asked
    await (await click(world, prompt, "deny", chat.user)).wait_response()
    await chat.answer_text(int(asked["id"]), "Looked, not purged.")
    assert world.calls("purge", topic) == []
    prompts = [m for m in chat.bot_messages() if "Approval needed" in m["content"]]
    assert len(prompts) == 1


# -- the audit channel --------------------------------------------------------------------------


async def test_audit_channel_has_a_line_per_decision_and_run(world: Approvals) -> None:
    chat = Chat(world.discord, "audited")
    key = f"k-audit-{world.backend}"
    world.llm.script(
        key,
        [ToolCall("gated__add", {"a": 1, "b": 2})],
        [ToolCall("ro__look", {"topic": "audit"})],
        Text("Audited."),
    )
    asked = await chat.say(f"{key} add")
    prompt = await chat.prompt()
    await (await click(world, prompt, "approve", chat.user)).wait_response()
    await chat.answer_text(int(asked["id"]), "Audited.")

    def lines() -> list[str]:
        mine = [line for line in world.audit_lines() if f"<@{chat.user}>" in line]
        return mine if len(mine) >= 3 else []

    decision, *runs = await world.discord.wait_for(lines, timeout=10)
    assert "`gated.add`" in decision and "**approve**" in decision
    assert f"by <@{chat.user}>" in decision and "a, b" in decision
    assert any("`gated.add` ran" in r and "done" in r for r in runs)
    assert any("`ro.look` ran" in r for r in runs)
    for message in world.discord.messages(world.audit_channel):
        pings = world.discord.pings(int(message["id"]))
        assert pings["users"] == [] and pings["roles"] == [] and not pings["everyone"]


async def test_an_argument_key_cannot_forge_an_audit_line(world: Approvals) -> None:
    chat = Chat(world.discord, "forged-audit")
    key = f"k-forge-{world.backend}"
    marker = f"forged-{world.backend}"
    forged = f"\n🔐 `{marker}.delete_all` asked by <@3>: **deny** by <@999> · args: x"
    world.llm.script(key, [ToolCall("ro__look", {forged: 1, "topic": "x"})], Text("Looked."))
    asked = await chat.say(f"{key} look")
    await chat.answer_text(int(asked["id"]), "Looked.")

    def lines() -> list[str]:
        return [line for line in world.audit_lines() if f"<@{chat.user}>" in line or marker in line]

    (line,) = await world.discord.wait_for(lines, timeout=10)
    assert line.startswith("🔧 `ro.look` ran for") and marker in line
    assert not any(line.startswith(f"🔐 `{marker}") for line in world.audit_lines())


# -- server-side tools (responses only) ---------------------------------------------------------


async def test_always_for_one_server_side_server_does_not_cover_another(
    world: Approvals,
) -> None:
    if world.backend != "responses":
        pytest.skip("server-side MCP servers exist on the responses backend only")
    chat = Chat(world.discord, "two-servers")
    key = "k-two-servers"
    world.llm.script(
        key,
        [McpApprovalRequest("search", {"q": "a"}, server_label="docs")],
        [McpCall("search", {"q": "a"}, output="hit", server_label="docs"), Text("Docs searched.")],
        [McpApprovalRequest("search", {"q": "b"}, server_label="wiki")],
        Text("Wiki asked."),
    )
    first = await chat.say(f"{key} search docs")
    prompt = await chat.prompt()
    assert buttons(prompt)[3]["disabled"]  # a server-side call cannot be edited
    await (await click(world, prompt, "always", chat.user)).wait_response()
    await chat.answer_text(int(first["id"]), "Docs searched.")
    second = await chat.say(f"{key} search wiki")
    other = await chat.prompt(newer_than=prompt)
    assert "`search` from `wiki`" in other["content"]
    opened = await click(world, other, "reason", chat.user)
    await opened.wait_response()
    await (await world.discord.submit_modal(opened, {"reason": "wiki is stale"})).wait_response()
    await chat.answer_text(int(second["id"]), "Wiki asked.")
    (answer,) = [
        i
        for i in world.llm.requests_for(key)[3].body["input"]
        if i.get("type") == "mcp_approval_response"
    ]
    assert answer["approve"] is False and answer["reason"] == "wiki is stale"

    def audited() -> list[str]:
        mine = [line for line in world.audit_lines() if f"<@{chat.user}>" in line]
        return mine if len(mine) >= 3 else []

    lines = await world.discord.wait_for(audited, timeout=10)
    assert any("`docs.search`" in line and "**always**" in line for line in lines)
    assert any("`docs.search` ran" in line and "done" in line for line in lines)  # mcp_call
    assert any("`wiki.search`" in line and "**reason**" in line for line in lines)


async def test_a_server_side_label_naming_no_server_side_server_gets_the_strictest_rule(
    world: Approvals,
) -> None:
    """The model server says which server asks: a label we never gave it (here the name of a
    server the bot runs, with a looser rule, and a name nobody configured) must not borrow a
    rule. Only admins may approve; the asker may only deny."""
    if world.backend != "responses":
        pytest.skip("server-side MCP servers exist on the responses backend only")
    chat = Chat(world.discord, "unknown-label")
    key = "k-unknown-label"
    world.llm.script(
        key,
        [McpApprovalRequest("echo", {"text": "a"}, server_label="gated")],
        [McpCall("echo", {"text": "a"}, output="a", server_label="gated"), Text("Echoed.")],
        [McpApprovalRequest("search", {"q": "b"}, server_label="elsewhere")],
        Text("Not searched."),
    )
    first = await chat.say(f"{key} echo")
    prompt = await chat.prompt()
    assert f"<@{chat.user}>, who asked, may only deny" in prompt["content"]
    for user in (chat.user, world.approver):
        refused = await (await click(world, prompt, "approve", user)).wait_response()
        assert refused["data"]["flags"] & 64 and "can't decide" in refused["data"]["content"]
    admin = world.discord.owner_id  # the guild owner: an Administrator, not blocked
    await (await click(world, prompt, "approve", admin)).wait_response()
    await chat.answer_text(int(first["id"]), "Echoed.")

    second = await chat.say(f"{key} search")
    other = await chat.prompt(newer_than=prompt)
    assert f"<@{chat.user}>, who asked, may only deny" in other["content"]
    refused = await (await click(world, other, "always", chat.user)).wait_response()
    assert "can't decide" in refused["data"]["content"]
    await (await click(world, other, "deny", chat.user)).wait_response()
    await chat.answer_text(int(second["id"]), "Not searched.")
    answers = [
        i
        for r in world.llm.requests_for(key)
        for i in r.body["input"]
        if i.get("type") == "mcp_approval_response"
    ]
    assert [a["approve"] for a in answers] == [True, False]


# -- slash commands under the access lists ------------------------------------------------------


async def command(
    world: Approvals, name: str, user: int, channel: int, options: dict | None = None
) -> dict:
    interaction = await world.discord.slash_command(name, user, channel, options)
    return await interaction.wait_response()


async def test_blocked_users_get_no_commands_even_as_guild_admins(world: Approvals) -> None:
    channel = world.discord.add_channel("blocked-commands")
    for user in (world.blocked, world.guild_admin):
        for name, options in (("tools", {}), ("model", {"name": "test-model-2"}), ("reset", {})):
            answer = await command(world, name, user, channel, options)
            assert answer["data"]["flags"] & 64
            assert "can't use my commands here" in answer["data"]["content"], (name, user)


async def test_block_wins_over_discord_administrator_for_mentions(world: Approvals) -> None:
    chat = Chat(world.discord, "blocked-mention")
    key = f"k-blocked-mention-{world.backend}"
    world.llm.script(key, Text("Answered the allowed one."))
    ignored = await chat.say(f"{key} from a blocked admin", user=world.guild_admin)
    asked = await chat.say(f"{key} from an allowed user")
    await chat.answer_text(int(asked["id"]), "Answered the allowed one.")
    assert chat.replies_to(int(ignored["id"])) == []
    assert len(world.llm.requests_for(key)) == 1


async def test_tools_shows_failure_reasons_to_admins_only(world: Approvals) -> None:
    chat = Chat(world.discord, "tools-cmd")
    plain = (await command(world, "tools", chat.user, chat.channel))["data"]["content"]
    assert "**broken**: unavailable" in plain and "private-stderr-line" not in plain
    assert "(" not in plain.split("**broken**: unavailable", 1)[1].split("\n", 1)[0]
    assert "`ro__look` (runs unasked: read-only)" in plain
    assert "`ro__purge` (asks first)" in plain
    # strict: its approver users, then roles
    assert f"decided by: <@{world.approver_user}>, <@&" in plain
    assert "the asker may only deny" in plain
    admin = world.discord.owner_id  # the guild owner: an Administrator, not blocked
    full = (await command(world, "tools", admin, chat.channel))["data"]["content"]
    assert "**broken**: unavailable (" in full


async def test_shared_conversation_needs_a_manager_and_an_idle_turn(world: Approvals) -> None:
    chat = Chat(world.discord, "manage")
    refused = await command(world, "reset", chat.user, chat.channel)
    assert "only admins and members with a manager role" in refused["data"]["content"]
    model = ("openai/" if world.backend == "chat" else "") + "test-model-2"
    refused = await command(world, "model", chat.user, chat.channel, {"name": model})
    assert "only admins and members with a manager role" in refused["data"]["content"]
    changed = await command(world, "model", world.manager, chat.channel, {"name": model})
    assert f"Using `{model}`" in changed["data"]["content"]
    ok = await command(world, "reset", world.manager, chat.channel)
    assert "forgotten" in ok["data"]["content"] or "nothing to forget" in ok["data"]["content"]

    key = f"k-busy-{world.backend}"
    world.llm.script(key, [ToolCall("gated__echo", {"text": "busy"})], Text("Was busy."))
    asked = await chat.say(f"{key} echo")
    prompt = await chat.prompt()  # the turn now waits for a decision
    for options in ({}, {"everyone": True}):
        user = world.manager if not options else world.discord.owner_id
        busy = await command(world, "reset", user, chat.channel, options)
        assert "still answering" in busy["data"]["content"], options
    await (await click(world, prompt, "deny", chat.user)).wait_response()
    await chat.answer_text(int(asked["id"]), "Was busy.")


# -- restarts -----------------------------------------------------------------------------------


async def test_a_form_opened_before_a_restart_expires_runs_nothing_and_is_audited_once(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    discord = FakeDiscord()
    await discord.start()
    audit_channel = discord.add_channel("audit-restart")
    call_log = tmp_path / "calls.jsonl"
    config = bot_config(llm, tmp_path, call_log, "chat", shutdown_grace_s=1)
    config["discord"]["audit_channel_id"] = audit_channel
    try:
        async with running(BotProcess(discord, config, tmp_path)) as bot:
            chat = Chat(discord, "restart-form")
            key = "k-restart-form"
            llm.script(key, [ToolCall("gated__record", {"note": "before"})], Text("Gone."))
            await chat.say(f"{key} record")
            prompt = await chat.prompt()
            opened = await discord.click_button(
                int(prompt["id"]), custom_id_of(prompt, "edit"), chat.user
            )
            await opened.wait_response()
            assert await bot.stop() == 0
        # Its time is up by the next start (one within its time resumes instead).
        late_config = {**config, "mcp": {**config["mcp"], "approval_timeout_s": 1}}
        async with running(BotProcess(discord, late_config, tmp_path)) as restarted:
            await discord.wait_for(
                lambda: "Expired" in (discord.message(int(prompt["id"])) or {}).get("content", "")
            )
            late = await discord.submit_modal(opened, {"arguments": '{"note": "after"}'})
            answer = await late.wait_response()
            # The form's answer updates the prompt in place: the expiry line, nothing to click.
            assert answer["type"] == 7, answer
            assert answer["data"]["content"].endswith(
                "\n⌛ Expired: the bot restarted before anyone decided. Ask again."
            )
            assert buttons(answer["data"]) and all(b["disabled"] for b in buttons(answer["data"]))
            assert [c for c in read_calls(call_log) if c["tool"] == "record"] == []
            # Stopping posts every queued audit line first.
            assert await restarted.stop() == 0
        expired = [
            line
            for m in discord.messages(audit_channel)
            for line in m["content"].splitlines()
            if "**expired**" in line
        ]
        assert len(expired) == 1, expired  # said at the restart; the late form adds none
    finally:
        await discord.stop()


# -- the audit channel: denials and the argument digest ------------------------------------------


async def test_audit_lines_say_deny_and_hash_values_they_never_show(world: Approvals) -> None:
    chat = Chat(world.discord, "audit-deny")
    key = f"k-audit-deny-{world.backend}"
    secret, other = f"hunter2-{world.backend}", f"swordfish-{world.backend}"
    world.llm.script(
        key,
        [ToolCall("gated__record", {"note": secret})],
        [ToolCall("gated__record", {"note": secret})],
        [ToolCall("gated__record", {"note": other})],
        Text("Audited all three."),
    )
    asked = await chat.say(f"{key} record")
    prompt = await chat.prompt()
    await (await click(world, prompt, "deny", chat.user)).wait_response()
    prompt = await chat.prompt(newer_than=prompt)
    await (await click(world, prompt, "approve", chat.user)).wait_response()
    prompt = await chat.prompt(newer_than=prompt)
    await (await click(world, prompt, "deny", chat.user)).wait_response()
    await chat.answer_text(int(asked["id"]), "Audited all three.")

    def lines() -> list[str]:
        mine = [line for line in world.audit_lines() if f"<@{chat.user}>" in line]
        return mine if len(mine) >= 4 else []  # three decisions, one run

    mine = await world.discord.wait_for(lines, timeout=10)
    decisions = [line for line in mine if line.startswith("🔐")]
    assert [d.split("**")[1] for d in decisions] == ["deny", "approve", "deny"]
    assert all(f"by <@{chat.user}>" in d and "`note`" in d for d in decisions)
    digests = [re.search(r"hmac ([0-9a-f]{12})", d) for d in decisions]
    assert all(digests), decisions
    first, same, different = (d.group(1) for d in digests if d)
    assert first == same != different  # a digest of the values, not of the keys alone
    assert not any(secret in line or other in line for line in world.audit_lines())


async def test_a_manager_stops_a_shared_answer_and_the_queued_question_starts(
    world: Approvals,
) -> None:
    """scope: channel: the asker, admins and managers may stop the shared answer; others may
    not; the question queued behind it is answered next."""
    chat = Chat(world.discord, "stop-shared")
    key = f"k-stop-shared-{world.backend}"
    queued_key = f"k-stop-queued-{world.backend}"
    world.llm.script(key, Text(" ".join(f"w{i}" for i in range(400)), chunk_size=8, delay_s=0.1))
    world.llm.script(queued_key, Text("The queued one, answered."))
    asked = await chat.say(f"{key} talk a lot")
    await world.discord.wait_for(lambda: chat.replies_to(int(asked["id"])))
    other = world.discord.add_user("stop-shared-other")
    queued = await chat.say(f"{queued_key} my turn", user=other)
    refused = await command(world, "stop", other, chat.channel)
    assert "Only the person who asked" in refused["data"]["content"]
    everyone = await command(world, "stop", other, chat.channel, {"everyone": True})
    assert "Only admins and managers" in everyone["data"]["content"]
    stopped = await command(world, "stop", world.manager, chat.channel)
    assert "Stopped" in stopped["data"]["content"]
    text = await chat.answer_text(int(asked["id"]), "-# ⏹ stopped by ")
    assert text.splitlines()[-1] == "-# ⏹ stopped by manager"
    assert "The queued one, answered." in await chat.answer_text(int(queued["id"]), "answered")


async def test_stop_everyone_stops_every_answer_in_the_channel(world: Approvals) -> None:
    chat = Chat(world.discord, "stop-everyone")
    thread_key = f"k-stop-all-{world.backend}"
    world.llm.script(
        thread_key, Text(" ".join(f"v{i}" for i in range(400)), chunk_size=8, delay_s=0.1)
    )
    asked = await chat.say(f"{thread_key} go")
    await world.discord.wait_for(lambda: chat.replies_to(int(asked["id"])))
    answered = await command(world, "stop", world.manager, chat.channel, {"everyone": True})
    assert answered["data"]["content"] == "⏹ Stopped 1 answer(s)."
    await chat.answer_text(int(asked["id"]), "-# ⏹ stopped by manager")
