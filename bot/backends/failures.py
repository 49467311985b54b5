"""Turns LLM client exceptions into retry decisions and plain words for the user.

litellm's exceptions subclass openai's, so one classification serves both backends.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

import openai

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 8.0


@dataclass(frozen=True)
class Failure:
    message: str  # for the user: what happened, whether to retry
    retryable: bool  # worth trying the same request again
    retry_after_s: float | None = None


class StreamCut(Exception):
    """The model's stream ended without its closing event."""


def _named(exc: BaseException, *names: str) -> bool:
    # httpx/httpx2 errors escape the SDKs mid-stream; match them by class name so both
    # client generations (and litellm's wrappers) are recognised without importing each.
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def classify(exc: BaseException) -> Failure:
    if _named(exc, "MidStreamFallbackError", "TransportError", "RemoteProtocolError"):
        if _named(exc, "TimeoutException"):
            return Failure("The model took too long to answer. Try again.", True)
        return Failure(
            "The connection to the model was lost before the answer finished. Try again.", True
        )
    if isinstance(exc, openai.RateLimitError):
        return Failure(
            "The model is rate-limited right now. Try again in a minute.",
            True,
            _retry_after(exc),
        )
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return Failure("The model took too long to answer. Try again.", True)
    if isinstance(exc, openai.APIConnectionError | StreamCut):
        return Failure(
            "The connection to the model was lost before the answer finished. Try again.", True
        )
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return Failure(
            "The model service rejected the bot's credentials. Tell the bot's operator.", False
        )
    if _is_context_window(exc):
        return Failure(
            "This conversation is too long for the model. Use /reset to start over.", False
        )
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return Failure(
                "The model service is having trouble right now. Try again in a moment.", True
            )
        return Failure(
            f"The model service refused the request ({exc.status_code}). "
            "Tell the bot's operator if this keeps happening.",
            False,
        )
    return Failure("Something went wrong while talking to the model. Try again.", False)


def _is_context_window(exc: BaseException) -> bool:
    # litellm raises ContextWindowExceededError; the plain openai SDK only says so in the code.
    if type(exc).__name__ == "ContextWindowExceededError":
        return True
    code = getattr(exc, "code", None)
    return code == "context_length_exceeded"


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = dict(getattr(exc, "litellm_response_headers", None) or {})
    response = getattr(exc, "response", None)
    if response is not None:
        headers.update(response.headers)
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return max(0.0, float(lowered[name]) * scale)
        except (KeyError, TypeError, ValueError):
            continue
    return None


def backoff_s(attempt: int, failure: Failure) -> float:
    """Capped exponential backoff with jitter; a server's Retry-After wins when it says more."""
    delay = min(MAX_BACKOFF_S, 0.5 * 2**attempt) * (0.75 + random.random() / 2)
    if failure.retry_after_s is not None:
        delay = max(delay, min(failure.retry_after_s, 60.0))
    return delay


async def sleep_before_retry(attempt: int, failure: Failure) -> None:
    delay = backoff_s(attempt, failure)
    log.warning(
        "model request failed (%s); retry %d in %.1f s", failure.message, attempt + 1, delay
    )
    await asyncio.sleep(delay)
