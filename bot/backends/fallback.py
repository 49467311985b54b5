"""Fallback models: a turn whose model is unavailable is answered by the next configured one.

One loop serves every path: the openai SDK (chat `openai/...` models and the responses backend)
and litellm (other chat providers). litellm's Router does fallbacks too, but only on its own
path, and with its own retries, cooldowns and mid-stream fallbacks: it would replace the retry
policy users see (Retry-After caps, empty-answer retries, "no retry once text was shown"),
could switch models after words were shown, and would pull litellm into the openai path. Here
each model keeps the backend's retries (`llm.max_retries`); only when they are spent on a
transient failure, and nothing of the answer was shown yet, does the turn start over on the next
model. A refused request (400, 401, too long) fails the same way on every model: it ends the turn.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import replace

from bot.config import LLMConfig
from bot.core.events import Notice, ReasoningDelta, TurnCompleted, TurnEvent, TurnFailed, Usage
from bot.core.state import ConversationState, TurnRequest

log = logging.getLogger(__name__)

# One model's attempt at a whole turn: the backend's turn with the model given explicitly.
RunOn = Callable[[ConversationState, TurnRequest, str], AsyncGenerator[TurnEvent, None]]


def run_with_fallbacks(
    llm: LLMConfig, state: ConversationState, request: TurnRequest, run_on: RunOn
) -> AsyncIterator[TurnEvent]:
    """The turn on its model (a /model choice, the channel's, else llm.model), then on each of
    llm.fallback_models while the one before is unavailable."""
    model = state.model or request.model or llm.model
    return with_fallbacks(model_chain(model, llm.fallback_names()), state, request, run_on)


def model_chain(model: str, fallbacks: list[str]) -> list[str]:
    """The turn's model first, then each fallback once (a /model choice may be one of them)."""
    return list(dict.fromkeys([model, *fallbacks]))


def answered_by(model: str, unavailable: list[str]) -> str:
    names = ", ".join(f"`{m}`" for m in unavailable)
    verb = "was" if len(unavailable) == 1 else "were"
    return f"answered by `{model}` ({names} {verb} unavailable)"


async def with_fallbacks(
    models: list[str], state: ConversationState, request: TurnRequest, run_on: RunOn
) -> AsyncIterator[TurnEvent]:
    """The turn on `models[0]`; on a transient failure before anything visible, on the next."""
    unavailable: list[str] = []
    # What the failed models' attempts cost (empty answers do): counted with the turn, under
    # the model that ends it, so the daily budget sees every token.
    spent = Usage()
    carried: ConversationState | None = None  # a failed attempt's state change (fresh start)
    notices: set[str] = set()
    for n, model in enumerate(models):
        shown = False
        async with aclosing(run_on(carried or state, request, model)) as events:
            async for event in events:
                if isinstance(event, TurnFailed):
                    if event.transient and not shown and n + 1 < len(models):
                        log.warning(
                            "model %s unavailable (%s); trying the next", model, event.message
                        )
                        unavailable.append(model)
                        spent = spent + event.usage
                        if event.state is not None:
                            carried = event.state
                        break
                    saved = event.state if event.state is not None else carried
                    yield replace(event, usage=spent + event.usage, state=saved)
                    return
                if isinstance(event, TurnCompleted):
                    if unavailable:
                        yield Notice(text=answered_by(model, unavailable))
                    yield replace(event, usage=spent + event.usage)
                    return
                if isinstance(event, Notice):
                    # The same remark from an earlier model's attempt (e.g. history trimmed).
                    if event.text in notices:
                        continue
                    notices.add(event.text)
                elif not isinstance(event, ReasoningDelta):
                    # A reasoning status gives way to the answer; anything else stays on screen,
                    # and an answer must not continue in another model's words.
                    shown = True
                yield event
