"""Voice messages are answered as if typed and audio files read as their text (issue 21): the
audio reaches the transcription endpoint byte for byte, the caps hold, failures cost nothing
else, the cost is counted; with transcription off, a line where one is owed and silence else."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import bot_config, bot_running
from tests.e2e.harness import BotProcess, Chat
from tests.e2e.test_message_context import last_user_text
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import Fault, Heard, ScriptedLLM, Text, duration_usage, tokens_usage

MAX_AUDIO_S = 60
MAX_AUDIO_BYTES = 4096
NOT_SET_UP = "Voice messages are not set up here"
VOICE_OFF = "Voice messages are not set up here: type your question instead."


def ogg(key: str, size: int = 0) -> bytes:
    """Audio as the tests send it: every byte value (so a re-encoding or a text decode would
    show), and the script's key, which is how the scripted server knows the file."""
    body = b"OggS\x00\x02" + bytes(range(256)) + f" {key} ".encode() + bytes(range(255, -1, -1))
    return body + b"\x00" * max(0, size - len(body))


@dataclass
class Voice:
    discord: FakeDiscord
    llm: ScriptedLLM
    bot: BotProcess
    backend: str
    heard_by: str  # the transcription model as the server sees it
    configured: str  # as llm.transcription_model names it
    open_channel: int  # respond_without_mention


def voice_config(llm: ScriptedLLM, workdir: Path, backend: str, open_channel: int) -> dict:
    config = bot_config(llm, workdir, workdir / "calls.jsonl", backend, mcp={"servers": {}})
    config["discord"] = {
        "edit_interval_s": 0.5,
        "allow_dms": True,
        "channels": {open_channel: {"respond_without_mention": True}},
        "attachments": {"max_audio_s": MAX_AUDIO_S, "max_audio_bytes": MAX_AUDIO_BYTES},
    }
    return config


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["chat", "responses"])
async def voice(
    request: pytest.FixtureRequest, llm: ScriptedLLM, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Voice]:
    backend = request.param
    # Priced in litellm's map both ways OpenAI bills: by token (chat) and by second (responses).
    heard_by = {"chat": "gpt-4o-mini-transcribe", "responses": "whisper-1"}[backend]
    configured = f"openai/{heard_by}" if backend == "chat" else heard_by
    llm.serve(heard_by)
    discord = FakeDiscord()
    await discord.start()
    workdir = tmp_path_factory.mktemp(f"voice-{backend}")
    open_channel = discord.add_channel(f"voice-open-{backend}")
    config = voice_config(llm, workdir, backend, open_channel)
    config["llm"]["transcription_model"] = configured
    async with bot_running(discord, config, workdir) as bot:
        yield Voice(discord, llm, bot, backend, heard_by, configured, open_channel)


def usage_rows(bot: BotProcess, user_id: int) -> list[sqlite3.Row]:
    path = Path(bot.config["storage"]["path"])
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(
            "SELECT model, input_tokens, output_tokens, cost_usd FROM usage WHERE user_id = ?"
            " ORDER BY id",
            (user_id,),
        ).fetchall()
    finally:
        connection.close()


async def test_a_voice_message_in_a_dm_is_answered_as_if_typed(voice: Voice) -> None:
    discord, llm = voice.discord, voice.llm
    key = f"k-voice-dm-{voice.backend}"
    chat = Chat(discord, f"voice-dm-{voice.backend}")
    chat.channel = discord.add_dm_channel(chat.user)
    other = discord.add_user(f"voice-other-{voice.backend}")
    # Said aloud, a mention's text must not ping from the heard line.
    said = f"{key} what is the capital of France? <@{other}> @everyone"
    usage = tokens_usage(1000, 50) if voice.backend == "chat" else duration_usage(12)
    llm.audio.script(key, Heard(said, usage))
    llm.script(key, Text("Paris is the capital."))
    audio = ogg(key)
    sent = await discord.send_voice_message(chat.channel, chat.user, audio, duration_secs=4.2)
    reply = await chat.answer_text(int(sent["id"]), "Paris is the capital.")

    assert reply.splitlines()[0] == f'-# 🎙️ "{said}"'
    [heard] = llm.audio.requests_for(key)
    assert heard.data == audio  # exactly as Discord served it
    assert heard.filename == "voice-message.ogg" and heard.content_type == "audio/ogg"
    assert heard.model == voice.heard_by
    [asked] = llm.requests_for(key)
    assert said in last_user_text(asked.body)  # the transcript is the question

    # Its cost is kept as a turn's: one usage row of the transcription model, priced.
    rows = [r for r in usage_rows(voice.bot, chat.user) if r["model"] == voice.configured]
    assert len(rows) == 1, [dict(r) for r in usage_rows(voice.bot, chat.user)]
    if voice.backend == "chat":  # gpt-4o-mini-transcribe: audio tokens in, text out
        assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (1000, 50)
        assert rows[0]["cost_usd"] == pytest.approx(1000 * 1.25e-6 + 50 * 5e-6)
    else:  # whisper-1: by the second
        assert rows[0]["cost_usd"] == pytest.approx(12 * 1e-4)


