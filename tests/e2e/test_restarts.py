"""Nothing lost across restarts: prompts left open, answers cut by a shutdown, missed mentions."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import World, bot_config
from tests.e2e.harness import BotProcess, Chat, buttons, running
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import ScriptedLLM, Text, ToolCall
from tests.fakes.mcp_server import HTTPServerProcess, read_calls

EPHEMERAL = 64


def _asking_config(llm: ScriptedLLM, tmp_path: Path, asker: HTTPServerProcess) -> dict[str, Any]:
    config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", "chat", shutdown_grace_s=1)
    config["mcp"]["servers"]["asker"] = {"url": asker.url, "require_approval": "never"}
    return config


async def _question(discord: FakeDiscord, chat: Chat, text: str) -> dict:
    def shown() -> dict | None:
        found = [m for m in chat.bot_messages() if text in m["content"] and buttons(m)]
        return found[-1] if found else None

    return await discord.wait_for(shown, timeout=30)


def _button(message: dict, action: str) -> str:
    return next(b["custom_id"] for b in buttons(message) if b["custom_id"].endswith(f":{action}"))


async def test_a_question_left_open_by_a_restart_expires_and_never_answers_a_new_one(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    """A server's question open when the bot died is marked expired at the next start; its stale
    Decline (from a client that missed that edit) gets one private line and does not decide the
    question asked after the restart."""
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    call_log = tmp_path / "calls.jsonl"
    # The 2025 protocol: the server asks with a request of its own while the call runs.
    asker = HTTPServerProcess(call_log, legacy=True, asking=True)
    await asker.start()
    config = _asking_config(llm, tmp_path, asker)
    chat = Chat(discord, "restart-question")
    try:
        first = BotProcess(discord, config, tmp_path)
        await first.start()
        try:
            llm.script(
                "k-restartq-old",
                [ToolCall("asker__ask", {"question": "Old question?"})],
                Text("Old done."),
            )
            await chat.say("k-restartq-old ask me")
            old = await _question(discord, chat, "Old question?")
        finally:
            await first.kill()
        async with running(BotProcess(discord, config, tmp_path)):

            def expired() -> dict | None:
                now = discord.message(int(old["id"])) or {}
                return now if "restarted" in now.get("content", "") else None

            marked = await discord.wait_for(expired, timeout=30)
            assert all(b["disabled"] for b in buttons(marked))
            llm.script(
                "k-restartq-new",
                [ToolCall("asker__ask", {"question": "New question?"})],
                Text("New done."),
            )
            asked = await chat.say("k-restartq-new ask me again")
            new = await _question(discord, chat, "New question?")
            assert _button(new, "decline") != _button(old, "decline")
            for action in ("decline", "open"):
                late = await discord.click_button(
                    int(old["id"]), _button(old, action), chat.user, seen=old
                )
                answered = await late.wait_response()
                assert answered["data"]["flags"] & EPHEMERAL
                assert "no longer open" in answered["data"]["content"]
            # The new question is still open, and answered by its own buttons.
            opened = await discord.click_button(int(new["id"]), _button(new, "open"), chat.user)
            await opened.wait_response()
            submitted = await discord.submit_modal(opened, {"answer": "yes"})
            await submitted.wait_response()
            await chat.answer_text(int(asked["id"]), "New done.")
            answers = [c for c in read_calls(call_log) if c["tool"] == "asked"]
            assert [(a["arguments"]["done"], a["arguments"]["action"]) for a in answers] == [
                ("New question?", "accept")
            ]
            after = discord.message(int(old["id"]))
            assert after["content"].count("restarted") == 1
    finally:
        await asker.stop()
        await discord.stop()


async def test_a_shutdown_while_a_long_answer_is_being_written_never_leaves_it_half_shown(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    """SIGTERM with no grace while the final text of a many-part answer goes out (Discord's
    rate limit spreads the parts over seconds): every part of it arrives, without the
    streaming indicator; or, cut earlier, it ends with the Interrupted line."""
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", "chat", mcp={"servers": {}})
    config["shutdown_grace_s"] = 0  # running turns are cut at once
    bot = BotProcess(discord, config, tmp_path)
    chat = Chat(discord, "restart-finishing")
    key = "k-restart-finishing"
    paragraphs = [f"Paragraph {n}: " + " ".join(f"w{n}x{i}" for i in range(220)) for n in range(8)]
    text = "\n\n".join(paragraphs)
    try:
        await bot.start()
        llm.script(key, Text(text, chunk_size=4000))  # all of it at once: the rest is writing
        asked = await chat.say(f"{key} write a lot")
        await discord.wait_for(lambda: chat.replies_to(int(asked["id"])), timeout=30)
        assert bot.proc is not None
        bot.proc.send_signal(signal.SIGTERM)
        code = await bot.wait_exit(60)
    finally:
        await bot.kill()
        await discord.stop()
    assert code == 0, bot.log()[-3000:]
    parts = [p["content"] for p in chat.replies_to(int(asked["id"]))]
    assert len(parts) > 3  # the answer needed several messages: the cut came while writing
    assert not any(p.endswith("▌") for p in parts), parts
    shown = "\n\n".join(parts)
    assert shown.replace("\n", " ").split() == text.replace("\n", " ").split() or (
        "Interrupted" in parts[-1]
    ), parts


def _plain_config(llm: ScriptedLLM, tmp_path: Path, backend: str = "chat") -> dict[str, Any]:
    config = bot_config(llm, tmp_path, tmp_path / "calls.jsonl", backend)
    config["mcp"]["servers"] = {"auto": config["mcp"]["servers"]["auto"]}
    config["shutdown_grace_s"] = 0  # running turns are cut at once
    return config


async def _cut_by_sigterm(bot: BotProcess, discord: FakeDiscord, chat: Chat, asked: dict) -> None:
    """SIGTERM once the answer streams (or its tool line shows); the bot must exit 0."""
    await discord.wait_for(lambda: chat.replies_to(int(asked["id"])), timeout=30)
    assert bot.proc is not None
    bot.proc.send_signal(signal.SIGTERM)
    assert await bot.wait_exit(60) == 0, bot.log()[-3000:]


async def test_a_question_cut_by_a_shutdown_is_answered_once_after_the_restart(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    """SIGTERM mid-answer: the reply ends with the Interrupted line; after the restart the same
    reply message is edited into the new answer (no second reply), once."""
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _plain_config(llm, tmp_path)
    chat = Chat(discord, "restart-retry")
    key = "k-restart-retry"
    slow = " ".join(f"slow{i}" for i in range(60))
    llm.script(key, Text(slow, chunk_size=10, delay_s=0.3), Text("Answered after the restart."))
    first = BotProcess(discord, config, tmp_path)
    try:
        await first.start()
        asked = await chat.say(f"{key} tell me")
        await _cut_by_sigterm(first, discord, chat, asked)
    finally:
        await first.kill()
    cut = chat.replies_to(int(asked["id"]))
    assert len(cut) == 1 and "Interrupted" in cut[0]["content"], cut
    try:
        for _ in range(2):  # the second start answers nothing more
            async with running(BotProcess(discord, config, tmp_path)) as bot:
                await chat.answer_text(int(asked["id"]), "Answered after the restart.")
                await bot.wait_logged("cut by the last shutdown")
    finally:
        await discord.stop()
    assert len(llm.requests_for(key)) == 2
    replies = chat.replies_to(int(asked["id"]))
    assert [r["id"] for r in replies] == [cut[0]["id"]], replies
    assert replies[0]["content"] == "Answered after the restart.", replies


@pytest.mark.parametrize("backend", ["chat", "responses"])
async def test_a_shutdown_keeps_the_tool_rounds_that_completed_and_does_not_ask_again(
    backend: str, llm: ScriptedLLM, tmp_path: Path
) -> None:
    """Cut while the model writes after a tool ran: the tool's round stays in the conversation
    (the next question's request carries it), and the question is not asked again."""
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _plain_config(llm, tmp_path, backend)
    config["llm"]["state"] = "local"  # the stored history itself shows what was kept
    chat = Chat(discord, f"restart-rounds-{backend}")
    key, later = f"k-restart-rounds-{backend}", f"k-restart-rounds-later-{backend}"
    slow = " ".join(f"after{i}" for i in range(60))
    llm.script(
        key,
        [ToolCall("auto__echo", {"text": "marker-restart-echo"})],
        Text(slow, chunk_size=10, delay_s=0.3),
    )
    llm.script(later, Text("Later answer."))
    first = BotProcess(discord, config, tmp_path)
    try:
        await first.start()
        asked = await chat.say(f"{key} echo then talk")
        await discord.wait_for(lambda: len(llm.requests_for(key)) == 2 or None, timeout=30)
        await _cut_by_sigterm(first, discord, chat, asked)
    finally:
        await first.kill()
    try:
        async with running(BotProcess(discord, config, tmp_path)) as bot:
            await bot.wait_logged("cut by the last shutdown")
            again = await chat.say(f"{later} and now?")
            await chat.answer_text(int(again["id"]), "Later answer.")
    finally:
        await discord.stop()
    assert len(llm.requests_for(key)) == 2  # not asked again: its tool had run
    (request,) = llm.requests_for(later)
    assert "marker-restart-echo" in str(request.body.get("messages") or request.body["input"])


async def test_mentions_posted_while_the_bot_was_down_are_answered_once_after_the_start(
    llm: ScriptedLLM, tmp_path: Path
) -> None:
    """Answered: a mention posted while the bot was down, in a channel where it had answered,
    once, with the offline line (a second start answers nothing more); of one user's two there,
    only the newer. Not answered: one older than catch_up_s, one in a channel where it never
    answered, a plain message without a mention, a plain message in an open channel
    (respond_without_mention) where it had answered."""
    discord = FakeDiscord(rate_limits=True)
    await discord.start()
    config = _plain_config(llm, tmp_path)
    config["discord"]["catch_up_s"] = 600
    chat, elsewhere = Chat(discord, "restart-catch-up"), Chat(discord, "restart-never-answered")
    open_chat = Chat(discord, "restart-open-channel")
    config["discord"]["channels"] = {open_chat.channel: {"respond_without_mention": True}}
    llm.script("k-catch-before", Text("Before the restart."))
    llm.script("k-catch-open-before", Text("Before the restart, openly."))
    llm.script("k-catch-first-of-two", Text("Superseded."))
    llm.script("k-catch-missed", Text("Caught up."))
    llm.script("k-catch-old", Text("Too old to answer."))
    llm.script("k-catch-elsewhere", Text("Never here."))
    llm.script("k-catch-plain", Text("Not a question for me."))
    llm.script("k-catch-open-chatter", Text("Chatter is not caught up."))
    try:
        discord.world.ids.offset_s = -3600  # the bot's last answer here: an hour ago
        async with running(BotProcess(discord, config, tmp_path)):
            before = await chat.say("k-catch-before hello")
            await chat.answer_text(int(before["id"]), "Before the restart.")
            opened = await open_chat.say("k-catch-open-before hello all", mention=False)
            await open_chat.answer_text(int(opened["id"]), "Before the restart, openly.")
        discord.world.ids.offset_s = -1200  # 20 minutes ago: older than catch_up_s
        old = await chat.say("k-catch-old are you there?")
        discord.world.ids.offset_s = 0
        first = await chat.say("k-catch-first-of-two are you there?")
        missed = await chat.say("k-catch-missed are you back?")
        await chat.say("k-catch-plain just chatting", mention=False)
        await elsewhere.say("k-catch-elsewhere hello?")
        await open_chat.say("k-catch-open-chatter anyone around?", mention=False)
        async with running(BotProcess(discord, config, tmp_path)) as bot:
            text = await chat.answer_text(int(missed["id"]), "Caught up.")
            assert text.splitlines()[0] == "-# asked while I was offline", text
            await bot.wait_logged("catch-up: 1 question(s)")
        async with running(BotProcess(discord, config, tmp_path)) as bot:
            await bot.wait_logged("catch-up: 0 question(s)")
    finally:
        await discord.stop()
    assert len(llm.requests_for("k-catch-missed")) == 1
    assert len(chat.replies_to(int(missed["id"]))) == 1
    assert chat.replies_to(int(old["id"])) == []
    assert chat.replies_to(int(first["id"])) == []
    for marker in (
        "k-catch-old",
        "k-catch-elsewhere",
        "k-catch-plain",
        "k-catch-first-of-two",
        "k-catch-open-chatter",
    ):
        assert llm.requests_mentioning(marker) == [], marker


@pytest.mark.discord_errors(400)  # the approval prompt Discord refuses, on purpose
async def test_a_turn_whose_approval_prompt_cannot_be_posted_keeps_the_tools_that_ran(
    chat_world: World, tmp_path: Path
) -> None:
    """Discord refuses the approval prompt (a 400 is not retried), so the turn ends there, with
    a plain line for the user and one line in the log (no traceback); the tool round that
    completed before it stays in the conversation, so it does not run again."""
    world = chat_world
    logged = len(world.bot.log())
    chat = Chat(world.discord, "prompt-refused")
    key, later = "k-prompt-refused", "k-prompt-refused-later"
    gate = tmp_path / "release-prompt-refused"
    world.llm.script(
        key,
        [ToolCall("auto__hold_until", {"path": str(gate)})],
        [ToolCall("gated__record", {"note": "never-posted"})],
        Text("Not reached."),
    )
    world.llm.script(later, Text("Later answer."))
    asked = await chat.say(f"{key} hold, then record")
    await world.discord.wait_for(lambda: chat.replies_to(int(asked["id"])), timeout=30)
    # From here the reply only edits; the next message the bot posts here is the prompt.
    world.discord.faults.server_error("POST", rf"/channels/{chat.channel}/messages$", status=400)
    gate.touch()
    text = await chat.answer_text(int(asked["id"]), "couldn't post the approval request")
    assert "Not reached." not in text
    again = await chat.say(f"{later} and now?")
    await chat.answer_text(int(again["id"]), "Later answer.")
    (request,) = world.llm.requests_for(later)
    assert f"released: {gate}" in str(request.body["messages"])
    log = world.bot.log()[logged:]
    assert "could not post the approval request" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
