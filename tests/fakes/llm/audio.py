"""POST /v1/audio/transcriptions as OpenAI serves it: a multipart `file` and `model`, answered
with `{"text", "usage"}`; scripted per key found in the audio's bytes, and recorded byte for byte
so a test can tell the bot sent the file exactly as Discord gave it."""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .items import Fault, error_body, new_id
from .refusals import unknown_model


@dataclass(frozen=True)
class Heard:
    """A scripted transcription: the text, and the usage OpenAI reports (`tokens_usage` or
    `duration_usage`; None: no usage field, as some OpenAI-compatible servers answer)."""

    text: str
    usage: dict[str, Any] | None = None


def tokens_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    """The gpt-4o-*-transcribe models' usage."""
    return {
        "type": "tokens",
        "input_tokens": input_tokens,
        "input_token_details": {"text_tokens": 0, "audio_tokens": input_tokens},
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def duration_usage(seconds: float) -> dict[str, Any]:
    """whisper-1's usage: billed by the second."""
    return {"type": "duration", "seconds": seconds}


@dataclass
class AudioRequest:
    """One transcription request as the server received it."""

    model: str | None
    filename: str | None
    content_type: str | None
    data: bytes | None
    key: str | None
    fields: dict[str, str] = field(default_factory=dict)  # the other form fields
    headers: dict[str, str] = field(default_factory=dict)
    t: float = 0.0


class Transcriptions:
    """The route's state: scripts by key, and every request received."""

    def __init__(self, served: list[str], fault: Callable[[Fault], web.Response]) -> None:
        self._served = served  # the server's own list: `serve` extends it
        self._fault = fault
        self._scripts: dict[str, deque[Heard | Fault]] = {}
        self.requests: list[AudioRequest] = []

    def script(self, key: str, *replies: Heard | Fault) -> None:
        """Requests whose audio bytes contain `key` (as a whole word) get these, in order;
        the last one repeats, as a provider keeps hearing the same file."""
        self._scripts.setdefault(key, deque()).extend(replies)

    def requests_for(self, key: str) -> list[AudioRequest]:
        if key not in self._scripts:
            raise KeyError(f"transcriptions.requests_for({key!r}): nobody scripted this key")
        return [r for r in self.requests if r.key == key]

    def clear(self) -> None:
        self._scripts.clear()
        self.requests.clear()

    def _match(self, data: bytes) -> str | None:
        text = data.decode("latin-1")
        for key in self._scripts:
            # ASCII word characters: audio bytes read as latin-1 are full of letters like ÿ.
            if re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", text, re.ASCII):
                return key
        return None

    def _next(self, key: str | None) -> Heard | Fault:
        queue = self._scripts.get(key) if key is not None else None
        if not queue:
            return Heard("(nothing scripted was heard)")
        return queue.popleft() if len(queue) > 1 else queue[0]

    async def handle(self, request: web.Request) -> web.Response:
        headers = {"x-request-id": new_id("req")}
        if not request.content_type.startswith("multipart/form-data"):
            return _bad("Expected a multipart/form-data body.", headers)
        form = await request.post()
        upload, model = form.get("file"), form.get("model")
        recorded = AudioRequest(
            model=model if isinstance(model, str) else None,
            filename=getattr(upload, "filename", None),
            content_type=getattr(upload, "content_type", None),
            data=upload.file.read() if isinstance(upload, web.FileField) else None,
            key=None,
            fields={k: v for k, v in form.items() if isinstance(v, str) and k != "model"},
            headers=dict(request.headers),
            t=time.monotonic(),
        )
        if recorded.data is not None:
            recorded.key = self._match(recorded.data)
        self.requests.append(recorded)
        if recorded.data is None:
            return _bad("you must provide a file parameter", headers, param="file")
        refused = unknown_model(recorded.model, self._served)
        if refused is not None:
            status, body = refused
            return web.json_response(body, status=status, headers=headers)
        reply = self._next(recorded.key)
        if isinstance(reply, Fault):
            return self._fault(reply)
        if recorded.fields.get("response_format") == "text":
            return web.Response(text=reply.text, headers=headers)
        body = {"text": reply.text}
        if reply.usage is not None:
            body["usage"] = reply.usage
        return web.json_response(body, headers=headers)


def _bad(message: str, headers: dict[str, str], **fields: Any) -> web.Response:
    return web.json_response(error_body(400, message, **fields), status=400, headers=headers)
