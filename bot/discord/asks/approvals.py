"""Approval prompts on Discord: persistent `mcpa:` buttons and `mcpm:` modals, wired to the broker."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.core.approvals import Action, ApprovalBroker, ClickResult
from bot.core.arguments import pretty
from bot.core.events import ApprovalRequested, ApprovalResolved
from bot.discord.access import role_ids
from bot.discord.asks.approval_copies import (
    PromptCopies,
    closing,
    dm_recipients,
    role_pings,
    where,
)
from bot.discord.asks.approval_forms import ArgumentsModal, ReasonModal
from bot.discord.asks.approval_text import (
    EDITED_FILE,
    MODAL_TEXT_MAX,
    arguments_file,
    outcome_line,
    prompt_text,
    who_may_decide,
    with_outcome,
    withdrawn_line,
)
from bot.discord.asks.modal_values import submitted_values

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.discord.audit import DiscordAudit
    from bot.discord.host import BotHost

log = logging.getLogger(__name__)

_MODAL_ID = re.compile(r"mcpm:(?P<approval_id>[0-9]+):(?P<kind>edit|reason)")

_BUTTONS: tuple[tuple[Action, str, discord.ButtonStyle], ...] = (
    ("approve", "Approve", discord.ButtonStyle.success),
    ("deny", "Deny", discord.ButtonStyle.danger),
    ("always", "Always allow", discord.ButtonStyle.secondary),
    ("edit", "Edit & approve", discord.ButtonStyle.primary),
    ("reason", "Deny with reason", discord.ButtonStyle.secondary),
)


def custom_id(approval_id: int, action: str) -> str:
    return f"mcpa:{approval_id}:{action}"


def approval_view(
    approval_id: int, *, disabled: bool = False, editable: bool = True
) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for action, _, _ in _BUTTONS:
        off = disabled or (action == "edit" and not editable)
        view.add_item(ApprovalButton(approval_id, action, disabled=off))
    return view


# -- clicks and modals --------------------------------------------------------------------------


class ApprovalButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"mcpa:(?P<approval_id>[0-9]+):(?P<action>approve|deny|always|edit|reason)",
):
    """Rebuilt from its custom_id on every click, so it keeps working after a restart."""

    def __init__(self, approval_id: int, action: Action, *, disabled: bool = False) -> None:
        label, style = next((lab, sty) for act, lab, sty in _BUTTONS if act == action)
        super().__init__(
            discord.ui.Button(
                label=label,
                style=style,
                custom_id=custom_id(approval_id, action),
                disabled=disabled,
            )
        )
        self.approval_id = approval_id
        self.action: Action = action

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> ApprovalButton:
        action: Action = match["action"]  # type: ignore[assignment]
        return cls(int(match["approval_id"]), action)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot: BotHost = interaction.client
        if self.action in ("edit", "reason"):
            await _open_modal(bot, interaction, self.approval_id, self.action)
            return
        await decide(bot, interaction, self.approval_id, self.action)


async def decide(
    bot: BotHost,
    interaction: discord.Interaction[Any],
    approval_id: int,
    action: Action,
    *,
    edited: str | None = None,
    reason: str | None = None,
) -> None:
    user = await bot.approvals.copies.decider(interaction, approval_id)
    result = await bot.services.broker.click(
        approval_id,
        user_id=user.id,
        is_admin=bot.access.is_admin(user),
        role_ids=role_ids(user),
        user_name=user.display_name,
        action=action,
        edited=edited,
        reason=reason,
        where=where(interaction),
    )
    if result.outcome == "decided" and action == "edit" and edited is not None:
        arguments = json.loads(edited)
        line = outcome_line("approved", user.id, edited=True)
        await _show_decision(
            interaction, approval_id, line, lambda: arguments_file(arguments, EDITED_FILE)
        )
        return
    if result.outcome == "decided" and action == "reason":
        await _show_decision(
            interaction, approval_id, outcome_line("denied", user.id, reason=reason)
        )
        return
    await _answer_click(bot, interaction, approval_id, result)


def _closing(
    approval_id: int, line: str, attach: Callable[[], discord.File] | None = None
) -> Callable[[discord.Message | None], dict[str, Any]]:
    return closing(lambda: approval_view(approval_id, disabled=True), line, attach)


async def _show_decision(
    interaction: discord.Interaction[Any],
    approval_id: int,
    line: str,
    attach: Callable[[], discord.File] | None = None,
) -> None:
    closing = _closing(approval_id, line, attach)
    await interaction.response.edit_message(**closing(interaction.message))
    # The channel prompt and its DM copies: the one clicked is already up to date.
    shown = interaction.message.id if interaction.message else None
    copies = interaction.client.approvals.copies
    await copies.show_everywhere(approval_id, lambda m: m.edit(**closing(m)), shown=shown)


async def _answer_click(
    bot: BotHost, interaction: discord.Interaction[Any], approval_id: int, result: ClickResult
) -> None:
    match result.outcome:
        case "not_allowed":
            assert result.requester_id is not None
            rule = bot.services.broker.rule(result.server)
            await interaction.response.send_message(
                "You can't decide this one. "
                + who_may_decide(rule, result.requester_id, result.server),
                ephemeral=True,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        case "invalid":
            await interaction.response.send_message(
                f"Nothing ran: the edited arguments are not valid. {result.problem}",
                ephemeral=True,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        case "not_editable":
            await interaction.response.send_message(
                "These arguments can't be edited here; approve or deny instead.", ephemeral=True
            )
        case "decided" | "expired":
            assert result.status is not None
            await _show_decision(
                interaction, approval_id, outcome_line(result.status, interaction.user.id)
            )
            if result.outcome == "expired":
                # Said once: by start-up, or by the click that found the row left pending.
                if result.expired_now and bot.audit is not None:
                    record = await bot.services.store.get_approval(approval_id)
                    if record is not None:
                        bot.audit.expired(record)
                await interaction.followup.send(
                    "This request expired because the bot restarted. Mention me again to retry.",
                    ephemeral=True,
                )
        case "already_decided":
            await interaction.response.send_message(
                f"This was already decided ({result.status}).", ephemeral=True
            )
        case _:
            await interaction.response.send_message(
                "I don't know this approval any more. Mention me again to retry.", ephemeral=True
            )


async def _open_modal(
    bot: BotHost, interaction: discord.Interaction[Any], approval_id: int, kind: Action
) -> None:
    broker = bot.services.broker
    user = await bot.approvals.copies.decider(interaction, approval_id)
    refusal = await broker.may_decide(
        approval_id,
        user_id=user.id,
        is_admin=bot.access.is_admin(user),
        action=kind,
        role_ids=role_ids(user),
    )
    if refusal is not None:
        await _answer_click(bot, interaction, approval_id, refusal)
        return
    record = await bot.services.store.get_approval(approval_id)
    if record.status != "pending" or not broker.waiting(approval_id):
        # Decided already, or from before a restart: nobody waits, so no click can decide it;
        # the broker says which (and marks a leftover as expired).
        await decide(bot, interaction, approval_id, "deny")
        return
    modal: discord.ui.Modal
    if kind == "edit":
        if not broker.editable(approval_id) or len(pretty(record.arguments)) > MODAL_TEXT_MAX:
            await _answer_click(bot, interaction, approval_id, ClickResult(outcome="not_editable"))
            return
        modal = ArgumentsModal(approval_id, record.arguments)
    else:
        modal = ReasonModal(approval_id)
    await interaction.response.send_modal(modal)
    # Its submit is answered by DiscordApprovals.on_interaction (see modal_values.py); nothing
    # in discord.py may answer it a second time.
    modal.stop()


# -- prompts that no click reported ------------------------------------------------------------


class DiscordApprovals:
    """Sends approval prompts and shows outcomes that no click reported (timeouts, restarts)."""

    def __init__(
        self,
        broker: ApprovalBroker,
        store: Any,
        audit: DiscordAudit | None = None,
        settings: Callable[[], Settings]
        | None = None,  # the current ones (a reload may change them)
    ) -> None:
        self._broker = broker
        self._store = store
        self._audit = audit
        self._settings = settings
        self._prompts: dict[int, discord.Message] = {}
        self.copies = PromptCopies()

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """Every submit of an approval form, whenever it was opened (before a restart too):
        the broker decides whether the submitter may decide, and only the first decision
        counts."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        match = _MODAL_ID.fullmatch(str(data.get("custom_id", "")))
        if match is None:
            return
        values = submitted_values(data)
        kind: Action = "edit" if match["kind"] == "edit" else "reason"
        await decide(
            interaction.client,
            interaction,
            int(match["approval_id"]),
            kind,
            edited=values.get("arguments", "") if kind == "edit" else None,
            reason=values.get("reason", "") if kind == "reason" else None,
        )

    async def send_prompt(
        self, event: ApprovalRequested, anchor: discord.Message
    ) -> discord.Message:
        rule = self._broker.rule(event.server)
        text, shortened = prompt_text(event, rule)
        editable = event.editable and len(pretty(event.arguments)) <= MODAL_TEXT_MAX
        delivery = self._settings().discord if self._settings else None
        text, roles = role_pings(rule, text, delivery)
        file = (lambda: arguments_file(event.arguments)) if shortened else None
        # Only the requester (and the approver roles) may be pinged: the text includes
        # model-chosen arguments. fail_if_not_exists=False: a deleted anchor must not stop it.
        message = await anchor.channel.send(
            text,
            reference=anchor.to_reference(fail_if_not_exists=False),
            view=approval_view(event.approval_id, editable=editable),
            mention_author=False,
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=roles, users=[discord.Object(event.requester_id)]
            ),
            **({"file": file()} if file else {}),  # type: ignore[call-overload]
        )
        self._prompts[event.approval_id] = message
        await self._store.attach_approval_message(event.approval_id, message.channel.id, message.id)
        if delivery is not None and delivery.approvals.dm:
            view = lambda: approval_view(event.approval_id, editable=editable)  # noqa: E731
            approvers = dm_recipients(rule, delivery)
            await self.copies.send_dms(event, message, text, approvers, view, file)
        return message

    async def show_resolution(self, event: ApprovalResolved) -> None:
        message = self._prompts.pop(event.approval_id, None)
        if message is None or event.status not in ("timeout", "withdrawn"):
            return  # a click already updated the message in its interaction response
        if event.status == "withdrawn":
            line = withdrawn_line(event.decided_by_name)
        else:
            line = outcome_line("timeout", None)
        closing = _closing(event.approval_id, line)
        try:
            await message.edit(**closing(message))
        except discord.HTTPException as exc:
            log.warning(
                "could not mark approval %s as %s: %s", event.approval_id, event.status, exc
            )
        edit = lambda m: m.edit(**closing(m))  # noqa: E731
        await self.copies.show_everywhere(event.approval_id, edit, shown=message.id)

    def adopt_prompt(self, approval_id: int, message: discord.Message, guild_id: int) -> None:
        """A prompt from before a restart whose turn resumed: its timeout is shown on it, and
        clicks on its DM copies are judged as in its server."""
        self._prompts[approval_id] = message
        if guild_id:
            self.copies.judged_in(approval_id, guild_id)

    async def expire(self, bot: discord.Client, record: Any) -> bool:
        """A prompt left by a previous process that can no longer be answered (its timeout
        passed, or its turn cannot continue): marked expired, once. False if it was decided."""
        if not await self._store.decide_approval(record.id, status="expired", decided_by=None):
            return False
        if self._audit is not None:
            self._audit.expired(record)
        if not record.message_id or not record.channel_id:
            return True
        channel = bot.get_partial_messageable(record.channel_id)
        message = channel.get_partial_message(record.message_id)
        try:
            current = await message.fetch()
            await message.edit(
                content=with_outcome(current.content, "expired", None),
                view=approval_view(record.id, disabled=True),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            log.warning("could not mark approval %s as expired: %s", record.id, exc)
        return True
