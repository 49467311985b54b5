"""The scripted LLM's /v1/audio/transcriptions as the openai SDK and litellm meet OpenAI's, and
the fake Discord's voice messages as discord.py reads Discord's."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else import stalls ~15 s offline

import aiohttp
import litellm
import openai
import pytest

from tests.fakes.discord import FakeDiscord
from tests.fakes.llm import Fault, Heard, ScriptedLLM, duration_usage, tokens_usage

AUDIO = b"OggS\x00\x02\xff\xfe k-fake-audio \x00\x80\x81 tail"


async def test_the_sdk_sends_the_file_and_reads_text_and_usage() -> None:
    async with ScriptedLLM() as llm:
        llm.serve("test-transcribe")
        llm.audio.script("k-fake-audio", Heard("hello there", tokens_usage(12, 3)))
        client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="x", max_retries=0)
        file = ("voice-message.ogg", AUDIO, "audio/ogg")
        got = await client.audio.transcriptions.create(model="test-transcribe", file=file)
        assert got.text == "hello there"
        assert got.usage is not None and got.usage.type == "tokens"
        assert (got.usage.input_tokens, got.usage.output_tokens) == (12, 3)
        [seen] = llm.audio.requests_for("k-fake-audio")
        assert seen.data == AUDIO and seen.filename == "voice-message.ogg"
        assert seen.content_type == "audio/ogg" and seen.model == "test-transcribe"


async def test_litellm_reads_duration_usage_and_faults_reach_the_caller() -> None:
    async with ScriptedLLM() as llm:
        llm.serve("test-transcribe")
        llm.audio.script("k-fake-audio", Heard("by the second", duration_usage(4.5)))
        file = ("voice-message.ogg", AUDIO, "audio/ogg")
        got = await litellm.atranscription(
            model="hosted_vllm/test-transcribe", file=file, api_base=llm.base_url, api_key="x"
        )
        assert got.text == "by the second" and got.usage.seconds == 4.5
        llm.audio.clear()
        llm.audio.script("k-fake-audio", Fault(503))
        client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="x", max_retries=0)
        with pytest.raises(openai.InternalServerError):
            await client.audio.transcriptions.create(model="test-transcribe", file=file)


async def test_unknown_models_and_missing_parts_are_refused_as_openai_does() -> None:
    async with ScriptedLLM() as llm:
        client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="x", max_retries=0)
        with pytest.raises(openai.NotFoundError) as refused:
            await client.audio.transcriptions.create(
                model="no-such-model", file=("a.ogg", AUDIO, "audio/ogg")
            )
        assert refused.value.code == "model_not_found"
        url = f"{llm.base_url}/audio/transcriptions"
        async with aiohttp.ClientSession() as session:
            form = aiohttp.FormData()
            form.add_field("model", "test-model")
            async with session.post(url, data=form) as no_file:
                assert no_file.status == 400
            form = aiohttp.FormData()
            form.add_field("file", AUDIO, filename="a.ogg", content_type="audio/ogg")
            async with session.post(url, data=form) as no_model:
                assert no_model.status == 400


async def test_a_voice_message_has_no_content_the_flag_and_one_ogg_from_the_cdn() -> None:
    async with FakeDiscord(rate_limits=False, latency_s=0) as fake:  # no client races here
        channel = fake.add_channel("voice")
        user = fake.add_user("speaker")
        sent = await fake.send_voice_message(channel, user, AUDIO, duration_secs=3.2)
        assert sent["content"] == "" and sent["flags"] & (1 << 13)
        assert sent["mentions"] == []
        [att] = sent["attachments"]
        assert att["filename"] == "voice-message.ogg" and att["content_type"] == "audio/ogg"
        assert att["duration_secs"] == 3.2 and att["waveform"] and att["size"] == len(AUDIO)
        async with aiohttp.ClientSession() as session, session.get(att["url"]) as got:
            assert await got.read() == AUDIO
