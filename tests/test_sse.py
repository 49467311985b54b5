"""The lean stream reader (bot/backends/sse.py): splitting, decoding and the SDK's stream rules."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator

import aiohttp
import httpx2
import openai
import pytest
from aiohttp.base_protocol import BaseProtocol
from openai._streaming import SSEDecoder

from bot.backends.batches import folded, merged
from bot.backends.failures import classify
from bot.backends.sse import (
    PACE_S,
    Fields,
    SSESplitter,
    _aiohttp_body,
    _batches,
    _decode,
    _direct_reads,
    open_stream,
)
from bot.core.events import Notice, ReasoningDelta, TextDelta
from tests.fakes.llm import ScriptedLLM, Text
from tests.fakes.llm.items import Cut, Fault, HangUp, Stall
from tests.module_llm import module_llm  # noqa: F401 - this module's own `llm`

STREAM = (
    b": keep-alive\n\n"
    b'data: {"n": 1}\n\n'
    b"event: response.output_text.delta\r\n"
    b'data: {"n":\r\n'
    b"data: 2}\r\n\r\n"
    b"id: 7\n"
    b"retry: 100\n"
    b'data: {"n": 3}\r\r'
    b": ping\n"
    b'data:{"n": 4}\n\n'
    b'data: {"n": 5, "text": "a\\nb \xc3\xa9"}\n\n'
    b'data: {"never": "dispatched"}\n'
)


def split(chunks: list[bytes]) -> list[bytes]:
    splitter = SSESplitter()
    return [data for chunk in chunks for data in splitter.feed(chunk)]


def sdk_split(stream: bytes) -> list[bytes]:
    """What the openai SDK's own decoder makes of the same bytes."""
    decoder = SSEDecoder()
    return [sse.data.encode() for sse in decoder.iter_bytes(iter([stream])) if sse.data]


def test_events_are_split_as_the_sdk_splits_them() -> None:
    expected = [
        b'{"n": 1}',
        b'{"n":\n2}',
        b'{"n": 3}',
        b'{"n": 4}',
        STREAM.split(b"data: ")[-2][:-2],
    ]
    assert split([STREAM]) == expected
    assert sdk_split(STREAM) == expected


def test_a_read_may_end_anywhere_even_inside_a_crlf() -> None:
    one_byte_reads = [STREAM[i : i + 1] for i in range(len(STREAM))]
    assert split(one_byte_reads) == split([STREAM])
    rng = random.Random(28)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(STREAM)), 6))
        reads = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        assert split(reads) == split([STREAM]), cuts


def test_a_cr_ending_one_read_and_lf_starting_the_next_are_one_line_end() -> None:
    # Read as two line ends, the event would end after its first data line.
    assert split([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]) == [b"a\nb"]


def test_comments_and_fields_without_data_dispatch_nothing_alone() -> None:
    assert split([b": ping\n\n: ping\n\n\n\n"]) == []
    # The SDK dispatches an event that has only other fields, with empty data (not JSON).
    assert split([b"event: x\n\n"]) == [b""]


async def read(stream: bytes, *, chunk: int = 7) -> list[object]:
    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(stream), chunk):
            yield stream[start : start + chunk]

    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(200, content=body(), request=request)
    return [event async for batch in _batches(response, lambda e: e) for event in batch]


async def test_done_ends_the_stream_and_what_follows_is_not_read() -> None:
    stream = b'data: {"a": 1}\n\ndata: [DONE]\n\ndata: {"a": 2}\n\n'
    assert await read(stream) == [{"a": 1}]


async def test_an_error_object_in_an_event_raises_the_sdks_api_error() -> None:
    error = {"message": "over quota", "code": "insufficient_quota", "type": "x"}
    stream = b'data: {"a": 1}\n\n' + b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
    with pytest.raises(openai.APIError) as raised:
        await read(stream)
    assert type(raised.value) is openai.APIError
    assert raised.value.code == "insufficient_quota"
    assert raised.value.message == "over quota"


