"""What an approval prompt shows, and who may use the bot: pure pieces of the Discord layer."""

from __future__ import annotations

from types import SimpleNamespace

from bot.config import PermissionsConfig
from bot.core.approvals import ApproverRule
from bot.core.events import ApprovalRequested
from bot.discord.access import Access
from bot.discord.asks.approval_text import (
    outcome_line,
    prompt_text,
    who_may_decide,
    with_line,
    with_outcome,
)


def test_a_long_prompt_is_shortened_keeping_every_key_and_its_code_block() -> None:
    many = {f"key_{i}": "v" * 50 for i in range(60)}
    long_value = {"path": "x.py", "body": "```\n@everyone " + "y" * 5000 + "rm -rf /"}
    for arguments in (many, long_value):
        event = ApprovalRequested(
            call_id="c1",
            approval_id=7,
            server="files",
            tool="write",
            arguments=arguments,
            requester_id=42,
        )
        text, shortened = prompt_text(event)
        assert shortened and len(text) < 1800
        assert text.count("```") == 2  # only our own fence pair: a value cannot break out
        assert "arguments.json" in text and "<@42>" in text and "`write` from `files`" in text
        assert "\\u000a" not in text
        assert all(f'"{key}"' in text for key in arguments)  # every key, even among many
    assert '\n"path": "x.py"\n"body": ' in text  # a few keys: one per line
    assert "rm -rf /" in text  # a long value keeps its end in view, not only its start


def test_invisible_characters_are_shown_as_escapes() -> None:
    event = ApprovalRequested(
        call_id="c1",
        approval_id=7,
        server="s",
        tool="t",
        arguments={"path": "safe\u202etxt.exe"},
        requester_id=1,
    )
    text, shortened = prompt_text(event)
    assert not shortened and "\u202e" not in text and "\\u202e" in text


def test_a_decided_prompt_always_fits_in_one_discord_message() -> None:
    rule = ApproverRule(
        users=frozenset(range(10**17, 10**17 + 40)),
        roles=frozenset(range(10**16, 10**16 + 10)),
        requester_can_approve=False,
    )
    event = ApprovalRequested(
        call_id="c1",
        approval_id=7,
        server="s" * 60,
        tool="t" * 64,
        arguments={f"k{i}": "\u202e" * 40 for i in range(30)},
        requester_id=10**18,
    )
    text, shortened = prompt_text(event, rule)
    assert shortened and "<@1000000000000000000>, who asked, may only deny" in text
    assert "Who may decide: the 40 user(s) and 10 role(s)" in text
    decided = with_line(text, outcome_line("denied", 10**18, reason="no " * 400))
    decided = with_line(decided, outcome_line("approved", 10**18, edited=True))
    assert len(decided) <= 2000 and decided.count("```") % 2 == 0
    once = with_outcome("prompt", "expired", None)
    assert with_outcome(once, "expired", None) == once  # a second expiry adds no second line
    assert "Denied by <@5>" in with_outcome("prompt", "denied", 5)
    only_admins = ApproverRule(requester_can_approve=False)
    assert (
        who_may_decide(only_admins, 5)
        == "Who may decide: an admin; <@5>, who asked, may only deny."
    )


def test_one_rule_for_lists_and_admins() -> None:
    access = Access(
        PermissionsConfig.model_validate(
            {
                "users": {"block": [1, 2]},
                "channels": {"allow": [100]},
                "admin_ids": [2],
                "manager_roles": [77],
            }
        )
    )
    admin_perms = SimpleNamespace(administrator=True)
    blocked_guild_admin = SimpleNamespace(id=1, roles=[], guild_permissions=admin_perms)
    blocked_owner = SimpleNamespace(id=2, roles=[])
    manager = SimpleNamespace(id=3, roles=[SimpleNamespace(id=77)])
    allowed_here, elsewhere = SimpleNamespace(id=100), SimpleNamespace(id=200)
    thread_here = SimpleNamespace(id=300, parent_id=100)
    # block wins over Discord's Administrator permission, but not over admin_ids
    assert not access.allows(blocked_guild_admin, allowed_here)
    assert access.is_admin(blocked_guild_admin)
    assert access.allows(blocked_owner, elsewhere)
    # the channel allow list holds for everyone else, threads following their channel
    assert access.allows(manager, allowed_here) and access.allows(manager, thread_here)
    assert not access.allows(manager, elsewhere)
    assert access.is_manager(manager) and not access.is_admin(manager)
    assert not access.is_manager(SimpleNamespace(id=4, roles=[]))
