"""Proves the scripted LLM speaks the wire formats the real openai SDK and litellm parse."""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # else import stalls ~15 s offline

import litellm
import openai
import pytest
from aiohttp import web
from litellm.exceptions import MidStreamFallbackError  # not exported at top level
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import (
    Response,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseStreamEvent,
)

# Not re-exported from openai.types.responses in openai 2.54: import from the defining module.
from openai.types.responses.response_output_item import McpApprovalRequest as SdkApproval
from openai.types.responses.response_output_item import McpCall as SdkMcpCall
from pydantic import TypeAdapter

from tests.fakes.llm import (
    Cut,
    Fault,
    Finish,
    McpApprovalRequest,
    McpCall,
    Reasoning,
    ScriptedLLM,
    Silent,
    Stall,
    Text,
    ToolCall,
    UsageReport,
)

litellm.suppress_debug_info = True
EVENTS = TypeAdapter(ResponseStreamEvent)
TOOLS = [
    {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }
]


@pytest.fixture(scope="module")
async def llm():
    server = ScriptedLLM()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(autouse=True)
def _fresh(llm: ScriptedLLM):
    llm.clear()


def client(llm: ScriptedLLM, **kw) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=llm.base_url, api_key="test", **kw)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


async def lite(llm: ScriptedLLM, messages: list[dict], **kw):
    return await litellm.acompletion(
        model="openai/test-model", api_base=llm.base_url, api_key="test", messages=messages, **kw
    )


# -- 1. streamed chat text -----------------------------------------------------------------
async def test_chat_text_stream_openai_and_litellm(llm: ScriptedLLM):
    answer = "The quick brown fox jumps over the lazy dog, twice over."
    llm.script("fox", Text(answer, chunk_size=7), Text(answer, chunk_size=5))

    stream = await client(llm).chat.completions.create(
        model="test-model",
        messages=user("tell me about the fox"),
        stream=True,
        stream_options={"include_usage": True},
    )
    raw = [c async for c in stream]
    for c in raw:  # the SDK constructs leniently; validate strictly to prove the shape
        ChatCompletionChunk.model_validate(c.model_dump())
    deltas = [c.choices[0].delta.content for c in raw if c.choices and c.choices[0].delta.content]
    assert "".join(deltas) == answer and len(deltas) == 8
    assert raw[0].choices[0].delta.role == "assistant"
    assert raw[-2].choices[0].finish_reason == "stop"
    assert raw[-1].choices == [] and raw[-1].usage is not None
    assert raw[-1].usage.completion_tokens == len(answer) // 4

    chunks = [c async for c in await lite(llm, user("fox again"), stream=True)]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer
    built = litellm.stream_chunk_builder(chunks, messages=user("fox again"))
    assert built.choices[0].message.content == answer
    assert [r.key for r in llm.requests] == ["fox", "fox"]
    assert llm.requests[0].body["stream_options"] == {"include_usage": True}


