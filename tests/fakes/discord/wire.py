"""HTTP plumbing shared by the routes: exact JSON responses, body parsing, and the request record."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .messages import Upload

# Typed keys: where the app keeps the FakeDiscord, and where the middleware leaves the parsed body.
FAKE: web.AppKey[Any] = web.AppKey("fake", object)
BODY: web.RequestKey[Any] = web.RequestKey("body", object)
UPLOADS: web.RequestKey[list[Upload]] = web.RequestKey("uploads", list)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # Set the header by hand: aiohttp's content_type= adds "; charset=utf-8", and discord.py
    # only parses a body as JSON when the header is exactly "application/json".
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    return web.Response(body=json.dumps(body).encode(), status=status, headers=hdrs)


def error(status: int, code: int, message: str, errors: dict | None = None) -> web.Response:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return json_response(body, status)


def no_content() -> web.Response:
    return web.Response(status=204)


@dataclass
class RecordedRequest:
    """One REST call as the fake saw it, including refused ones."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    status: int = 0
    t: float = 0.0
    files: list[dict] = field(default_factory=list)  # {"field", "filename", "size", "content_type"}
    response: Any = None
    response_headers: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} -> {self.status}>"


async def read_body(request: web.Request) -> tuple[Any, list[Upload]]:
    """Returns (json body or payload_json, uploaded files) for JSON and multipart requests."""
    ctype = request.content_type
    if ctype == "multipart/form-data":
        payload: Any = None
        uploads: list[Upload] = []
        reader = await request.multipart()
        async for part in reader:
            name = part.name or ""
            if name == "payload_json":
                payload = json.loads(await part.text())
            elif name.startswith("files[") and name.endswith("]"):
                data = await part.read(decode=False)
                index = int(name[6:-1])
                ct = part.headers.get("Content-Type")
                uploads.append(Upload(index, part.filename or f"file{index}", bytes(data), ct))
            else:
                # Discord also accepts plain form fields (content=...); keep them visible.
                payload = payload or {}
                payload[name] = await part.text()
        return payload, uploads
    raw = await request.read()
    if not raw:
        return None, []
    if ctype == "application/json":
        return json.loads(raw), []
    return raw.decode(errors="replace"), []