async def test_a_long_transcript_shows_cut_in_one_line(voice: Voice) -> None:
    discord, llm = voice.discord, voice.llm
    key = f"k-voice-long-{voice.backend}"
    chat = Chat(discord, f"voice-long-{voice.backend}", channel=voice.open_channel)
    said = f"{key} " + "word " * 80 + "\nthe end"
    llm.audio.script(key, Heard(said))
    llm.script(key, Text("A long one."))
    sent = await discord.send_voice_message(chat.channel, chat.user, ogg(key), duration_secs=30)
    reply = await chat.answer_text(int(sent["id"]), "A long one.")
    first = reply.splitlines()[0]
    shown = first.removeprefix('-# 🎙️ "').removesuffix('"')
    assert len(shown) == 200 and shown.endswith("…") and shown.startswith(key)
    assert "the end" in last_user_text(llm.requests_for(key)[0].body)  # all of it was asked


async def test_an_audio_file_on_a_mention_is_read_as_its_text(voice: Voice) -> None:
    discord, llm = voice.discord, voice.llm
    key = f"k-voice-file-{voice.backend}"
    chat = Chat(discord, f"voice-file-{voice.backend}")
    llm.audio.script(key, Heard(f"standup notes {key}: ship on friday"))
    llm.script(key, Text("Noted: Friday."))
    audio = ogg(key)
    files = [{"filename": "standup.mp3", "content": audio, "content_type": "audio/mpeg"}]
    asked = await chat.say(f"{key} summarise the recording", attachments=files)
    reply = await chat.answer_text(int(asked["id"]), "Noted: Friday.")
    sent = last_user_text(llm.requests_for(key)[0].body)
    assert '<file name="standup.mp3">' in sent and "ship on friday" in sent
    assert f"{key} summarise the recording" in sent
    assert "🎙️" not in reply  # the heard line is a voice message's
    [heard] = llm.audio.requests_for(key)
    assert heard.data == audio and heard.filename == "standup.mp3"
    assert heard.content_type == "audio/mpeg"


@pytest.mark.parametrize("over", ["seconds", "bytes"])
async def test_an_over_cap_voice_message_is_skipped_with_one_line(voice: Voice, over: str) -> None:
    discord, llm = voice.discord, voice.llm
    key = f"k-voice-cap-{over}-{voice.backend}"
    chat = Chat(discord, f"voice-cap-{over}-{voice.backend}", channel=voice.open_channel)
    llm.audio.script(key, Heard(f"{key} never heard"))
    llm.script(key, Text("never asked"))
    audio = ogg(key, size=MAX_AUDIO_BYTES + 1 if over == "bytes" else 0)
    secs = MAX_AUDIO_S + 1 if over == "seconds" else 5
    sent = await discord.send_voice_message(chat.channel, chat.user, audio, duration_secs=secs)
    reply = await chat.answer_text(int(sent["id"]), "Skipped")
    why = "longer than the 60 s audio limit" if over == "seconds" else "over the 4 KB audio limit"
    assert reply == f"Skipped attachment: voice-message.ogg ({why})"
    assert llm.audio.requests_for(key) == []  # never sent
    assert llm.requests_for(key) == []


async def test_a_failed_transcription_is_skipped_and_the_rest_answered(voice: Voice) -> None:
    discord, llm = voice.discord, voice.llm
    key = f"k-voice-fail-{voice.backend}"
    chat = Chat(discord, f"voice-fail-{voice.backend}")
    llm.audio.script(key, Fault(500, message="transcription backend down"))
    llm.script(key, Text("Answered the words."))
    files = [{"filename": "memo.ogg", "content": ogg(key), "content_type": "audio/ogg"}]
    asked = await chat.say(f"{key} and what about the budget?", attachments=files)
    reply = await chat.answer_text(int(asked["id"]), "Answered the words.")
    assert "Skipped attachment: memo.ogg (it could not be transcribed)" in reply
    assert len(llm.audio.requests_for(key)) == 1
    sent = last_user_text(llm.requests_for(key)[0].body)
    assert "what about the budget?" in sent and "memo.ogg" not in sent


async def test_a_voice_reply_to_the_bot_is_answered(voice: Voice) -> None:
    discord, llm = voice.discord, voice.llm
    key = f"k-voice-reply-{voice.backend}"
    chat = Chat(discord, f"voice-reply-{voice.backend}")
    llm.script(key, Text("First answer."), Text("Second answer."))
    asked = await chat.say(f"{key} start")
    await chat.answer_text(int(asked["id"]), "First answer.")
    answer = chat.replies_to(int(asked["id"]))[-1]
    llm.audio.script(key, Heard(f"{key} and then?"))
    sent = await discord.send_voice_message(
        chat.channel, chat.user, ogg(key), duration_secs=2, reply_to=int(answer["id"])
    )
    reply = await chat.answer_text(int(sent["id"]), "Second answer.")
    assert reply.startswith(f'-# 🎙️ "{key} and then?"')