async def test_a_responses_error_event_is_an_event_for_the_backend_to_judge() -> None:
    event = {"type": "error", "code": "server_error", "message": "boom"}
    assert await read(b"data: " + json.dumps(event).encode() + b"\n\n") == [event]


async def test_a_malformed_line_raises_as_the_sdk_does() -> None:
    with pytest.raises(json.JSONDecodeError):
        await read(b'data: {"a": 1}\n\ndata: {"a": \n\n')


def test_fields_read_like_the_sdks_models() -> None:
    chunk = Fields(
        {
            "choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "f"}}]}}],
            "usage": None,
        }
    )
    call = chunk.choices[0].delta.tool_calls[0]
    assert (call.index, call.id, call.function.name, call.function.arguments) == (
        0,
        None,
        "f",
        None,
    )
    assert chunk.usage is None
    assert getattr(chunk, "missing", "default") is None  # an optional field left out
    with pytest.raises(AttributeError):
        chunk.__deepcopy__  # noqa: B018 - protocols must not find a field named like them


FAILURES = [
    Fault(429, retry_after=3),
    Fault(429, message="You exceeded your current quota.", error={"code": "insufficient_quota"}),
    Fault(503),
    Fault(401, message="bad key"),
    Cut(text="half an answer", after_chars=6),
    Stall(seconds=2.0, text="slow"),
    HangUp(),
]


def sdk_client(llm: ScriptedLLM, transport: str) -> openai.AsyncOpenAI:
    """The SDK on httpx2's own transport, or on aiohttp's as the bot has it (base.py), where the
    lean reader reads aiohttp's body directly."""
    http = openai.DefaultAioHttpClient() if transport == "aiohttp" else None
    return openai.AsyncOpenAI(
        base_url=llm.base_url, api_key="test", max_retries=0, timeout=0.5, http_client=http
    )


async def failure_of_stream(
    llm: ScriptedLLM, api: str, key: str, lean: bool, transport: str = "httpx2"
) -> BaseException:
    """What reading `key`'s reply raises, through the SDK's own stream or the lean reader."""
    client = sdk_client(llm, transport)
    if api == "chat":
        kwargs: dict[str, object] = {
            "model": "test-model",
            "messages": [{"role": "user", "content": key}],
        }
        create, path = client.chat.completions.create, "/chat/completions"
    else:
        kwargs = {"model": "test-model", "input": key}
        create, path = client.responses.create, "/responses"
    try:
        async with client:
            stream = await (
                open_stream(client, path, {**kwargs, "stream": True})
                if lean
                else create(**kwargs, stream=True)
            )
            try:
                async for _ in stream:
                    pass
            finally:
                await stream.close()
    except Exception as exc:
        return exc
    raise AssertionError("no exception")


@pytest.mark.parametrize("transport", ["httpx2", "aiohttp"])
@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize(
    "fault", FAILURES, ids=lambda f: type(f).__name__ + str(getattr(f, "status", ""))
)
async def test_failures_raise_what_the_sdks_own_stream_raised(
    llm: ScriptedLLM, api: str, fault: object, transport: str
) -> None:
    key = f"fail-{transport}-{api}-{FAILURES.index(fault)}"
    llm.script(f"{key}-sdk", fault)
    llm.script(f"{key}-lean", fault)
    sdk = await failure_of_stream(llm, api, f"{key}-sdk", lean=False, transport=transport)
    lean = await failure_of_stream(llm, api, f"{key}-lean", lean=True, transport=transport)
    assert type(lean) is type(sdk), (lean, sdk)
    assert classify(lean) == classify(sdk)
    if transport == "aiohttp":
        # Read directly, aiohttp's failure still comes through httpx2's exception, as it did.
        assert type(lean.__cause__) is type(sdk.__cause__), (lean.__cause__, sdk.__cause__)
        cause = lean.__cause__
        if isinstance(cause, httpx2.RequestError):
            assert type(cause.__cause__) is type(sdk.__cause__.__cause__)
            assert cause.request.url == sdk.__cause__.request.url  # type: ignore[union-attr]


