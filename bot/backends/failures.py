"""Turns LLM client exceptions into retry decisions and plain words for the user.

litellm's exceptions subclass openai's, so one classification serves both backends. Decisions go
by HTTP status wherever one is present: litellm raises a bare APIError for statuses it does not
map (403, 520-524, 529), and proxies put the real reason only in the message text.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import openai

from bot.core.events import ToolCallFinished

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 8.0
MAX_RETRY_AFTER_S = 60.0

LOST = "The connection to the model was lost before the answer finished. Try again."
SLOW = "The model took too long to answer. Try again."
TROUBLE = "The model service is having trouble right now. Try again in a moment."
RATE_LIMITED = "The model is rate-limited right now. Try again in a minute."
CREDENTIALS = "The model service rejected the bot's credentials. Tell the bot's operator."
QUOTA = (
    "The model service says the bot's account is out of quota or credit. "
    "Tell the bot's operator; trying again will not help."
)
TOO_LONG = "This conversation is too long for the model. Use /reset to start over."
EMPTY = "The model sent an empty answer several times. Try again in a moment."

# How providers and gateways word an overflow when the class and code do not say it (a LiteLLM
# proxy sends `code: "400"` and the reason only in the message).
OVERFLOW_WORDS = re.compile(
    r"context[_ ]length[_ ]exceeded|maximum context length|context window|context length"
    r"|too many tokens|prompt is too long|input is too long|exceeds? the (?:model'?s? )?"
    r"(?:context|maximum)|input tokens exceed|reduce the length of the (?:messages|input)",
    re.IGNORECASE,
)
QUOTA_WORDS = re.compile(
    r"insufficient_quota|exceeded your current quota|credit balance is too low"
    r"|billing_hard_limit|quota exceeded|out of credits?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Failure:
    message: str  # for the user: what happened, whether to retry
    retryable: bool  # worth trying the same request again
    retry_after_s: float | None = None
    overflow: bool = False  # the request did not fit the model's context window

    @property
    def transient(self) -> bool:
        """The model service's trouble, not the request's: another model may answer. A rate
        limit that asks for a long wait is not worth retrying here, but is worth a fallback."""
        return self.retryable or (self.retry_after_s is not None and not self.overflow)


class StreamCut(Exception):
    """The model's stream ended without its closing event."""


class EmptyAnswer(Exception):
    """The model finished without a word or a tool call (some providers' silent rate limit)."""


def _named(exc: BaseException, *names: str) -> bool:
    # httpx/httpx2 errors escape the SDKs mid-stream; match them by class name so both
    # client generations (and litellm's wrappers) are recognised without importing each.
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status behind an exception: openai's APIStatusError and litellm's wrappers
    (including the bare APIError it raises for statuses it does not map) carry it."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 100 <= status < 600:
        return status
    return None


def _words(exc: BaseException) -> str:
    """Everything the error says about itself: message, code, type and the raw body."""
    parts = [str(exc), str(getattr(exc, "message", "") or "")]
    for name in ("code", "type"):
        parts.append(str(getattr(exc, name, "") or ""))
    body = getattr(exc, "body", None)
    if body is not None:
        parts.append(str(body))
    return " ".join(parts)


def is_overflow(exc: BaseException) -> bool:
    """Did the request not fit the model's context window? Class, code, or the message text."""
    if _named(exc, "ContextWindowExceededError"):
        return True
    if getattr(exc, "code", None) == "context_length_exceeded":
        return True
    status = status_of(exc)
    # A 429 "too many tokens per minute" is a rate limit, not an overflow.
    if status is not None and status not in (400, 413, 422):
        return False
    if status is None and not isinstance(exc, openai.APIError):
        return False
    return bool(OVERFLOW_WORDS.search(_words(exc)))


def is_quota(exc: BaseException) -> bool:
    status = status_of(exc)
    if status == 402:
        return True
    if status is not None and status not in (400, 403, 429):
        return False
    return bool(QUOTA_WORDS.search(_words(exc)))


