"""One Responses request with its retries: when another try is safe, and when it would run a tool twice."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from bot.backends.base import sdk_arguments
from bot.backends.batches import folded
from bot.backends.failures import EmptyAnswer, Failure, StreamCut, sleep_before_retry, status_of
from bot.backends.responses_events import Round, failure_of, missing_previous
from bot.backends.responses_items import is_output
from bot.backends.sse import EventStream, open_stream
from bot.config import LLMConfig
from bot.core.events import Notice, ReasoningDelta, TurnEvent

log = logging.getLogger(__name__)

EMPTY_RETRIES = 2  # an empty stream is some providers' silent rate limit: worth a couple more
FRESH_START = (
    "I couldn't find our earlier conversation on the model server, so this is a fresh start."
)


def may_have_run(labels: list[str]) -> Failure:
    """A break after the server started a server-side MCP tool: sending the request again (or
    to another model) would run it again, so the turn ends here and says so."""
    names = ", ".join(labels) or "a tool"
    them = "they" if len(labels) > 1 else "it"
    return Failure(
        f"The answer broke off after the model server started {names}, so {them} may have "
        "run. Check before asking for it again.",
        False,
    )


async def stream_response(
    client: Any,
    llm: LLMConfig,
    kwargs: dict[str, Any],
    result: Round,
    may_start_fresh: bool,
    approved: list[str],
) -> AsyncIterator[TurnEvent]:
    """One response with retries; retries stop once an answer has been shown, or once the
    server may have run a server-side MCP tool (`approved`: tools a person approved in this
    request, which the server runs on receiving it). A final failure is left in
    `result.failure` for the turn to decide on."""
    attempt = 0
    while True:
        shown = False
        stream: EventStream | None = None
        try:
            # The lean reader (sse.py): events as plain dicts, which Round.absorb reads as well.
            arguments = sdk_arguments(client.responses.create, kwargs)
            stream = await open_stream(client, "/responses", arguments)
            async for events in stream.batches():
                for out in folded(events, result.absorb):
                    shown = shown or not isinstance(out, ReasoningDelta)
                    yield out
            if not result.completed:
                raise StreamCut("stream ended without response.completed")
            if result.empty:
                raise EmptyAnswer("response completed with no output")
            return
        except Exception as exc:
            previous = kwargs.get("previous_response_id")
            if may_start_fresh and previous and missing_previous(exc, previous):
                # Expired or unknown on the server: resend the user's message alone (answers
                # to that response's calls go with it). The key is removed, so this
                # happens at most once per turn.
                log.info("previous response %s is gone; starting fresh", previous)
                del kwargs["previous_response_id"]
                kwargs["input"] = [i for i in kwargs["input"] if not is_output(i)]
                result.reset()
                yield Notice(text=FRESH_START)
                continue
            failure = failure_of(exc)
            log.warning("responses request failed: %s: %s", type(exc).__name__, exc)
            status = status_of(exc)
            refused = status is not None and 400 <= status < 500  # refused before any run
            if result.mcp_started or (approved and not refused):
                # Another try, on this model or a fallback, would run the tool again.
                result.failure = may_have_run(result.started_labels or approved)
                return
            retries = llm.max_retries
            limit = min(EMPTY_RETRIES, retries) if isinstance(exc, EmptyAnswer) else retries
            if shown or not failure.retryable or attempt >= limit:
                result.failure = failure
                return
            await sleep_before_retry(attempt, failure)
            attempt += 1
            result.reset()
        finally:
            if stream is not None:
                await stream.close()