async def chat_text(
    client: openai.AsyncOpenAI, key: str, *, lean: bool
) -> tuple[str, BaseException | None]:
    """The text a chat stream carried and what ended it (None: its end), read by the SDK's own
    stream or by the lean reader."""
    kwargs = {"model": "test-model", "messages": [{"role": "user", "content": key}]}
    if lean:
        stream = await open_stream(client, "/chat/completions", {**kwargs, "stream": True})
    else:
        stream = await client.chat.completions.create(**kwargs, stream=True)
    text, error = "", None
    try:
        async for chunk in stream:
            chunk = Fields(chunk) if lean else chunk
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    except Exception as exc:
        error = exc
    finally:
        await stream.close()
    return text, error


async def test_an_aiohttp_body_is_read_directly_and_closed_at_its_end(llm: ScriptedLLM) -> None:
    llm.script("direct-1", Text("read without httpx2's generators", chunk_size=3))
    llm.script("direct-2", Text("and the connection serves again"))
    async with sdk_client(llm, "aiohttp") as client:
        kwargs = {"model": "test-model", "messages": [{"role": "user", "content": "direct-1"}]}
        stream = await open_stream(client, "/chat/completions", {**kwargs, "stream": True})
        http = stream._response.http_response
        assert _aiohttp_body(http) is not None
        text = ""
        async for event in stream:
            text += Fields(event).choices[0].delta.content or "" if event["choices"] else ""
        assert text == "read without httpx2's generators"
        assert http.is_closed  # [DONE] drained the body and closed it, as the SDK does
        await stream.aclose()
        assert await chat_text(client, "direct-2", lean=True) == (
            "and the connection serves again",
            None,
        )


async def test_what_arrived_before_a_cut_comes_first_on_the_direct_path(llm: ScriptedLLM) -> None:
    llm.script("cut-direct-sdk", Cut("half an answer", after_chars=6))
    llm.script("cut-direct-lean", Cut("half an answer", after_chars=6))
    async with sdk_client(llm, "aiohttp") as client:
        sdk = await chat_text(client, "cut-direct-sdk", lean=False)
        lean = await chat_text(client, "cut-direct-lean", lean=True)
    assert lean[0] == sdk[0] == "half a"
    assert type(lean[1]) is type(sdk[1]) is openai.APIConnectionError


async def test_deltas_that_arrived_during_a_pause_come_before_a_cut(llm: ScriptedLLM) -> None:
    """The direct path pauses reading between reads (PACE_S): deltas that arrive meanwhile wait
    in the socket, and a cut in that pause comes after them."""
    during = Text("abcdefghijklmnop", chunk_size=4, delay_s=PACE_S / 5)
    llm.script("paused-cut", Cut(during=during))
    async with sdk_client(llm, "aiohttp") as client:
        text, error = await chat_text(client, "paused-cut", lean=True)
    assert text == "abcdefghijklmnop"
    assert type(error) is openai.APIConnectionError


async def test_a_cut_taken_in_with_the_last_deltas_still_hands_them_over() -> None:
    """A loop that drains a socket in one wake-up (uvloop) can take in a pause's deltas and the
    cut after them before the reader runs; aiohttp's reader then raises before it hands over
    its buffer. Here a real aiohttp StreamReader is given exactly that: the deltas come first,
    then the error the transport would have raised."""
    loop = asyncio.get_running_loop()
    content = aiohttp.StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    content.feed_data(b'data: {"choices":[{"delta":{"content":"kept"}}]}\n\n')
    content.set_exception(aiohttp.ClientPayloadError("Response payload is not completed"))
    request = httpx2.Request("POST", "http://127.0.0.1/chat/completions")
    http = httpx2.Response(200, request=request)
    reads = _direct_reads(http, content)
    assert await anext(reads) == b'data: {"choices":[{"delta":{"content":"kept"}}]}\n\n'
    with pytest.raises(httpx2.ReadError):  # APIConnectionError for the backends (_batches)
        await anext(reads)


