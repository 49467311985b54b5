"""A lean reader for the openai SDK's streamed responses: the request stays the SDK's (auth,
base URL, timeouts, HTTP errors), but the stream is split and decoded here, into plain dicts.

The SDK decodes SSE in Python line by line and builds a pydantic model per event; at 30 deltas
a second in 200 answers that was most of the bot's CPU (issue 28, bench/README.md). Here the
bytes are split in a few C calls per network read and each event is one `orjson.loads`. What
the SDK did beyond parsing is kept: `[DONE]` ends the stream (draining HTTP/1.1 for reuse), an
`error` object in an event raises `openai.APIError`, and the HTTP library's failures mid-body
become `APITimeoutError` / `APIConnectionError`, so bot/backends/failures.py sees what it saw.
On the SDK's aiohttp transport (the bot's, base.py) an uncompressed body is read from aiohttp
itself, past httpx2's generators (`_aiohttp_body`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, NoReturn, cast

import aiohttp
import httpx2
import openai
import orjson
from openai._base_client import make_request_options
from openai._constants import RAW_RESPONSE_HEADER
from openai._httpx2 import request_exceptions, timeout_exceptions
from openai._response import AsyncAPIResponse
from openai._streaming_cleanup import drain_response_async

try:  # the SDK's aiohttp transport (openai.DefaultAioHttpClient), vendored in the SDK
    from openai._vendor.httpx_aiohttp.transport import (
        AiohttpResponseStream,
        map_aiohttp_exceptions,
    )
except ImportError:  # moved or gone in another SDK release: every body takes httpx2's path
    AiohttpResponseStream = None  # type: ignore[misc, assignment]

# Between reads of a stream on the direct path, reading pauses this long: a model streams ~30
# deltas a second, each its own network write, and every read costs a wake-up of the socket,
# the HTTP parser and this reader; paused, the socket gathers them and one read takes them all.
# The renderer shows at most one edit a second per reply, so a tenth of a second is not seen.
# In the bench's s4 the bot's CPU per delta fell by about a sixth (bench/README.md).
PACE_S = 0.1

# Fields that open an SSE event without data; the SDK then dispatches it with empty data.
_OTHER_FIELDS = (b"event", b"id", b"retry")


class SSESplitter:
    """Cuts a byte stream into the data of its SSE events, as the SDK's decoder does: lines end
    in LF, CR or CRLF (even split across reads), `data:` lines of one event are joined with LF,
    a blank line ends the event, comments (`:` keep-alives) and unknown fields are skipped, and
    an event the stream does not end with a blank line is never dispatched."""

    def __init__(self) -> None:
        self._rest = b""  # the unfinished line from the previous read
        self._data: list[bytes] = []
        self._pending = False  # an event has begun (data or another field)
        self._after_cr = False  # the previous read ended in CR: a leading LF belongs to it

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            return []
        if self._after_cr and chunk[0] == 10:
            chunk = chunk[1:]
        self._after_cr = chunk.endswith(b"\r")
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = (self._rest + chunk).split(b"\n") if self._rest else chunk.split(b"\n")
        self._rest = lines.pop()
        events: list[bytes] = []
        for line in lines:
            if line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
                self._pending = True
            elif not line:
                if self._pending:
                    events.append(self._data[0] if len(self._data) == 1 else b"\n".join(self._data))
                    self._data, self._pending = [], False
            elif line == b"data":
                self._data.append(b"")
                self._pending = True
            elif line.partition(b":")[0] in _OTHER_FIELDS:
                self._pending = True
        return events


class EventStream:
    """One open streamed response: iterate for its events (decoded JSON, each passed through
    `view`), or `batches()` for them a network read at a time; close it to end the connection
    (a stop mid-answer, or the last event read)."""

    def __init__(self, response: AsyncAPIResponse[Any], view: Callable[[Any], Any]) -> None:
        self._response = response
        self._batches = _batches(response.http_response, view)

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for batch in self._batches:
            for event in batch:
                yield event

    def batches(self) -> AsyncIterator[list[Any]]:
        return self._batches

    async def aclose(self) -> None:
        try:
            await self._batches.aclose()
        finally:
            await self._response.close()

    close = aclose  # the name the SDK's AsyncStream also answers to


# What an SDK `create` takes as options of the request rather than fields of its body.
_REQUEST_OPTIONS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})


async def open_stream(
    client: openai.AsyncOpenAI,
    path: str,
    kwargs: dict[str, Any],
    view: Callable[[Any], Any] = lambda e: e,
) -> EventStream:
    """POST `kwargs` to `path` (`/chat/completions`, `/responses`) as the SDK's streaming
    `create` does: through the client's `post`, so auth, base URL, headers, timeouts and its HTTP
    errors (raised here, before any event is read) stay the SDK's; `extra_headers`,
    `extra_query`, `extra_body` and `timeout` are the request's options, as `create` takes them.

    What is skipped is `create`'s transform of the body against its TypedDicts, which walks
    every message of the history on every request (issue 28). For these two endpoints it only
    renames fields with an alias, formats dates and files, and dumps pydantic models: their
    parameters have no alias or format, and the backends send plain JSON (so the server gets
    the same body: tests/test_lean_request.py). `kwargs` are `create`'s, as `sdk_arguments`
    makes them: a name it does not know is in `extra_body`, which the SDK merges over the
    body, so the same value wins where both name a field."""
    body = {k: v for k, v in kwargs.items() if k not in _REQUEST_OPTIONS}
    options = make_request_options(
        # The header `with_streaming_response` adds: the raw response, its body left unread.
        extra_headers={**(kwargs.get("extra_headers") or {}), RAW_RESPONSE_HEADER: "stream"},
        extra_query=kwargs.get("extra_query"),
        extra_body=kwargs.get("extra_body"),
        timeout=kwargs.get("timeout", openai.not_given),
        security={"bearer_auth": True},
    )
    # With that header the SDK answers an AsyncAPIResponse whatever `cast_to` (never parsed).
    response = await client.post(
        path, cast_to=object, body=body, options=options, stream=True, stream_cls=None
    )
    return EventStream(cast(AsyncAPIResponse[Any], response), view)


async def _batches(
    http: httpx2.Response, view: Callable[[Any], Any]
) -> AsyncGenerator[list[Any], None]:
    """The events of each network read, as one list: the backends pass a read's text on as one
    delta (batches.py). On the direct path reading pauses between reads (PACE_S), the socket
    holding what arrives meanwhile; what aiohttp took in with a cut still comes first
    (_left_in). httpx2's path is not paced: there a cut in a wait would take what arrived in it
    along, and a lost `mcp_call` item would let a retry run a server-side tool again."""
    splitter = SSESplitter()
    direct = _aiohttp_body(http)
    reads = http.aiter_bytes() if direct is None else _direct_reads(http, direct)
    try:
        async for chunk in reads:
            batch: list[Any] = []
            for data in splitter.feed(chunk):
                if data.startswith(b"[DONE]"):
                    if batch:
                        yield batch
                    # HTTP/1.1 must read the body's end to reuse the connection (as the SDK).
                    if http.http_version == "HTTP/1.1":
                        await drain_response_async(http)
                    return
                event = _decode(data)
                if isinstance(event, dict) and event.get("error"):
                    if batch:
                        yield batch
                    raise stream_error(event["error"], http.request)
                batch.append(view(event))
            if batch:
                yield batch
    except timeout_exceptions() as err:
        raise openai.APITimeoutError(request=http.request) from err
    except request_exceptions() as err:
        raise openai.APIConnectionError(request=http.request) from err
    finally:
        await reads.aclose()  # now, not when collected: it closes the response


def _aiohttp_body(http: httpx2.Response) -> aiohttp.StreamReader | None:
    """The aiohttp body under `http` when it may be read directly: httpx2's `aiter_bytes` passes
    each read through four async generators (aiter_bytes, aiter_raw, httpx2's BoundAsyncStream,
    the transport's stream) to aiohttp's, about as much CPU per delta as our own decoding
    (issue 28). Neither httpx2 nor the transport offers the aiohttp response publicly, so this
    looks for their private attributes and answers None, for httpx2's path, when any is not
    there (another transport, another release) or the body is compressed: the transport asks
    aiohttp not to decompress, and httpx2's decoders do it on that path."""
    if AiohttpResponseStream is None or http.is_stream_consumed or http.is_closed:
        return None
    encodings = http.headers.get_list("content-encoding", split_commas=True)
    if any(value.strip().lower() != "identity" for value in encodings):
        return None
    stream = getattr(http.stream, "_stream", http.stream)  # httpx2's BoundAsyncStream wraps it
    if not isinstance(stream, AiohttpResponseStream):
        return None
    content = getattr(getattr(stream, "_aiohttp_response", None), "content", None)
    return content if isinstance(content, aiohttp.StreamReader) else None


async def _direct_reads(
    http: httpx2.Response, content: aiohttp.StreamReader
) -> AsyncGenerator[bytes, None]:
    """What aiohttp has received at each read, as `aiter_raw` would give it (one generator, no
    re-chunking: `readany` hands over its whole buffer); its failures become the httpx2
    exceptions the transport would have raised, and the response is closed at the end, as
    `aiter_raw` does."""
    http.is_stream_consumed = True  # as aiter_raw: a second reader gets StreamConsumed
    protocol: Any = getattr(content, "_protocol", None)  # aiohttp's ResponseHandler
    try:
        while True:
            try:
                chunk = await content.readany()
            except aiohttp.ClientError as err:
                if rest := _left_in(content):
                    yield rest  # taken in with the failure: what came before it comes first
                _raise_as_transport(err, http.request)
            if not chunk:
                return
            yield chunk
            if _may_pause(content, protocol):
                # The next deltas gather in the socket meanwhile and come in one read.
                protocol.pause_reading()
                try:
                    await asyncio.sleep(PACE_S)
                finally:
                    if protocol.transport is not None:
                        protocol.resume_reading()
    finally:
        await http.aclose()


def _may_pause(content: aiohttp.StreamReader, protocol: Any) -> bool:
    """Whether reading may pause now: only while the body is still coming on a live connection
    (a finished body's connection is back in the pool, and a lost one has no parser left)."""
    return (
        protocol is not None
        and protocol.transport is not None
        and not content.is_eof()
        and content.exception() is None
    )


def _left_in(content: aiohttp.StreamReader) -> bytes:
    """What aiohttp's reader still holds when it raises. A loop that reads a socket until it is
    drained (uvloop; asyncio's reads once per pass) takes in a pause's deltas and the cut after
    them before the reader runs, and `readany` raises before it hands its buffer over; lost, a
    server-side tool's items could let a retry run it again. The buffer is private: without
    it, nothing is recovered (as before pacing)."""
    buffer = getattr(content, "_buffer", None)
    if not buffer:
        return b""
    data = b"".join(buffer)
    buffer.clear()
    return data


def _raise_as_transport(err: aiohttp.ClientError, request: httpx2.Request) -> NoReturn:
    """Raise the httpx2 exception the transport makes of `err` by its own table (a cut body is a
    `ReadError`, a read timeout a `ReadTimeout`), chained to `err` and carrying the request as
    httpx2 sets it; an error not in the table passes through unchanged, as it does there."""
    try:
        with map_aiohttp_exceptions():
            raise err
    except httpx2.RequestError as mapped:
        mapped.request = request
        raise


def _decode(data: bytes) -> Any:
    """One event's JSON: orjson takes about a fifth of the standard library's time on a delta's
    event (~1.5 against ~8 us here); what it refuses and the standard library reads (NaN, an
    integer past 64 bits) still decodes, and what neither reads raises json's error as before."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def stream_error(error: Any, request: httpx2.Request) -> openai.APIError:
    """The SDK's exception for an event carrying an `error` object (its code rides on it)."""
    message = error.get("message") if isinstance(error, dict) else None
    if not message or not isinstance(message, str):
        message = "An error occurred during streaming"
    return openai.APIError(message=message, request=request, body=error)


class Fields(dict[str, Any]):
    """A decoded chat chunk read by attribute, as the backends read the SDK's models: a missing
    field is None (an optional field the server left out); nested objects are viewed lazily,
    so only the parts a backend reads are touched."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = self.get(name)
        if type(value) is dict:
            return Fields(value)
        if type(value) is list:
            return [Fields(v) if type(v) is dict else v for v in value]
        return value
