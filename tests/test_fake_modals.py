"""Proves the fake Discord handles modals and uploaded files as Discord does, with unmodified discord.py."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import discord
import pytest

from tests.fakes.discord import FakeDiscord
from tests.test_fake_discord import Bot, channel_of, fake, make_fake, running

__all__ = ["fake", "make_fake"]  # fixtures reused from test_fake_discord


class AskView(discord.ui.View):
    """A button that opens a modal (optionally an oversized one) and records what was submitted."""

    def __init__(self, *, default: str = "prefilled") -> None:
        super().__init__(timeout=None)
        self.default = default
        self.submitted: list[str] = []
        self.errors: list[Exception] = []
        self.done = asyncio.Event()
        self.shown = asyncio.Event()  # send_modal returned: discord.py holds the modal now

    @discord.ui.button(label="open", custom_id="ask:open")
    async def open(self, interaction: discord.Interaction[Any], button: Any) -> None:
        view = self

        class Form(discord.ui.Modal, title="Tell me"):
            answer: discord.ui.Label[Any] = discord.ui.Label(
                text="Answer",
                component=discord.ui.TextInput(
                    custom_id="answer", style=discord.TextStyle.paragraph, default=view.default
                ),
            )

            async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
                text_input = self.answer.component
                assert isinstance(text_input, discord.ui.TextInput)
                view.submitted.append(text_input.value)
                await interaction.response.edit_message(content=f"got {text_input.value}")
                view.done.set()

        try:
            await interaction.response.send_modal(Form(custom_id="ask:form"))
            self.shown.set()
        except discord.HTTPException as exc:
            self.errors.append(exc)
            self.done.set()


async def test_modal_is_recorded_and_its_submit_reaches_the_bot(fake: FakeDiscord) -> None:
    cid, user = fake.add_channel("modal"), fake.add_user("filler")
    async with running(Bot(), fake) as bot:
        view = AskView()
        sent = await channel_of(bot, cid).send("form here", view=view)
        opened = await fake.click_button(sent.id, "ask:open", user)
        await opened.wait_response()
        assert opened.response_type == 9 and opened.modal is not None
        assert opened.modal["custom_id"] == "ask:form" and opened.modal["title"] == "Tell me"
        assert opened.text_inputs()["answer"]["value"] == "prefilled"
        with pytest.raises(ValueError, match="no text input"):
            await fake.submit_modal(opened, {"nope": "x"})
        await asyncio.wait_for(view.shown.wait(), 5)
        submitted = await fake.submit_modal(opened, {"answer": "forty-two"})
        await asyncio.wait_for(view.done.wait(), 5)
        assert (
            submitted.payload["type"] == 5 and submitted.payload["data"]["custom_id"] == "ask:form"
        )
        await submitted.wait_response()
    assert view.submitted == ["forty-two"]
    assert submitted.response_type == 7
    assert fake.message(sent.id)["content"] == "got forty-two"


async def test_a_submit_can_reach_the_bot_before_the_answer_that_opened_the_modal(
    fake: FakeDiscord,
) -> None:
    """Discord shows the modal as it answers the bot's callback; that answer takes the
    network's time back, and discord.py holds the modal only once it arrives. A quick user's
    submit can come first: plain discord.py then drops it, and the user sees "This interaction
    failed". (The bot reads its forms from the submit itself for this reason.)"""
    cid, user = fake.add_channel("quick-modal"), fake.add_user("quick")
    async with running(Bot(), fake) as bot:
        view = AskView()
        sent = await channel_of(bot, cid).send("form here", view=view)
        opened = await fake.click_button(sent.id, "ask:open", user)
        await opened.wait_response()
        assert not view.shown.is_set()  # the bot has not heard back yet
        submitted = await fake.submit_modal(opened, {"answer": "too quick"})
        await asyncio.wait_for(view.shown.wait(), 5)
        with pytest.raises(TimeoutError, match="no callback"):
            await submitted.wait_response(timeout=1.0)
    assert view.submitted == []


async def test_modal_over_discord_limits_is_refused(fake: FakeDiscord) -> None:
    cid, user = fake.add_channel("big-modal"), fake.add_user("filler")
    async with running(Bot(), fake) as bot:
        view = AskView(default="x" * 4001)
        sent = await channel_of(bot, cid).send("form here", view=view)
        opened = await fake.click_button(sent.id, "ask:open", user)
        await asyncio.wait_for(view.done.wait(), 5)
    [error] = view.errors
    assert isinstance(error, discord.HTTPException) and error.status == 400
    assert opened.modal is None


async def test_modal_without_inputs_is_refused(fake: FakeDiscord) -> None:
    """Discord answers 400 to a modal with no components (it needs 1 to 5)."""
    cid, user = fake.add_channel("empty-modal"), fake.add_user("filler")
    errors: list[Exception] = []
    done = asyncio.Event()

    class Empty(discord.ui.View):
        @discord.ui.button(label="open", custom_id="empty:open")
        async def open(self, interaction: discord.Interaction[Any], button: Any) -> None:
            try:
                await interaction.response.send_modal(
                    discord.ui.Modal(title="Nothing", custom_id="empty:form")
                )
            except discord.HTTPException as exc:
                errors.append(exc)
            done.set()

    async with running(Bot(), fake) as bot:
        sent = await channel_of(bot, cid).send("form here", view=Empty(timeout=None))
        opened = await fake.click_button(sent.id, "empty:open", user)
        await asyncio.wait_for(done.wait(), 5)
    [error] = errors
    assert isinstance(error, discord.HTTPException) and error.status == 400
    assert opened.modal is None


async def test_uploaded_files_are_readable(fake: FakeDiscord) -> None:
    cid = fake.add_channel("files")
    async with running(Bot(), fake) as bot:
        data = b'{"a": 1}'
        sent = await channel_of(bot, cid).send(
            "see file", file=discord.File(io.BytesIO(data), filename="arguments.json")
        )
    (attachment,) = fake.message(sent.id)["attachments"]
    assert attachment["filename"] == "arguments.json"
    assert fake.attachment_data(attachment) == data
    (request,) = [r for r in fake.requests_to("POST", f"/channels/{cid}/messages") if r.files]
    assert request.files[0]["field"] == "files[0]" and request.files[0]["size"] == len(data)