# -- 2. streamed tool calls ----------------------------------------------------------------
def _accumulate(chunks) -> dict[int, dict]:
    calls: dict[int, dict] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            call = calls.setdefault(
                tc.index, {"id": None, "name": "", "arguments": "", "pieces": 0}
            )
            call["id"] = tc.id or call["id"]
            if tc.function and tc.function.name:
                call["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                call["arguments"] += tc.function.arguments
                call["pieces"] += 1
    return calls


async def test_chat_tool_calls_reassemble(llm: ScriptedLLM):
    one = [
        Text("let me look"),
        ToolCall("lookup", {"query": "weather in Paris", "days": 3}, "call_a"),
    ]
    two = [
        ToolCall("lookup", {"q": "a long-ish argument"}),
        ToolCall("clock", {"tz": "Europe/Paris"}),
    ]
    llm.script("weather", one, two, one, two)

    oa = client(llm)
    for reply in (one, two):
        stream = await oa.chat.completions.create(
            model="test-model", messages=user("weather?"), tools=TOOLS, stream=True
        )
        chunks = [c async for c in stream]
        calls = _accumulate(chunks)
        expected = [i for i in reply if isinstance(i, ToolCall)]
        assert sorted(calls) == list(range(len(expected)))
        for n, tc in enumerate(expected):
            assert calls[n]["name"] == tc.name
            assert json.loads(calls[n]["arguments"]) == tc.arguments
            assert calls[n]["pieces"] >= 2
            assert calls[n]["id"] == (tc.call_id or calls[n]["id"]) and calls[n]["id"].startswith(
                "call_"
            )
        assert chunks[-1].choices[0].finish_reason == "tool_calls"

    for reply in (one, two):
        msgs = user("weather, via litellm")
        chunks = [c async for c in await lite(llm, msgs, tools=TOOLS, stream=True)]
        built = litellm.stream_chunk_builder(chunks, messages=msgs)
        got = built.choices[0].message.tool_calls
        expected = [i for i in reply if isinstance(i, ToolCall)]
        assert [t.function.name for t in got] == [t.name for t in expected]
        assert [json.loads(t.function.arguments) for t in got] == [t.arguments for t in expected]
        assert got[0].id == (expected[0].call_id or got[0].id)
        assert built.choices[0].finish_reason == "tool_calls"


async def test_chat_non_streaming_and_malformed_args(llm: ScriptedLLM):
    llm.script("bad", [ToolCall("lookup", '{"broken": ', "call_x")])
    done = await client(llm).chat.completions.create(model="test-model", messages=user("bad args"))
    tc = done.choices[0].message.tool_calls[0]
    assert (tc.id, tc.function.arguments) == ("call_x", '{"broken": ')
    assert done.usage.prompt_tokens == len(json.dumps(user("bad args"))) // 4

    resp = await lite(llm, [{"role": "user", "content": [{"type": "text", "text": "plain"}]}])
    assert resp.choices[0].message.content == "echo: plain"


# -- 3. Responses API ----------------------------------------------------------------------
async def test_responses_stream_items_and_continuation(llm: ScriptedLLM):
    first = [
        Text("Checking the docs.", chunk_size=6),
        ToolCall("lookup", {"query": "install steps"}, "call_1"),
        McpCall("litellm-search", {"q": "install"}, output="found 3 pages"),
        McpCall("litellm-broken", {}, error="boom"),
        McpApprovalRequest("delete_page", {"page": 7}, id="mcpr_fixed"),
    ]
    llm.script("docs", first, Text("All done."))
    oa = client(llm)

    stream = await oa.responses.create(
        model="test-model", input="search the docs please", stream=True
    )
    events = [e async for e in stream]
    for e in events:
        EVENTS.validate_python(e.model_dump())
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    for needed in (
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
    ):
        assert needed in types
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Checking the docs."
    assert types.count("response.output_text.delta") == 3
    fc_deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(fc_deltas) >= 2

    done_items = [e.item for e in events if e.type == "response.output_item.done"]
    assert [type(i) for i in done_items] == [
        ResponseOutputMessage,
        ResponseFunctionToolCall,
        SdkMcpCall,
        SdkMcpCall,
        SdkApproval,
    ]
    assert done_items[1].call_id == "call_1" and json.loads(done_items[1].arguments) == {
        "query": "install steps"
    }
    assert (done_items[2].output, done_items[2].status) == ("found 3 pages", "completed")
    assert done_items[3].status == "failed"
    assert done_items[3].error.type == "mcp_tool_execution_error"
    assert done_items[3].error.content == [{"type": "text", "text": "boom"}]
    assert (done_items[4].id, done_items[4].server_label) == ("mcpr_fixed", "docs")

    completed = events[-1].response
    Response.model_validate(completed.model_dump())
    assert completed.status == "completed" and len(completed.output) == 5
    assert (
        completed.usage.total_tokens == completed.usage.input_tokens + completed.usage.output_tokens
    )
    assert events[0].response.id == completed.id

    follow = await oa.responses.create(
        model="test-model",
        previous_response_id=completed.id,
        input=[
            {"type": "function_call_output", "call_id": "call_1", "output": "step 1, step 2"},
            {"type": "mcp_approval_response", "approval_request_id": "mcpr_fixed", "approve": True},
        ],
    )
    assert follow.output_text == "All done."
    assert [r.key for r in llm.requests_for("docs")] == ["docs", "docs"]
    assert llm.requests[-1].body["input"][0]["type"] == "function_call_output"

    with pytest.raises(openai.BadRequestError) as err:
        await oa.responses.create(model="test-model", previous_response_id="resp_nope", input="hi")
    assert err.value.code == "previous_response_not_found"
    assert err.value.body["param"] == "previous_response_id"


async def test_responses_default_echo_and_list_input(llm: ScriptedLLM):
    resp = await client(llm).responses.create(
        model="test-model",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "ping"}]}],
    )
    assert resp.output_text == "echo: ping"
    assert resp.usage.output_tokens == max(1, len("echo: ping") // 4)
    assert llm.requests[0].key is None and llm.requests[0].path == "/v1/responses"


async def test_requests_for_refuses_a_key_nobody_scripted(llm: ScriptedLLM):
    # An unscripted key is never matched, so its list would be empty whatever came: a "no LLM
    # call" check on it could not fail. The refusal points to requests_mentioning.
    llm.script("k-known", Text("ok"))
    await client(llm).chat.completions.create(
        model="test-model", messages=user("k-unscripted and k-known")
    )
    with pytest.raises(KeyError, match="requests_mentioning"):
        llm.requests_for("k-unscripted")
    with pytest.raises(KeyError):
        await llm.wait_for_requests("k-unscripted", 1, timeout=0.05)
    assert len(llm.requests_mentioning("k-unscripted")) == 1
    assert len(llm.requests_for("k-known")) == 1


# -- 4. faults ------------------------------------------------------------------------------
async def test_429_retry_after_then_success(llm: ScriptedLLM):
    llm.script("busy", Fault(429, retry_after=0.2, message="slow down"), Text("finally"))
    start = time.monotonic()
    done = await client(llm, max_retries=1).chat.completions.create(
        model="test-model", messages=user("busy?")
    )
    assert done.choices[0].message.content == "finally"
    assert time.monotonic() - start >= 0.2  # honoured Retry-After
    assert len(llm.requests_for("busy")) == 2


async def test_429_and_500_surface(llm: ScriptedLLM):
    llm.script("rl", Fault(429, retry_after=1, message="slow down"))
    with pytest.raises(openai.RateLimitError) as err:
        await client(llm, max_retries=0).responses.create(
            model="test-model", input="rl", stream=True
        )
    assert err.value.response.headers["retry-after"] == "1"
    assert err.value.code == "rate_limit_exceeded"

    llm.script("boom", Fault(500, message="kaput"))
    with pytest.raises(openai.InternalServerError):
        await client(llm, max_retries=0).chat.completions.create(
            model="test-model", messages=user("boom"), stream=True
        )
    llm.script("boom", Fault(500))
    with pytest.raises(litellm.InternalServerError):
        await lite(llm, user("boom"), stream=True, max_retries=0)


async def test_a_down_model_fails_every_request_and_requests_name_their_model(llm: ScriptedLLM):
    llm.serve("good-model")
    llm.script("down", Text("from the other model"), Text("again the other"))
    llm.fail_model("broken-model", Fault(500, message="down"), key="down")
    for _ in range(2):  # every request, not only the first: and no script reply is used up
        with pytest.raises(openai.InternalServerError):
            await client(llm, max_retries=0).chat.completions.create(
                model="broken-model", messages=user("down"), stream=True
            )
    with pytest.raises(litellm.InternalServerError):
        await litellm.acompletion(
            model="hosted_vllm/broken-model",
            api_base=llm.base_url,
            api_key="test",
            messages=user("down"),
            max_retries=0,
        )
    with pytest.raises(openai.InternalServerError):
        await client(llm, max_retries=0).responses.create(model="broken-model", input="down")
    done = await client(llm).chat.completions.create(model="good-model", messages=user("down"))
    assert done.choices[0].message.content == "from the other model"
    # Scoped to the key: another script's requests for the same model still get through.
    other = await client(llm).chat.completions.create(
        model="broken-model", messages=user("elsewhere")
    )
    assert other.choices[0].message.content == "echo: elsewhere"
    assert [r.model for r in llm.requests_for("down")] == ["broken-model"] * 4 + ["good-model"]
    # Without a key: down for everyone.
    llm.fail_model("gone-model", Fault(503))
    with pytest.raises(openai.InternalServerError):
        await client(llm, max_retries=0).chat.completions.create(
            model="gone-model", messages=user("anyone")
        )


async def test_cut_stream_errors_instead_of_completing(llm: ScriptedLLM):
    llm.script(
        "cut", Cut("This answer will never finish, sadly.", after_chars=12), Cut("abcdefghij", 4)
    )
    seen = ""
    # openai 3.x (on httpx2) wraps a mid-body disconnect in APIConnectionError.
    with pytest.raises(openai.APIConnectionError):
        stream = await client(llm).chat.completions.create(
            model="test-model", messages=user("cut me"), stream=True
        )
        async for c in stream:
            seen += (c.choices[0].delta.content or "") if c.choices else ""
    assert seen == "This answer "

    types: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        stream = await client(llm).responses.create(model="test-model", input="cut", stream=True)
        async for e in stream:
            types.append(e.type)
    assert "response.output_text.delta" in types and "response.completed" not in types

    llm.script("cut", Cut("litellm sees this cut", 7))
    # litellm wraps the mid-stream disconnect in MidStreamFallbackError (a ServiceUnavailableError)
    # carrying the APIConnectionError and the text received so far.
    with pytest.raises(MidStreamFallbackError) as err:
        async for _ in await lite(llm, user("cut"), stream=True):
            pass
    assert isinstance(err.value, litellm.ServiceUnavailableError)
    assert isinstance(err.value.original_exception, litellm.APIConnectionError)
    assert err.value.generated_content == "litellm"


async def test_stall_then_finish_and_wait_for_requests(llm: ScriptedLLM):
    llm.script("slow", Stall(0.3, text="thinking"))
    start = time.monotonic()
    stream = await client(llm).chat.completions.create(
        model="test-model", messages=user("slow one"), stream=True
    )
    texts, finished = [], None
    async for c in stream:
        if c.choices and c.choices[0].delta.content:
            texts.append((c.choices[0].delta.content, time.monotonic()))
        if c.choices and c.choices[0].finish_reason:
            finished = (c.choices[0].finish_reason, time.monotonic())
    # The text comes first and the silence after it: the finish arrives a stall later. (Lower
    # bounds only: a loaded machine can make the gap longer, never shorter.)
    assert [t for t, _ in texts] == ["thinking"] and finished is not None
    assert finished[0] == "stop" and finished[1] - texts[0][1] >= 0.25
    assert time.monotonic() - start >= 0.3
    got = await llm.wait_for_requests("slow", 1, timeout=1)
    assert got[0].body["messages"] == user("slow one")
    assert got[0].headers.get("Authorization") == "Bearer test"
    with pytest.raises(TimeoutError):
        await llm.wait_for_requests("slow", 2, timeout=0.05)


async def test_models_and_mcp_in_chat_is_an_error(llm: ScriptedLLM):
    models = await client(llm).models.list()
    assert "test-model" in [m.id for m in models.data]
    llm.script("mcp", McpCall("x", {}))
    with pytest.raises(openai.InternalServerError, match="only valid for /v1/responses"):
        await client(llm, max_retries=0).chat.completions.create(
            model="test-model", messages=user("mcp")
        )


async def test_litellm_responses_bridge_parses_the_stream(llm: ScriptedLLM):
    llm.script("bridge", [Text("via litellm"), ToolCall("lookup", {"a": 1}, "call_b")])
    stream = await litellm.aresponses(
        model="openai/test-model",
        api_base=llm.base_url,
        api_key="test",
        input="bridge",
        stream=True,
    )
    events = [e async for e in stream]
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.total_tokens > 0
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "via litellm"


# -- 7. what real providers and gateways do (issue 9) --------------------------------------
async def test_reasoning_streams_parse_in_both_apis(llm: ScriptedLLM):
    llm.script("think", [Reasoning("Let me think about it.", chunk_size=6), Text("42")])
    llm.script("think-r", [Reasoning("Let me think about it.", chunk_size=6), Text("42")])
    llm.cached_tokens("think", 2)
    llm.cached_tokens("think-r", 2)
    chunks = [
        c
        async for c in await lite(
            llm, user("think"), stream=True, stream_options={"include_usage": True}
        )
    ]
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    assert reasoning == "Let me think about it."
    blocks = [
        b
        for c in chunks
        if c.choices
        for b in getattr(c.choices[0].delta, "thinking_blocks", None) or []
    ]
    assert blocks[-1]["signature"] == "sig-scripted"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "42"
    usage = chunks[-1].usage
    assert usage.prompt_tokens_details.cached_tokens == 2
    assert usage.completion_tokens_details.reasoning_tokens == len(reasoning) // 4

    stream = await client(llm).responses.create(model="test-model", input="think-r", stream=True)
    events = [EVENTS.validate_python(e.model_dump()) async for e in stream]
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary == "Let me think about it."
    done = events[-1].response
    assert done.output[0].type == "reasoning" and done.output[1].type == "message"
    assert done.usage.input_tokens_details.cached_tokens == 2
    assert done.usage.output_tokens_details.reasoning_tokens == len(summary) // 4


async def test_repeated_index_and_bare_argument_deltas(llm: ScriptedLLM):
    llm.script(
        "par",
        [
            ToolCall("lookup", {"q": "first one"}, "call_1", index=0),
            ToolCall("lookup", {"q": "second one"}, "call_2", index=0, bare_args=True),
        ],
    )
    stream = await client(llm).chat.completions.create(
        model="test-model", messages=user("par"), stream=True
    )
    fragments = [
        tc
        for c in [c async for c in stream]
        if c.choices
        for tc in c.choices[0].delta.tool_calls or []
    ]
    assert {f.index for f in fragments if f.index is not None} == {0}
    assert [f.id for f in fragments if f.id] == ["call_1", "call_2"]
    assert any(f.index is None for f in fragments)


async def test_empty_streams_finish_reasons_and_status_faults(llm: ScriptedLLM):
    llm.script("quiet", Silent(), [], [Text("cut", chunk_size=1), Finish("length")])
    chunks = [
        c
        async for c in await client(llm).chat.completions.create(
            model="test-model", messages=user("quiet"), stream=True
        )
    ]
    assert chunks == []
    chunks = [
        c
        async for c in await client(llm).chat.completions.create(
            model="test-model", messages=user("quiet"), stream=True
        )
    ]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert not any(c.choices[0].delta.content for c in chunks if c.choices)
    chunks = [
        c
        async for c in await client(llm).chat.completions.create(
            model="test-model", messages=user("quiet"), stream=True
        )
    ]
    assert chunks[-1].choices[0].finish_reason == "length"
    llm.script("quiet-r", [Text("half"), Finish("max_output_tokens")])
    stream = await client(llm).responses.create(model="test-model", input="quiet-r", stream=True)
    events = [e async for e in stream]
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"

    quota = {"code": "insufficient_quota", "type": "insufficient_quota"}
    llm.script(
        "st",
        Fault(529),
        Fault(520),
        Fault(403),
        Fault(429, error=quota),
        Fault(503, retry_after=2, retry_date=True),
    )
    oa = client(llm, max_retries=0)
    for status in (529, 520, 403, 429):
        with pytest.raises(openai.APIStatusError) as caught:
            await oa.chat.completions.create(model="test-model", messages=user("st"))
        assert caught.value.status_code == status
    assert caught.value.code == "insufficient_quota"
    with pytest.raises(openai.APIStatusError) as caught:
        await oa.chat.completions.create(model="test-model", messages=user("st"))
    assert caught.value.response.headers["retry-after"].endswith("GMT")
    assert "retry-after-ms" not in caught.value.response.headers


async def test_context_window_in_openai_and_proxy_form(llm: ScriptedLLM):
    long = user("win " + "x" * 400)
    llm.context_window("win", 50)
    with pytest.raises(openai.BadRequestError) as caught:
        await client(llm, max_retries=0).chat.completions.create(model="test-model", messages=long)
    assert caught.value.code == "context_length_exceeded"
    assert (
        await client(llm).chat.completions.create(model="test-model", messages=user("win"))
    ).choices
    llm.context_window("win", 50, style="litellm")
    with pytest.raises(openai.BadRequestError) as caught:
        await client(llm, max_retries=0).chat.completions.create(model="test-model", messages=long)
    assert caught.value.code == "400" and "maximum context length" in caught.value.message
    # Responses: the whole previous_response_id chain counts, unless truncation is auto.
    llm.context_window("wr", 60)
    oa = client(llm, max_retries=0)
    first = await oa.responses.create(model="test-model", input="wr " + "y" * 180)
    with pytest.raises(openai.BadRequestError):
        await oa.responses.create(
            model="test-model", input="wr again", previous_response_id=first.id
        )
    ok = await oa.responses.create(
        model="test-model", input="wr again", previous_response_id=first.id, truncation="auto"
    )
    assert ok.output_text == "echo: wr again"


async def test_image_urls_are_fetched_and_a_dead_one_is_refused(llm: ScriptedLLM):
    async def png(request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG")

    app = web.Application()
    app.router.add_get("/img.png", png)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        oa = client(llm, max_retries=0)
        for url, ok in (
            (f"{base}/img.png", True),
            (f"{base}/gone.png", False),
            ("data:image/png;base64,AAAA", True),
        ):
            parts = [
                {"type": "text", "text": "img"},
                {"type": "image_url", "image_url": {"url": url}},
            ]
            if ok:
                await oa.chat.completions.create(
                    model="test-model", messages=[{"role": "user", "content": parts}]
                )
            else:
                with pytest.raises(openai.BadRequestError) as caught:
                    await oa.chat.completions.create(
                        model="test-model", messages=[{"role": "user", "content": parts}]
                    )
                assert caught.value.code == "invalid_image_url"
        item = {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "img"},
                {"type": "input_image", "image_url": f"{base}/gone.png"},
            ],
        }
        with pytest.raises(openai.BadRequestError):
            await oa.responses.create(model="test-model", input=[item])
    finally:
        await runner.cleanup()


async def test_scripted_usage_is_reported_in_order_then_repeats(llm: ScriptedLLM):
    for key in ("usage-c", "usage-r"):
        llm.report_usage(
            key, UsageReport(1200, 300, cached=200, reasoning=50), UsageReport(800, 100)
        )
    seen = []
    for _ in range(3):
        stream = await client(llm).chat.completions.create(
            model="test-model",
            messages=user("usage-c"),
            stream=True,
            stream_options={"include_usage": True},
        )
        usage = [c async for c in stream][-1].usage
        seen.append(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.prompt_tokens_details.cached_tokens,
                usage.completion_tokens_details.reasoning_tokens,
            )
        )
    assert seen == [(1200, 300, 200, 50), (800, 100, 0, 0), (800, 100, 0, 0)]
    stream = await client(llm).responses.create(model="test-model", input="usage-r", stream=True)
    done = [e async for e in stream][-1].response
    assert (done.usage.input_tokens, done.usage.output_tokens) == (1200, 300)
    assert done.usage.input_tokens_details.cached_tokens == 200
