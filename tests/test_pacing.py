"""ChannelPacer: replies in one channel share its budget; first parts go ahead of edits."""

from __future__ import annotations

import asyncio

from bot.discord.pacing import ChannelPacer


def test_edit_interval_grows_with_replies_streaming_in_the_channel() -> None:
    pacer = ChannelPacer()
    assert pacer.edit_interval(1, 1.0) == 1.0
    with pacer.streaming(1), pacer.streaming(1), pacer.streaming(1):
        assert pacer.edit_interval(1, 1.0) == 3.0
        assert pacer.edit_interval(2, 1.0) == 1.0  # other channels are not slowed
    assert pacer.edit_interval(1, 1.0) == 1.0


async def test_edits_wait_while_a_first_part_is_being_sent() -> None:
    pacer = ChannelPacer()
    order: list[str] = []
    release = asyncio.Event()

    async def send() -> None:
        async with pacer.sending(7):
            await release.wait()
            order.append("send")

    async def edit() -> None:
        await pacer.wait_for_sends(7)
        order.append("edit")

    sender = asyncio.create_task(send())
    await asyncio.sleep(0)
    editor = asyncio.create_task(edit())
    other_channel = asyncio.create_task(pacer.wait_for_sends(8))
    await asyncio.sleep(0.05)
    assert other_channel.done() and not editor.done()
    release.set()
    await asyncio.gather(sender, editor)
    assert order == ["send", "edit"]
