"""An MCP server's question to the requester: `mcpe:<id>:open|decline` buttons and form modals.

The form is answered in pages of five text inputs (a modal's limit), required fields first; each
page is checked against the schema before the next one opens. Only the requester or an admin
may answer. The question lives as long as the tool call that asked it: one left open by a
restart is marked expired at the next start, and its id (random) never names a newer question.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord

from bot.core.elicitation import Answer, ElicitationBroker, Pending, validate
from bot.core.events import ElicitationRequested, ElicitationResolved
from bot.discord.asks.modal_values import submitted_values
from bot.store.open_questions import OpenQuestion, OpenQuestionQueries

if TYPE_CHECKING:
    from bot.discord.host import BotHost

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 1500
_OUTCOMES = {
    "accept": "✅ Answered by <@{user}>.",
    "decline": "❌ Declined by <@{user}>.",
    "cancel": "⌛ Nobody answered in time, so the question was cancelled.",
    "expired": "⌛ Expired: the bot restarted before anyone answered. Ask again.",
}


_FORM_ID = re.compile(r"mcpe:(?P<id>[A-Za-z0-9_-]{1,40}):submit")


def custom_id(elicitation_id: str, action: str) -> str:
    return f"mcpe:{elicitation_id}:{action}"


def prompt_text(event: ElicitationRequested) -> str:
    message = event.message.replace("```", "`\u200b``")[:MAX_MESSAGE_CHARS]
    head = f"❓ **`{event.server}` asks** <@{event.requester_id}>:\n>>> {message}"
    if event.url:
        return f"{head}\n-# Open the link, then press **Done**."
    if event.pages == 0:  # nothing to fill in: the question is a plain yes or no
        return f"{head}\n-# Press **Answer** to accept, or **Decline**."
    pages = f" ({event.pages} pages)" if event.pages > 1 else ""
    return f"{head}\n-# Press **Answer** to fill in the form{pages}, or **Decline**."


def _view(
    pending_id: str, *, url: str | None, label: str, disabled: bool = False
) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    if url and not disabled:
        view.add_item(discord.ui.Button(label="Open link", url=url))
    view.add_item(ElicitButton(pending_id, "open", label=label, disabled=disabled))
    view.add_item(ElicitButton(pending_id, "decline", label="Decline", disabled=disabled))
    return view


def _with_outcome(content: str, action: str, user_id: int | None) -> str:
    line = _OUTCOMES[action].format(user=user_id)
    return content if line in content else f"{content}\n{line}"


def _closed(question_id: str, content: str, action: str, user_id: int | None) -> dict[str, Any]:
    """The edit that closes a question's prompt: its outcome line, the buttons disabled."""
    return {
        "content": _with_outcome(content, action, user_id),
        "view": _view(question_id, url=None, label="Answer", disabled=True),
        "allowed_mentions": discord.AllowedMentions.none(),
    }


def _broker(interaction: discord.Interaction[Any]) -> ElicitationBroker | None:
    bot: BotHost = interaction.client  # type: ignore[assignment]
    return bot.services.elicitations  # type: ignore[no-any-return]


async def _allowed(interaction: discord.Interaction[Any], pending: Pending | None) -> bool:
    bot: BotHost = interaction.client  # type: ignore[assignment]
    if pending is None:
        await interaction.response.send_message("This question is no longer open.", ephemeral=True)
        return False
    if not pending.may_answer(interaction.user.id, bot.access.is_admin(interaction.user)):
        await interaction.response.send_message(
            f"Only <@{pending.requester_id}>, who asked, or an admin can answer this.",
            ephemeral=True,
        )
        return False
    return True


class ElicitButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"mcpe:(?P<id>[A-Za-z0-9_-]{1,40}):(?P<action>open|decline)",
):
    def __init__(
        self, elicitation_id: str, action: str, *, label: str = "", disabled: bool = False
    ) -> None:
        style = discord.ButtonStyle.primary if action == "open" else discord.ButtonStyle.danger
        super().__init__(
            discord.ui.Button(
                label=label or ("Answer" if action == "open" else "Decline"),
                style=style,
                custom_id=custom_id(elicitation_id, action),
                disabled=disabled,
            )
        )
        self.elicitation_id = elicitation_id
        self.action = action

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str]
    ) -> ElicitButton:
        return cls(match["id"], match["action"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        broker = _broker(interaction)
        pending = broker.get(self.elicitation_id) if broker is not None else None
        if broker is None or not await _allowed(interaction, pending):
            return
        assert pending is not None
        # A link, or a form with no fields (Discord refuses a modal without inputs): the
        # button is the whole answer.
        if self.action == "decline" or pending.url is not None or not pending.fields:
            action = "decline" if self.action == "decline" else "accept"
            broker.finish(pending.id, Answer(action, {} if action == "accept" else None))  # type: ignore[arg-type]
            await _close(interaction, pending, action)
            return
        page = FormPage(pending)
        await interaction.response.send_modal(page)
        # Its submit is answered by DiscordElicitations.on_interaction (see modal_values.py);
        # nothing in discord.py may answer it a second time.
        page.stop()


class FormPage(discord.ui.Modal):
    """One page of the form: up to five text inputs named after the schema's fields."""

    def __init__(self, pending: Pending) -> None:
        count = len(pending.pages)
        title = "Answer" + (f" ({pending.page + 1}/{count})" if count > 1 else "")
        super().__init__(title=title, custom_id=custom_id(pending.id, "submit"), timeout=None)
        for f in pending.pages[pending.page]:
            self.add_item(
                discord.ui.TextInput(
                    label=f.title[:45],
                    custom_id=f.name,
                    required=f.required,
                    placeholder=(f.hint() or None) and f.hint()[:100],
                    default=pending.drafts.get(f.name),
                    style=discord.TextStyle.short,
                    max_length=1000,
                )
            )


async def submit_page(
    interaction: discord.Interaction[Any], elicitation_id: str, raw: dict[str, str]
) -> None:
    """One submitted page of a form: checked, kept, and the next page offered or the answer
    given. Read from the submit itself (see modal_values.py)."""
    broker = _broker(interaction)
    pending = broker.get(elicitation_id) if broker is not None else None
    if broker is None or not await _allowed(interaction, pending):
        return
    assert pending is not None
    if set(raw) != {f.name for f in pending.pages[pending.page]}:
        # Another copy (say, an admin's) moved the form on since this page was opened.
        await interaction.response.send_message(
            "This page was answered meanwhile; press the button again.", ephemeral=True
        )
        return
    pending.drafts.update(raw)
    values, problems = validate(pending.pages[pending.page], raw)
    if problems:
        await interaction.response.send_message(
            "Please fix and press the button again:\n" + "\n".join(problems), ephemeral=True
        )
        return
    pending.values.update(values)
    pending.page += 1
    if pending.page < len(pending.pages):
        label = f"Continue ({pending.page + 1}/{len(pending.pages)})"
        await interaction.response.edit_message(view=_view(pending.id, url=None, label=label))
        return
    broker.finish(pending.id, Answer("accept", dict(pending.values)))
    await _close(interaction, pending, "accept")


async def _close(interaction: discord.Interaction[Any], pending: Pending, action: str) -> None:
    content = interaction.message.content if interaction.message else ""
    await interaction.response.edit_message(
        **_closed(pending.id, content, action, interaction.user.id)
    )


class DiscordElicitations:
    """Posts questions into the reply and marks the ones nobody answered (in time, or before
    a restart). Where each open question went is stored, so the next start finds it."""

    def __init__(self, store: OpenQuestionQueries) -> None:
        self._store = store
        self._prompts: dict[str, discord.Message] = {}

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """Every submit of a form page, however long ago it was opened."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        match = _FORM_ID.fullmatch(str(data.get("custom_id", "")))
        if match is not None:
            await submit_page(interaction, match["id"], submitted_values(data))

    async def send_prompt(
        self, event: ElicitationRequested, anchor: discord.Message
    ) -> discord.Message:
        label = "Done" if event.url else "Answer"
        await self._store.remember_question(event.elicitation_id, anchor.channel.id, anchor.id)
        message = await anchor.reply(
            prompt_text(event),
            view=_view(event.elicitation_id, url=event.url, label=label),
            mention_author=False,
            # The text is the server's: only the requester may be pinged.
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=[discord.Object(event.requester_id)]
            ),
        )
        self._prompts[event.elicitation_id] = message
        try:
            await self._store.question_posted(event.elicitation_id, message.id)
        except Exception:
            log.exception("could not store where question %s went", event.elicitation_id)
        return message

    async def show_resolution(self, event: ElicitationResolved) -> None:
        try:
            await self._store.forget_question(event.elicitation_id)
        except Exception:
            log.exception("could not forget question %s", event.elicitation_id)
        message = self._prompts.pop(event.elicitation_id, None)
        if message is None or event.action != "cancel":
            return  # a click already updated the message
        try:
            await message.edit(**_closed(event.elicitation_id, message.content, "cancel", None))
        except discord.HTTPException as exc:
            log.warning("could not mark question %s as cancelled: %s", event.elicitation_id, exc)

    async def expire_stale(self, bot: discord.Client) -> int:
        """At start-up: questions left open by a previous process can no longer be answered."""
        stale = await self._store.take_open_questions()
        for question in stale:
            try:
                message = await _posted(bot, question)
                if message is None:
                    continue  # the process died before the prompt went out
                await message.edit(**_closed(question.id, message.content, "expired", None))
            except discord.HTTPException as exc:
                log.warning("could not mark question %s as expired: %s", question.id, exc)
        return len(stale)


async def _posted(bot: discord.Client, question: OpenQuestion) -> discord.Message | None:
    """The prompt's message: by its id, or (the process died as it posted) the bot's reply after
    the anchor whose buttons carry the question's id."""
    channel = bot.get_partial_messageable(question.channel_id)
    if question.message_id is not None:
        return await channel.get_partial_message(question.message_id).fetch()
    marker = custom_id(question.id, "")
    after = discord.Object(question.anchor_id)
    async for message in channel.history(limit=50, after=after, oldest_first=True):
        ids = [
            getattr(c, "custom_id", None) or ""
            for row in message.components
            for c in getattr(row, "children", [])
        ]
        if any(i.startswith(marker) for i in ids):
            return message
    return None