async def test_a_compressed_body_is_decoded_on_httpx2s_path(llm: ScriptedLLM) -> None:
    # The transport asks aiohttp not to decompress: a gzip body goes through httpx2's decoder.
    for key in ("gzip-1", "gzip-lean", "gzip-sdk"):
        llm.script(key, Text("squeezed by a proxy", chunk_size=4))
    llm.compress = True
    try:
        async with sdk_client(llm, "aiohttp") as client:
            kwargs = {"model": "test-model", "messages": [{"role": "user", "content": "gzip-1"}]}
            stream = await open_stream(client, "/chat/completions", {**kwargs, "stream": True})
            http = stream._response.http_response
            assert http.headers["content-encoding"] == "gzip"
            assert _aiohttp_body(http) is None
            await stream.aclose()
            assert await chat_text(client, "gzip-lean", lean=True) == ("squeezed by a proxy", None)
            assert await chat_text(client, "gzip-sdk", lean=False) == ("squeezed by a proxy", None)
    finally:
        llm.compress = False


async def test_the_events_of_one_read_come_as_one_batch() -> None:
    # A read that holds three events hands them over together; the next read, its own.
    events = [{"n": n} for n in range(4)]
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    three = len(body) * 3 // 4

    async def reads() -> AsyncIterator[bytes]:
        yield body[:three]
        yield body[three:]

    request = httpx2.Request("POST", "http://127.0.0.1/v1/responses")
    response = httpx2.Response(200, content=reads(), request=request)
    batches = [batch async for batch in _batches(response, lambda e: e)]
    assert batches == [events[:3], events[3:]]


def test_merged_joins_only_neighbouring_deltas_of_one_kind() -> None:
    events = [
        TextDelta(text="a"),
        TextDelta(text="b"),
        ReasoningDelta(text="r1"),
        ReasoningDelta(text="r2"),
        Notice(text="n"),
        TextDelta(text="c"),
    ]
    assert merged(events) == [
        TextDelta(text="ab"),
        ReasoningDelta(text="r1r2"),
        Notice(text="n"),
        TextDelta(text="c"),
    ]


def test_what_a_read_held_before_a_failing_item_is_shown_first() -> None:
    # One read: two text deltas, then a `response.failed`: the text is shown, then it raises.
    def fold(item: str) -> list[TextDelta]:
        if item == "failed":
            raise RuntimeError("response.failed")
        return [TextDelta(text=item)]

    shown: list[TextDelta] = []
    with pytest.raises(RuntimeError):
        for event in folded(["Par", "tial", "failed", "never"], fold):
            shown.append(event)  # type: ignore[arg-type]
    assert shown == [TextDelta(text="Partial")]


@pytest.mark.parametrize(
    "data",
    [
        b'{"choices":[{"delta":{"content":" word"},"index":0}]}',
        b'{"value": NaN, "big": 123456789012345678901234567890}',  # orjson refuses both
        b'{"text": "\\ud83d\\ude00 and a lone \\ud800"}',  # a lone surrogate: orjson refuses
        b'{"same": 1, "same": 2}',
        b'[1.5e308, -0.0, "\\u00e9"]',
    ],
)
def test_events_decode_as_the_standard_library_reads_them(data: bytes) -> None:
    """The reader decodes with orjson for speed; what orjson refuses falls back, so an event
    means what it meant when json.loads read every one."""
    expected = json.loads(data)
    decoded = _decode(data)
    assert json.dumps(decoded, sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_an_event_neither_parser_reads_raises_the_standard_librarys_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        _decode(b'{"cut": ')
