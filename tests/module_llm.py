"""A scripted LLM server per test module, for in-process tests that run on the module's own event
loop (the session-wide `llm` of conftest.py runs on the session's loop, where e2e tests live).
A module opts in by importing it: `from tests.module_llm import module_llm  # noqa: F401`; the
fixture it brings is named `llm`, and so overrides the session one in that module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.llm import ScriptedLLM


@pytest.fixture(scope="module", name="llm")
async def module_llm() -> AsyncIterator[ScriptedLLM]:
    async with ScriptedLLM() as server:
        yield server