# -- transcription off --------------------------------------------------------------------


@dataclass
class Deaf:
    discord: FakeDiscord
    llm: ScriptedLLM
    bot: BotProcess
    open_channel: int


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def deaf(llm: ScriptedLLM, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deaf]:
    """A bot without `llm.transcription_model` (what it does is the backend's no business),
    answering channel questions in threads of its own."""
    discord = FakeDiscord()
    await discord.start()
    workdir = tmp_path_factory.mktemp("voice-off")
    open_channel = discord.add_channel("voice-off-open")
    config = voice_config(llm, workdir, "chat", open_channel)
    config["discord"]["reply_in_thread"] = True
    async with bot_running(discord, config, workdir) as bot:
        yield Deaf(discord, llm, bot, open_channel)


def answers_to(discord: FakeDiscord, channel: int, message_id: int | None) -> str:
    """The bot's messages in `channel` that reply to `message_id` (None: all of them; a bot
    thread's first answer replies to nothing), as one text."""
    return "\n".join(
        m["content"]
        for m in discord.messages(channel)
        if int(m["author"]["id"]) == discord.bot_user_id
        and (
            message_id is None
            or int((m.get("message_reference") or {}).get("message_id") or 0) == message_id
        )
    )


async def test_without_transcription_a_dm_voice_message_or_reply_gets_one_line(
    deaf: Deaf,
) -> None:
    discord, llm = deaf.discord, deaf.llm
    key = "k-voice-off-dm"
    llm.audio.script(key, Heard(f"{key} never heard"))
    llm.script(key, Text("Typed answer."))
    dm = Chat(discord, "voice-off-dm")
    dm.channel = discord.add_dm_channel(dm.user)
    said = await discord.send_voice_message(dm.channel, dm.user, ogg(key), duration_secs=3)
    assert await dm.answer_text(int(said["id"]), NOT_SET_UP) == VOICE_OFF
    typed = await discord.send_message(dm.channel, dm.user, f"{key} a typed question")
    await dm.answer_text(int(typed["id"]), "Typed answer.")
    answer = dm.replies_to(int(typed["id"]))[-1]
    replied = await discord.send_voice_message(
        dm.channel, dm.user, ogg(key), duration_secs=3, reply_to=int(answer["id"])
    )
    assert await dm.answer_text(int(replied["id"]), NOT_SET_UP) == VOICE_OFF
    assert llm.audio.requests_for(key) == []
    assert len(llm.requests_for(key)) == 1  # only the typed question


async def test_without_transcription_an_open_channel_ignores_voice_and_a_bot_thread_says_so(
    deaf: Deaf,
) -> None:
    discord, llm = deaf.discord, deaf.llm
    key = "k-voice-off-open"
    llm.audio.script(key, Heard(f"{key} never heard"))
    llm.script(key, Text("Typed answer."))
    room = Chat(discord, "voice-off-open", channel=deaf.open_channel)
    unsaid = await discord.send_voice_message(room.channel, room.user, ogg(key), duration_secs=3)
    typed = await room.say(f"{key} a typed question", mention=False)
    thread = int(typed["id"])  # the bot's thread takes its starter message's id
    await discord.wait_for(lambda: "Typed answer." in answers_to(discord, thread, None))
    in_thread = await discord.send_voice_message(thread, room.user, ogg(key), duration_secs=3)
    said = await discord.wait_for(lambda: answers_to(discord, thread, int(in_thread["id"])))
    assert said == VOICE_OFF
    # The open channel's voice message came first: any answer to it would be here by now.
    assert answers_to(discord, room.channel, int(unsaid["id"])) == ""
    assert discord.message(int(unsaid["id"])) is not None
    assert llm.audio.requests_for(key) == []
    assert len(llm.requests_for(key)) == 1  # only the typed question


async def test_without_transcription_an_audio_file_is_skipped_and_the_text_answered(
    deaf: Deaf,
) -> None:
    discord, llm = deaf.discord, deaf.llm
    key = "k-voice-off-file"
    chat = Chat(discord, "voice-off-file")
    llm.script(key, Text("Text answered."))
    files = [{"filename": "memo.mp3", "content": ogg(key), "content_type": "audio/mpeg"}]
    asked = await chat.say(f"{key} read this", attachments=files)
    thread = int(asked["id"])
    reply = await discord.wait_for(
        lambda: (text := answers_to(discord, thread, None)) and "Text answered." in text and text
    )
    assert "Skipped attachment: memo.mp3 (audio transcription is not set up)" in reply
    assert "memo.mp3" not in last_user_text(llm.requests_for(key)[0].body)
