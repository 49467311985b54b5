"""The lean request (bot/backends/sse.py `open_stream`): the scripted server gets what the SDK's
own streaming `create` sent, without `create`'s transform of the body."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest
from openai._utils import async_maybe_transform
from openai.types.chat import completion_create_params
from openai.types.responses import response_create_params

from bot.backends.base import sdk_arguments
from bot.backends.prompt_cache import with_breakpoints
from bot.backends.sse import open_stream
from tests.fakes.llm import Recorded, ScriptedLLM, Text
from tests.module_llm import module_llm  # noqa: F401 - this module's own `llm`

IMAGE = "data:image/png;base64,iVBORw0KGgo="
FUNCTION = {
    "name": "search",
    "description": "Search the docs",
    "parameters": {
        "type": "object",
        "properties": {"q": {"type": "string"}, "n": {"type": "integer", "minimum": 1}},
        "required": ["q"],
        "additionalProperties": False,
    },
}
# Passed through from llm.params: known to both SDK methods, unknown to one (`seed` on the
# Responses API goes in `extra_body` there), a proxy's own (`top_k`), and the request options.
PARAMS: dict[str, Any] = {
    "temperature": 0.3,
    "top_p": None,
    "seed": 7,
    "top_k": 5,
    "metadata": {"team": "ops"},
    "extra_body": {"mock_testing_fallbacks": False, "top_k": 6},
    "extra_headers": {"x-litellm-tags": "bot"},
    "extra_query": {"api-version": "2025-01-01"},
    "timeout": 30.0,
}


def chat_kwargs(key: str) -> dict[str, Any]:
    """A chat request as bot/backends/chat.py sends it: a history with tool calls, an image,
    cache breakpoints, tools on the last round, usage in the stream, the user's hash."""
    messages = [
        {"role": "system", "content": "You are a helpful assistant. Today is Monday."},
        {"role": "user", "content": "look this up"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "search", "arguments": '{"q": "caches"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "two results\n- a\n- b"},
        {"role": "assistant", "content": "Found two: a and b. ✓"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": f"{key} and this picture?"},
                {"type": "image_url", "image_url": {"url": IMAGE}},
            ],
        },
    ]
    return {
        "messages": with_breakpoints(messages, 5),
        "stream": True,
        "stream_options": {"include_usage": True},
        **PARAMS,
        "user": "0123456789abcdef0123456789abcdef",
        "prompt_cache_key": "conv-hmac",
        "reasoning_effort": "low",
        "tools": [{"type": "function", "function": FUNCTION}],
        "tool_choice": "none",
    }


def responses_kwargs(key: str) -> dict[str, Any]:
    """A Responses request as bot/backends/responses*.py send it: input items with a call and
    its output, an approval, an image; function and MCP tools; the stored chain's id."""
    items = [
        {"type": "function_call_output", "call_id": "call_1", "output": "two results"},
        {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": True},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": f"{key} and this picture?"},
                {"type": "input_image", "image_url": IMAGE},
            ],
        },
    ]
    mcp = {
        "type": "mcp",
        "server_label": "docs",
        "server_url": "https://mcp.example/sse",
        "require_approval": {"never": {"tool_names": ["search"]}},
        "headers": {"Authorization": "Bearer x"},
    }
    return {
        "model": "test-model",
        "instructions": "You are a helpful assistant.",
        "input": items,
        "stream": True,
        **PARAMS,
        "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "text": {"verbosity": "low"},
        "previous_response_id": "resp_1",
        "truncation": "auto",
        "tools": [{"type": "function", **FUNCTION, "strict": False}, mcp],
        "tool_choice": "auto",
        "user": "0123456789abcdef0123456789abcdef",
        "safety_identifier": "feedbeef",
        "prompt_cache_key": "conv-hmac",
    }


async def sent_by_both(llm: ScriptedLLM, api: str) -> tuple[Recorded, Recorded]:
    """What the server received from the SDK's `with_streaming_response.create` (the path the
    backends took before) and from `open_stream`, for the same arguments."""
    client = openai.AsyncOpenAI(
        base_url=llm.base_url,
        api_key="test",
        max_retries=0,
        http_client=openai.DefaultAioHttpClient(),
    )
    recorded: list[Recorded] = []
    refusals: list[object] = []
    sent: list[httpx2.Request] = []
    async with client:
        for how in ("old", "new"):
            key = f"body-{api}-{how}"  # the same length: the same Content-Length
            llm.script(key, Text("ok"))
            if api == "chat":
                kwargs = {"model": "test-model", **chat_kwargs(key)}
                create, start = (
                    client.chat.completions.create,
                    client.chat.completions.with_streaming_response.create,
                )
                path = "/chat/completions"
            else:
                kwargs = responses_kwargs(key)
                create, start = client.responses.create, client.responses.with_streaming_response
                start, path = start.create, "/responses"
            arguments = sdk_arguments(create, kwargs)  # as the backends call both
            try:
                if how == "old":
                    async with start(**arguments) as response:
                        sent.append(response.http_response.request)
                        await response.read()
                else:
                    stream = await open_stream(client, path, arguments)
                    sent.append(stream._response.http_response.request)
                    await stream.aclose()
            except openai.APIStatusError as refused:  # the chain `resp_1` is not on the server
                refusals.append((type(refused), refused.status_code, refused.body))
                sent.append(refused.request)
            [request] = llm.requests_for(key)
            recorded.append(request)
    assert not refusals or refusals == [refusals[0]] * 2, refusals  # alike, or not at all
    # The query (extra_query) and the timeout went out alike.
    assert str(sent[0].url) == str(sent[1].url) and "api-version=2025-01-01" in str(sent[1].url)
    assert sent[0].extensions["timeout"] == sent[1].extensions["timeout"]
    assert sent[1].extensions["timeout"]["read"] == PARAMS["timeout"]
    return recorded[0], recorded[1]


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_the_server_gets_what_the_sdks_create_sent(llm: ScriptedLLM, api: str) -> None:
    old, new = await sent_by_both(llm, api)
    # The same JSON (its keys may come in another order), once the scripted key is set aside.
    assert as_json(old.body).replace("-old", "-new") == as_json(new.body)
    assert old.path == new.path
    # The request options went where `create` put them: header, query, body, and no further.
    assert new.headers["x-litellm-tags"] == "bot"
    # `top_k` from llm.params rides in `extra_body` (sdk_arguments), over extra_body's own.
    assert new.body["mock_testing_fallbacks"] is False and new.body["top_k"] == 5
    assert "extra_body" not in new.body and "timeout" not in new.body
    varying = {"x-stainless-idempotency-key", "idempotency-key"}
    assert headers_of(old, varying) == headers_of(new, varying)


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def headers_of(request: Recorded, leave_out: set[str]) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items() if k.lower() not in leave_out}


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_the_transform_open_stream_skips_changes_nothing_the_bot_sends(api: str) -> None:
    # `create` passes its body through this; for what the backends send it is the identity,
    # so skipping it changes no byte of meaning (aliases, formats and models would).
    if api == "chat":
        body = {"model": "m", **chat_kwargs("k")}
        shape: Any = completion_create_params.CompletionCreateParamsStreaming
    else:
        body = responses_kwargs("k")
        shape = response_create_params.ResponseCreateParamsStreaming
    for option in ("extra_body", "extra_headers", "extra_query", "timeout"):
        body.pop(option)
    assert await async_maybe_transform(body, shape) == body
