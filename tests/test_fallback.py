"""llm.fallback_models in-process: both backends (and both chat paths) against the scripted server."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from bot.backends.chat import ChatBackend
from bot.backends.failures import LOST
from bot.backends.fallback import answered_by, model_chain
from bot.backends.responses import ResponsesBackend
from bot.config import LLMConfig
from bot.core.events import Notice, TextDelta, TurnCompleted, TurnEvent, TurnFailed
from bot.core.state import ConversationKey, ConversationState, TurnRequest
from tests.fakes.llm import Cut, Fault, HangUp, ScriptedLLM, Text
from tests.module_llm import module_llm  # noqa: F401 (this module's `llm`)

KEY = ConversationKey(guild_id=1, channel_id=2, user_id=3)
# "openai/": the chat backend's openai-SDK path; "hosted_vllm/": its litellm path.
CHAT_PREFIXES = ["openai/", "hosted_vllm/"]


def config(llm: ScriptedLLM, prefix: str, backend: str = "chat") -> LLMConfig:
    llm.serve("primary", "second", "third")
    return LLMConfig(
        backend=backend,  # type: ignore[arg-type]
        model=f"{prefix}primary",
        fallback_models=[f"{prefix}second", f"{prefix}third"],
        max_retries=1,  # one retry on each model keeps the test quick
        base_url=llm.base_url,
        api_key=SecretStr("test"),
    )


def made(llm: ScriptedLLM, prefix: str, backend: str) -> ChatBackend | ResponsesBackend:
    if backend == "responses":
        return ResponsesBackend(config(llm, "", "responses"), tools=None, servers={})
    return ChatBackend(config(llm, prefix), tools=None)


async def turn(
    backend: ChatBackend | ResponsesBackend, text: str, state: ConversationState | None = None
) -> list[TurnEvent]:
    request = TurnRequest(key=KEY, user_id=3, user_name="ann", text=text)
    start = state or ConversationState(backend=backend.name)
    try:
        return [e async for e in backend.run_turn(start, request)]
    finally:
        await backend.aclose()


BACKENDS = [("chat", p) for p in CHAT_PREFIXES] + [("responses", "")]


@pytest.mark.parametrize(("backend", "prefix"), BACKENDS)
async def test_a_down_primary_is_answered_by_the_first_fallback(
    llm: ScriptedLLM, backend: str, prefix: str
) -> None:
    key = f"fb-down-{backend}-{prefix.strip('/')}"
    llm.script(key, Text("the fallback speaks"))
    llm.fail_model("primary", Fault(500), key=key)
    events = await turn(made(llm, prefix, backend), f"{key} hello")
    done = events[-1]
    assert isinstance(done, TurnCompleted), done
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "the fallback speaks"
    # The line saying who answered comes last, after the answer.
    assert events[-2] == Notice(text=answered_by(f"{prefix}second", [f"{prefix}primary"]))
    assert done.model == f"{prefix}second"  # usage and the turn log record who answered
    assert done.state.model is None  # the fallback is not stored as the conversation's choice
    # Every attempt on the primary (1 + max_retries), then the first fallback; never the third.
    assert [r.model for r in llm.requests_for(key)] == ["primary", "primary", "second"]


@pytest.mark.parametrize(("backend", "prefix"), BACKENDS)
async def test_a_refused_request_does_not_fall_through(
    llm: ScriptedLLM, backend: str, prefix: str
) -> None:
    key = f"fb-400-{backend}-{prefix.strip('/')}"
    llm.script(key, Fault(400, message="bad request"), Text("never"))
    events = await turn(made(llm, prefix, backend), f"{key} hello")
    failed = events[-1]
    assert isinstance(failed, TurnFailed) and not failed.transient, failed
    assert "refused the request (400)" in failed.message
    assert not any(isinstance(e, Notice) for e in events)
    assert [r.model for r in llm.requests_for(key)] == ["primary"]


@pytest.mark.parametrize(("backend", "prefix"), BACKENDS)
async def test_a_server_that_hangs_up_is_a_lost_connection_on_every_model(
    llm: ScriptedLLM, backend: str, prefix: str
) -> None:
    """The connection closes before any answer (a proxy restarting): retried, then the next
    model, and in the end the user reads that the connection was lost, not that it was slow."""
    key = f"fb-hangup-{backend}-{prefix.strip('/')}"
    llm.script(key, *[HangUp()] * 6)
    events = await turn(made(llm, prefix, backend), f"{key} hello")
    failed = events[-1]
    assert isinstance(failed, TurnFailed) and failed.transient, failed
    assert failed.message == LOST
    models = [r.model for r in llm.requests_for(key)]
    assert models == ["primary", "primary", "second", "second", "third", "third"]


@pytest.mark.parametrize(("backend", "prefix"), [BACKENDS[0], BACKENDS[2]])
async def test_no_switch_once_text_was_shown(llm: ScriptedLLM, backend: str, prefix: str) -> None:
    key = f"fb-cut-{backend}"
    llm.script(key, Cut("half an answer that", after_chars=10), Text("never"))
    events = await turn(made(llm, prefix, backend), f"{key} hello")
    failed = events[-1]
    assert isinstance(failed, TurnFailed) and failed.transient, failed
    assert "connection to the model was lost" in failed.message
    assert [r.model for r in llm.requests_for(key)] == ["primary"]


async def test_responses_the_fallback_continues_the_stored_response(llm: ScriptedLLM) -> None:
    first_key, second_key = "fb-chain-one", "fb-chain-two"
    llm.script(first_key, Text("primary was here"))
    first = await turn(made(llm, "", "responses"), f"{first_key} hello")
    done = first[-1]
    assert isinstance(done, TurnCompleted) and done.model == "primary"
    llm.fail_model("primary", Fault(500), key=second_key)
    llm.script(second_key, Text("second continues"))
    second = await turn(made(llm, "", "responses"), f"{second_key} go on", done.state)
    last = second[-1]
    assert isinstance(last, TurnCompleted) and last.model == "second"
    asked = llm.requests_for(second_key)
    assert [r.model for r in asked] == ["primary", "primary", "second"]
    # Model B continues model A's stored response (fine on OpenAI); the new id is kept.
    assert asked[-1].body["previous_response_id"] == done.state.previous_response_id
    assert last.state.previous_response_id not in (None, done.state.previous_response_id)


async def test_a_long_rate_limit_goes_to_the_fallback_without_waiting(llm: ScriptedLLM) -> None:
    key = "fb-long-429"
    llm.script(key, Fault(429, retry_after=600), Text("no need to wait"))
    events = await turn(made(llm, "openai/", "chat"), f"{key} hello")
    done = events[-1]
    assert isinstance(done, TurnCompleted) and done.model == "openai/second"
    assert [r.model for r in llm.requests_for(key)] == ["primary", "second"]


async def test_all_models_down_ends_with_one_failure_line(llm: ScriptedLLM) -> None:
    key = "fb-all-down"
    for model in ("primary", "second", "third"):
        llm.fail_model(model, Fault(503), key=key)
    llm.script(key, Text("never"))
    events = await turn(made(llm, "openai/", "chat"), f"{key} hello")
    assert [type(e) for e in events] == [TurnFailed]
    failed = events[0]
    assert isinstance(failed, TurnFailed)
    assert "having trouble" in failed.message and failed.model == "openai/third"
    models = [r.model for r in llm.requests_for(key)]
    assert models == ["primary", "primary", "second", "second", "third", "third"]


async def test_a_slash_model_choice_leads_and_stays_stored(llm: ScriptedLLM) -> None:
    key = "fb-choice"
    llm.script(key, Text("third answers"))
    llm.fail_model("second", Fault(502), key=key)
    state = ConversationState(backend="chat", model="openai/second")
    events = await turn(made(llm, "openai/", "chat"), f"{key} hello", state)
    done = events[-1]
    assert isinstance(done, TurnCompleted) and done.model == "openai/third"
    assert done.state.model == "openai/second"
    assert [r.model for r in llm.requests_for(key)] == ["second", "second", "third"]


def test_the_chain_starts_with_the_turns_model_and_names_each_once() -> None:
    assert model_chain("b", ["a", "b", "c", "a"]) == ["b", "a", "c"]
    assert answered_by("c", ["a", "b"]) == "answered by `c` (`a`, `b` were unavailable)"
