"""Image attachments fetched when the turn runs and sent inline: a stored URL would expire.

Discord's signed CDN URLs stop working after about a day or when the message is deleted; a
provider that fetches such a URL from stored history then refuses every later request of the
conversation. So the model gets the bytes as a data URL, and history keeps only a placeholder.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

import httpx2  # openai's HTTP client, installed with it

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 8 * 1024 * 1024
FETCH_TIMEOUT_S = 20.0
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(frozen=True)
class Images:
    data_urls: tuple[str, ...] = ()
    failed: int = 0  # attachments that could not be loaded (gone, too big, not an image)

    def failure_note(self) -> str:
        """Told to the model now, so it does not pretend to see what did not arrive."""
        return f"[{self.failed} attached image(s) could not be loaded]" if self.failed else ""

    def placeholder(self) -> str:
        """What stored history says instead of the images."""
        lines = [f"[image {n} was attached here]" for n in range(1, len(self.data_urls) + 1)]
        if self.failed:
            lines.append(self.failure_note())
        return "\n".join(lines)


async def fetch_images(urls: Sequence[str]) -> Images:
    if not urls:
        return Images()
    data_urls: list[str] = []
    failed = 0
    async with httpx2.AsyncClient(timeout=FETCH_TIMEOUT_S, follow_redirects=True) as client:
        for url in urls:
            data_url = await _fetch(client, url)
            if data_url is None:
                failed += 1
            else:
                data_urls.append(data_url)
    return Images(tuple(data_urls), failed)


async def _fetch(client: httpx2.AsyncClient, url: str) -> str | None:
    try:
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                log.warning("image %s: HTTP %d", _safe(url), response.status_code)
                return None
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_IMAGE_BYTES:
                    log.warning("image %s: larger than %d bytes", _safe(url), MAX_IMAGE_BYTES)
                    return None
            header = response.headers.get("content-type", "")
    except httpx2.HTTPError as exc:
        log.warning("image %s: %s", _safe(url), exc)
        return None
    kind = _kind(bytes(body[:16]), header, url)
    if kind is None:
        log.warning("image %s: not a supported image type", _safe(url))
        return None
    return f"data:{kind};base64,{base64.b64encode(bytes(body)).decode('ascii')}"


def _kind(head: bytes, header: str, url: str) -> str | None:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    declared = header.split(";")[0].strip()
    if declared.startswith("image/"):
        return declared
    guessed = mimetypes.guess_type(urlparse(url).path)[0]
    return guessed if guessed and guessed.startswith("image/") else None


def _safe(url: str) -> str:
    # The signature in a CDN URL's query is a credential of sorts: keep it out of the logs.
    return url.split("?", 1)[0]
