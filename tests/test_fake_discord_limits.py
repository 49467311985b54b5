"""Proves the fake Discord refuses what Discord refuses about uploads, modal text inputs and reading
without Read Message History, and that it is not faster or looser than Discord by default."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import discord
import pytest

from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.fake import NETWORK_LATENCY_S
from tests.fakes.discord.interactions import modal_problem
from tests.fakes.discord.state import READ_MESSAGE_HISTORY, VIEW_CHANNEL
from tests.fakes.discord.validation import MAX_FILES, UPLOAD_LIMIT_BYTES
from tests.test_fake_discord import Bot, channel_of, fake, make_fake, running

__all__ = ["fake", "make_fake"]  # fixtures reused from test_fake_discord

MiB = 1024 * 1024


async def upload(fake: FakeDiscord, channel_id: int, sizes: list[int]) -> tuple[int, Any]:
    """POST a message with files of these sizes, as discord.py sends them (multipart)."""
    form = aiohttp.FormData()
    attachments = [{"id": i, "filename": f"f{i}.bin"} for i in range(len(sizes))]
    form.add_field("payload_json", json.dumps({"content": "files", "attachments": attachments}))
    for i, size in enumerate(sizes):
        form.add_field(f"files[{i}]", b"\0" * size, filename=f"f{i}.bin")
    headers = {"Authorization": f"Bot {fake.token}"}
    url = f"{fake.url}/api/v10/channels/{channel_id}/messages"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=form, headers=headers) as r,
    ):
        return r.status, await r.json()


def test_defaults_are_discords_limits_and_a_network_round_trip() -> None:
    fake = FakeDiscord()
    assert fake.ratelimiter.enabled and fake.latency_s == NETWORK_LATENCY_S > 0


async def test_every_request_takes_the_network_latency(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as session:
        start = time.monotonic()
        async with session.get(f"{fake.url}/api/v10/gateway") as r:
            assert r.status == 200
        assert time.monotonic() - start >= NETWORK_LATENCY_S


async def test_uploads_over_the_size_limit_together_are_refused(fake: FakeDiscord) -> None:
    cid = fake.add_channel("big-files")
    # Two files, each under the limit, over it together: the limit is per request.
    status, body = await upload(fake, cid, [UPLOAD_LIMIT_BYTES // 2, UPLOAD_LIMIT_BYTES // 2 + 1])
    assert (status, body["code"]) == (413, 40005)
    assert fake.messages(cid) == []
    status, _ = await upload(fake, cid, [UPLOAD_LIMIT_BYTES])
    assert status == 200 and len(fake.messages(cid)[0]["attachments"]) == 1
    assert 10 * MiB == UPLOAD_LIMIT_BYTES  # a guild without boosts


async def test_more_than_ten_files_are_refused(fake: FakeDiscord) -> None:
    cid = fake.add_channel("many-files")
    status, body = await upload(fake, cid, [10] * (MAX_FILES + 1))
    assert (status, body["code"]) == (400, 50035)
    assert "attachments" in body["errors"]
    status, _ = await upload(fake, cid, [10] * MAX_FILES)
    assert status == 200 and len(fake.messages(cid)[0]["attachments"]) == MAX_FILES


def text_input(**fields: Any) -> dict:
    return {"type": 4, "custom_id": "answer", "style": 1, "label": "Answer", **fields}


def modal(component: dict) -> dict:
    return {
        "custom_id": "form",
        "title": "Form",
        "components": [{"type": 1, "components": [component]}],
    }


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"label": "L" * 46}, "label"),
        ({"placeholder": "P" * 101}, "placeholder"),
        ({"custom_id": "c" * 101}, "custom_id"),
        ({"custom_id": ""}, "custom_id"),
        ({"max_length": 10, "value": "v" * 11}, "value"),
        ({"min_length": 5, "max_length": 4}, "min_length"),
        ({"max_length": 4001}, "max_length"),
        ({"min_length": -1}, "min_length"),
    ],
)
def test_text_input_fields_over_discords_limits_are_refused(fields: dict, said: str) -> None:
    assert said in (modal_problem(modal(text_input(**fields))) or "")


def test_a_label_description_over_100_is_refused_and_limits_themselves_pass() -> None:
    labelled = {"type": 18, "label": "Answer", "description": "d" * 101, "component": text_input()}
    assert "description" in (modal_problem({**modal({}), "components": [labelled]}) or "")
    at_limits = text_input(
        label="L" * 45, placeholder="P" * 100, custom_id="c" * 100, max_length=10, value="v" * 10
    )
    assert modal_problem(modal(at_limits)) is None


class RawModalView(discord.ui.View):
    """Answers a click with a modal body as given, past discord.py's own checks."""

    def __init__(self, body: dict) -> None:
        super().__init__(timeout=None)
        self.body = body
        self.errors: list[discord.HTTPException] = []

    @discord.ui.button(label="open", custom_id="raw:open")
    async def open(self, interaction: discord.Interaction[Any], button: Any) -> None:
        route = discord.http.Route(
            "POST",
            "/interactions/{iid}/{token}/callback",
            iid=interaction.id,
            token=interaction.token,
        )
        try:
            await interaction._state.http.request(route, json={"type": 9, "data": self.body})
        except discord.HTTPException as exc:
            self.errors.append(exc)


async def test_a_modal_with_a_long_placeholder_is_refused_over_the_wire(fake: FakeDiscord) -> None:
    cid, user = fake.add_channel("raw-modal"), fake.add_user("filler")
    async with running(Bot(), fake) as bot:
        view = RawModalView(modal(text_input(placeholder="P" * 101)))
        sent = await channel_of(bot, cid).send("form here", view=view)
        opened = await fake.click_button(sent.id, "raw:open", user)
        await fake.wait_for(lambda: view.errors, timeout=5)
    assert view.errors[0].status == 400 and view.errors[0].code == 50035
    assert opened.modal is None


async def test_reading_messages_needs_read_message_history(fake: FakeDiscord) -> None:
    cid, user = fake.add_channel("no-history"), fake.add_user("writer")
    said = await fake.send_message(cid, user, "an old message")
    async with running(Bot(), fake) as bot:
        channel = channel_of(bot, cid)
        assert (await channel.fetch_message(int(said["id"]))).content == "an old message"
        fake.set_overwrite(cid, fake.bot_user_id, deny=READ_MESSAGE_HISTORY)
        with pytest.raises(discord.Forbidden) as caught:
            await channel.fetch_message(int(said["id"]))
        assert caught.value.code == 50001
        # Discord's documented answer for history without the permission: no messages at all.
        assert [m async for m in channel.history(limit=10)] == []
        fake.set_overwrite(cid, fake.bot_user_id, deny=VIEW_CHANNEL)
        with pytest.raises(discord.Forbidden) as caught:
            [m async for m in channel.history(limit=10)]
        assert caught.value.code == 50001
