"""Retry classification of real client exceptions (litellm and openai against the scripted server)."""

from __future__ import annotations

import os
from email.utils import formatdate

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
import openai
import pytest

from bot.backends.failures import (
    CREDENTIALS,
    QUOTA,
    RATE_LIMITED,
    TROUBLE,
    Failure,
    backoff_s,
    classify,
    parse_retry_after,
)
from tests.fakes.llm import Fault, ScriptedLLM
from tests.module_llm import module_llm  # noqa: F401 - this module's own `llm`

litellm.suppress_debug_info = True
QUOTA_ERROR = {
    "code": "insufficient_quota",
    "type": "insufficient_quota",
}


async def raised(llm: ScriptedLLM, via: str, key: str) -> BaseException:
    """The exception each client really raises for the scripted reply of `key`."""
    try:
        if via == "litellm":
            stream = await litellm.acompletion(
                model="openai/test-model",
                api_base=llm.base_url,
                api_key="test",
                messages=[{"role": "user", "content": key}],
                stream=True,
                max_retries=0,
            )
            async for _ in stream:
                pass
        else:
            client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
            async with client:
                await client.responses.create(model="test-model", input=key, stream=True)
    except Exception as exc:
        return exc
    raise AssertionError("no exception")


CASES = [
    ("f529", Fault(529, message="Overloaded"), TROUBLE, True),
    ("f520", Fault(520, message="web server returned an unknown error"), TROUBLE, True),
    ("f503", Fault(503), TROUBLE, True),
    ("f403", Fault(403, message="forbidden"), CREDENTIALS, False),
    ("f401", Fault(401, message="bad key"), CREDENTIALS, False),
    (
        "fquota",
        Fault(429, message="You exceeded your current quota.", error=QUOTA_ERROR),
        QUOTA,
        False,
    ),
    ("f429", Fault(429, retry_after=3), RATE_LIMITED, True),
]


@pytest.mark.parametrize("via", ["litellm", "openai"])
@pytest.mark.parametrize(("key", "fault", "message", "retryable"), CASES)
async def test_statuses_are_classified_alike_through_both_clients(
    llm: ScriptedLLM, via: str, key: str, fault: Fault, message: str, retryable: bool
) -> None:
    key = f"{key}-{via}"
    llm.script(key, fault)
    failure = classify(await raised(llm, via, key))
    assert (failure.message, failure.retryable, failure.overflow) == (message, retryable, False)
    # Whether a fallback model may answer instead: the service's trouble, not credentials/quota.
    assert failure.transient == retryable
    if fault.retry_after is not None:
        assert failure.retry_after_s == pytest.approx(fault.retry_after)


@pytest.mark.parametrize("via", ["litellm", "openai"])
@pytest.mark.parametrize("style", ["openai", "litellm"])
async def test_context_overflow_is_recognised_in_every_form(
    llm: ScriptedLLM, via: str, style: str
) -> None:
    key = f"over-{via}-{style}"
    llm.context_window(key, 1, style=style)
    failure = classify(await raised(llm, via, f"{key} {'x' * 50}"))
    assert failure.overflow and not failure.retryable and not failure.transient


async def test_retry_after_as_an_http_date(llm: ScriptedLLM) -> None:
    llm.script("fdate", Fault(503, retry_after=30, retry_date=True))
    failure = classify(await raised(llm, "openai", "fdate"))
    assert failure.retryable and failure.retry_after_s is not None
    assert 25 <= failure.retry_after_s <= 31


def test_retry_after_forms() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("1500", "9") == 1.5  # milliseconds win
    assert parse_retry_after(None, "7") == 7.0
    assert parse_retry_after(None, formatdate(now + 12, usegmt=True), now=now) == 12.0
    assert parse_retry_after(None, formatdate(now - 12, usegmt=True), now=now) == 0.0
    assert parse_retry_after(None, "soon") is None
    assert parse_retry_after(None, None) is None
    # The server's wish wins over a shorter backoff, but is capped.
    assert backoff_s(0, Failure("x", True, retry_after_s=20)) == 20
    assert backoff_s(0, Failure("x", True, retry_after_s=3600)) == 60


def test_a_token_rate_limit_is_not_an_overflow() -> None:
    exc = openai.RateLimitError.__new__(openai.RateLimitError)
    Exception.__init__(exc, "Rate limit reached: too many tokens per min")
    exc.status_code, exc.code, exc.body, exc.message = 429, "rate_limit_exceeded", None, str(exc)
    exc.response = None  # type: ignore[assignment]
    failure = classify(exc)
    assert failure.message == RATE_LIMITED and not failure.overflow


async def test_a_long_retry_after_is_said_instead_of_waited_for(llm: ScriptedLLM) -> None:
    llm.script("flong", Fault(429, retry_after=600))
    failure = classify(await raised(llm, "litellm", "flong"))
    assert not failure.retryable and "about 10 minutes" in failure.message
    assert failure.transient  # not worth waiting for, but worth asking a fallback model
