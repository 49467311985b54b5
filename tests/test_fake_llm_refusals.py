"""Proves the scripted LLM refuses what OpenAI refuses about a request's model and shape, and counts
tokens with a real tokenizer, not with the bot's own estimate."""

from __future__ import annotations

import base64
import hashlib
import json
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else import stalls ~15 s offline

import openai
import pytest
from openai import AsyncOpenAI

from bot.backends.context import estimate_tokens
from tests.fakes.llm import ScriptedLLM
from tests.fakes.llm import tokens as fake_tokens


@pytest.fixture(scope="module")
async def llm():
    async with ScriptedLLM() as server:
        yield server


def client(llm: ScriptedLLM) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def tool(name: str, chat: bool = True) -> dict:
    schema = {"type": "object", "properties": {}}
    if chat:
        return {"type": "function", "function": {"name": name, "parameters": schema}}
    return {"type": "function", "name": name, "parameters": schema}


async def test_an_unknown_model_is_openais_404_until_the_world_serves_it(llm: ScriptedLLM):
    with pytest.raises(openai.NotFoundError) as caught:
        await client(llm).chat.completions.create(model="gpt-9-ultra", messages=user("typo"))
    assert caught.value.code == "model_not_found"
    assert "`gpt-9-ultra` does not exist" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        await client(llm).responses.create(model="gpt-9-ultra", input="typo")
    # Served models are the ones listed, and no request adds one.
    listed = [m.id for m in (await client(llm).models.list()).data]
    assert "gpt-9-ultra" not in listed and "test-model" in listed
    llm.serve("gpt-9-ultra")
    done = await client(llm).chat.completions.create(model="gpt-9-ultra", messages=user("typo"))
    assert done.choices[0].message.content == "echo: typo"


@pytest.mark.parametrize("chat", [True, False], ids=["chat", "responses"])
@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("server.tool", "invalid_value"),
        ("has space", "invalid_value"),
        ("x" * 65, "string_above_max_length"),
    ],
)
async def test_tool_names_outside_openais_pattern_are_refused(
    llm: ScriptedLLM, chat: bool, name: str, code: str
):
    with pytest.raises(openai.BadRequestError) as caught:
        if chat:
            await client(llm).chat.completions.create(
                model="test-model", messages=user("tools"), tools=[tool(name)]
            )
        else:
            await client(llm).responses.create(
                model="test-model", input="tools", tools=[tool(name, chat=False)]
            )
    assert caught.value.code == code
    assert caught.value.param == ("tools[0].function.name" if chat else "tools[0].name")


async def test_the_longest_allowed_tool_name_and_its_characters_pass(llm: ScriptedLLM):
    name = "A-z_0" + "9" * 59
    done = await client(llm).chat.completions.create(
        model="test-model", messages=user("fine"), tools=[tool(name)]
    )
    assert done.choices[0].message.content == "echo: fine"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"tool_choice": "none"}, "tool_choice"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls"),
    ],
)
async def test_parameters_that_need_another_are_refused_without_it(
    llm: ScriptedLLM, extra: dict, param: str
):
    with pytest.raises(openai.BadRequestError) as caught:
        await client(llm).chat.completions.create(
            model="test-model", messages=user("params"), **extra
        )
    assert caught.value.param == param
    # With what they need, they pass.
    needed = {"stream_options": {"stream": True}}.get(param, {"tools": [tool("lookup")]})
    done = await client(llm).chat.completions.create(
        model="test-model", messages=user("params"), **extra, **needed
    )
    assert done is not None


def test_dense_text_costs_more_tokens_than_the_bots_estimate():
    """CJK and emoji tokenize far denser than characters/3: the bot's pre-fit is too small for
    them, and only the provider's overflow error says so."""
    messages = user("你好，世界。今天天气很好，我们去公园散步吧。" * 20 + "🎉" * 50)
    assert fake_tokens.count(messages) > 2 * estimate_tokens(messages)
    english = user("The quick brown fox jumps over the lazy dog. " * 20)
    # For English the two roughly agree, so the difference above is the tokenizer's, not noise.
    assert 0.5 < fake_tokens.count(english) / estimate_tokens(english) < 1.5


async def test_the_context_window_counts_real_tokens(llm: ScriptedLLM):
    # Base64 (a hash, a key a model repeats): about 240 tokens, though both the bot's estimate
    # and the old len(json)//4 count make it under 150.
    dense = "win " + base64.b64encode(hashlib.sha512(b"x").digest() * 4).decode()
    assert estimate_tokens(user(dense)) < 150 and len(json.dumps(user(dense))) // 4 < 150
    llm.context_window("win", 150)
    with pytest.raises(openai.BadRequestError) as caught:
        await client(llm).chat.completions.create(model="test-model", messages=user(dense))
    assert caught.value.code == "context_length_exceeded"
    assert "resulted in 2" in caught.value.message  # counted about 240
