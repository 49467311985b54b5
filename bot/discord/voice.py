"""Voice messages and audio files in a question: heard within the caps once the question passed
the access lists and limits (the handler gathers files only then), and each transcription's
cost kept as a turn's, so the daily limits and /status count it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import discord

from bot.core.attachments import Extracted
from bot.core.state import ConversationKey
from bot.core.voice import AudioCaps, Heard, Transcribe, over_cap
from bot.store.records import TurnRecord

log = logging.getLogger(__name__)

NOT_SET_UP = "audio transcription is not set up"


@dataclass(frozen=True)
class Listening:
    """What hearing audio needs: the service, the `llm` settings it runs with, the caps.
    `transcribe` None: transcription is off (`llm.transcription_model` unset)."""

    transcribe: Transcribe | None
    llm: Any
    caps: AudioCaps


def is_voice_message(message: discord.Message) -> bool:
    return message.flags.voice and bool(message.attachments)


async def hear(
    attachment: discord.Attachment, listening: Listening | None
) -> tuple[Extracted, Heard | None]:
    """The file's transcript (or why not), and the transcription to pay for, if one ran."""
    name = attachment.filename
    if listening is None or listening.transcribe is None:
        return Extracted(name, skipped=NOT_SET_UP), None
    too_much = over_cap(attachment.size, attachment.duration, listening.caps)
    if too_much is not None:
        return Extracted(name, skipped=too_much), None
    try:
        data = await attachment.read()
    except (discord.HTTPException, OSError) as exc:
        log.info("could not download audio %s: %s", name, exc)
        return Extracted(name, skipped="it could not be downloaded"), None
    try:
        heard = await listening.transcribe(listening.llm, name, data, attachment.content_type)
    except Exception as exc:  # any provider failure: the rest of the question is still answered
        log.warning("could not transcribe %s: %s", name, type(exc).__name__)
        log.debug("transcription failure: %s", exc)
        return Extracted(name, skipped="it could not be transcribed"), None
    text = heard.text.strip()
    if not text:
        return Extracted(name, skipped="no words were heard"), heard
    return Extracted(name, text=text), heard


async def keep_costs(store: Any, key: ConversationKey, user_id: int, heard: list[Heard]) -> None:
    """One usage row per transcription, as a turn's: it counts toward the asker's limits."""
    for item in heard:
        record = TurnRecord(
            user_id=user_id,
            model=item.model,
            usage=item.usage,
            duration_s=item.duration_s,
            cost_usd=item.cost_usd,
        )
        try:
            await store.save_usage(key, record)
        except Exception:
            log.exception("could not store the usage of a transcription by %s", item.model)