def _lost_connection(exc: BaseException) -> bool:
    """aiohttp's connection errors (a reset, a server that hung up) arrive wrapped: as a connect
    timeout by the openai SDK's aiohttp transport, as a 500 by litellm. Its timeouts are slow
    answers, not lost connections."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if _named(link, "ClientConnectionError") and not _named(link, "TimeoutError"):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, EmptyAnswer):
        return Failure(EMPTY, True)
    if _lost_connection(exc):
        return Failure(LOST, True)
    if _named(exc, "MidStreamFallbackError", "TransportError", "RemoteProtocolError"):
        if _named(exc, "TimeoutException"):
            return Failure(SLOW, True)
        return Failure(LOST, True)
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return Failure(SLOW, True)
    if isinstance(exc, StreamCut):
        return Failure(LOST, True)
    if is_overflow(exc):
        return Failure(TOO_LONG, False, overflow=True)
    if is_quota(exc):
        return Failure(QUOTA, False)
    status = status_of(exc)
    if isinstance(exc, openai.APIConnectionError) and status in (None, 500):
        # litellm gives its connection errors a 500; they are still lost connections.
        return Failure(LOST, True)
    if status is not None:
        return _by_status(exc, status)
    if isinstance(exc, openai.APIConnectionError):
        return Failure(LOST, True)
    return Failure("Something went wrong while talking to the model. Try again.", False)


def _by_status(exc: BaseException, status: int) -> Failure:
    if status in (401, 403):
        return Failure(CREDENTIALS, False)
    if status == 408:
        return Failure(SLOW, True)
    if status == 429 or status >= 500:  # incl. Cloudflare's 520-524, Anthropic's 529 overloaded
        wait = retry_after(exc)
        if wait is not None and wait > MAX_RETRY_AFTER_S:
            # Waiting that long would keep the user watching "typing…": say when instead.
            return Failure(
                f"The model service asked the bot to wait {_duration(wait)}. Try again then.",
                False,
                wait,
            )
        return Failure(RATE_LIMITED if status == 429 else TROUBLE, True, wait)
    return Failure(
        f"The model service refused the request ({status}). "
        "Tell the bot's operator if this keeps happening.",
        False,
    )


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(seconds / 3600)
    return f"about {hours} hour{'s' if hours != 1 else ''}"


def retry_after(exc: BaseException) -> float | None:
    """The server's wish in seconds: `retry-after-ms`, or `Retry-After` as seconds or a date."""
    headers: dict[str, Any] = dict(getattr(exc, "litellm_response_headers", None) or {})
    response = getattr(exc, "response", None)
    if response is not None:
        headers.update(getattr(response, "headers", None) or {})
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    return parse_retry_after(lowered.get("retry-after-ms"), lowered.get("retry-after"))


def parse_retry_after(ms: str | None, value: str | None, now: float | None = None) -> float | None:
    for raw, scale in ((ms, 0.001), (value, 1.0)):
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            pass
    if value is None:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def backoff_s(attempt: int, failure: Failure) -> float:
    """Capped exponential backoff with jitter; a server's Retry-After wins when it says more."""
    delay = min(MAX_BACKOFF_S, 0.5 * 2**attempt) * (0.75 + random.random() / 2)
    if failure.retry_after_s is not None:
        delay = max(delay, min(failure.retry_after_s, MAX_RETRY_AFTER_S))
    return delay


async def sleep_before_retry(attempt: int, failure: Failure) -> None:
    delay = backoff_s(attempt, failure)
    log.warning(
        "model request failed (%s); retry %d in %.1f s", failure.message, attempt + 1, delay
    )
    await asyncio.sleep(delay)


# Why an answer stopped early (chat finish_reason), said as a notice under the answer.
REFUSED = "The model refused this request."

CUT_SHORT = {
    "length": "The answer reached the model's length limit and was cut short.",
    "content_filter": "The model service's content filter cut the answer short.",
}


def still_too_long() -> Failure:
    """An overflow that trimming the stored conversation could not cure: this turn alone is
    too big (a long question, or big tool results over several rounds)."""
    return Failure(
        "This question and its tool results are too long for the model, even after leaving "
        "out earlier messages. Try a shorter question or fewer tools.",
        False,
        overflow=True,
    )


def tool_label(event: ToolCallFinished) -> str:
    return f"`{event.server}.{event.tool}`" if event.server else f"`{event.tool}`"


def ran_note(tools: list[str]) -> str:
    """Appended to a failure line when tools already ran, so nobody runs them again blindly."""
    if not tools:
        return ""
    names = ", ".join(dict.fromkeys(tools))
    return f" These tools already ran and their results are kept: {names}."
