"""Which running call a server's request is answered for, when the request itself does not say
(stdio, or HTTP's standalone stream, on the 2025 protocol): the e2e tests cover HTTP requests
on a call's own stream (tests/e2e/test_server_requests.py)."""

from __future__ import annotations

from typing import Any

import mcp_types as types

from bot.config import MCPServerConfig
from bot.tools.mcp_requests import InFlight, ServerRequests
from bot.tools.mcp_session import ServerEntry


class Person:
    """A call's asker who answers every question at once, and says whom they were asked for."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.asked: list[str] = []

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        pass

    async def approve_sampling(self, server: str, summary: dict[str, Any]) -> str | None:
        self.asked.append("sampling")
        return None

    def sampled(self, model: str, input_tokens: int, output_tokens: int) -> None:
        pass

    async def sampling_refusal(self) -> str | None:
        return None

    async def elicit(
        self, server: str, message: str, schema: dict[str, Any] | None, url: str | None
    ) -> tuple[str, dict[str, Any] | None]:
        self.asked.append(message)
        return "accept", {"answer": self.name}


def question(text: str) -> types.ElicitRequestParams:
    return types.ElicitRequestFormParams(
        message=text,
        requested_schema={"type": "object", "properties": {"answer": {"type": "string"}}},
    )


def server_with(*people: Person) -> ServerEntry:
    server = ServerEntry("srv", MCPServerConfig(command="unused"))
    server.inflight.extend(InFlight(p) for p in people)
    return server


async def test_with_one_call_running_its_asker_is_asked() -> None:
    alice = Person("alice")
    requests = ServerRequests("deny", None, timeout_s=5, elicitation=True)
    answered = await requests.answer_elicitation(server_with(alice), question("Sure?"))
    assert answered == types.ElicitResult(action="accept", content={"answer": "alice"})
    assert alice.asked == ["Sure?"]


async def test_with_two_calls_running_nobody_is_asked() -> None:
    alice, bob = Person("alice"), Person("bob")
    requests = ServerRequests("deny", None, timeout_s=5, elicitation=True)
    answered = await requests.answer_elicitation(server_with(alice, bob), question("Transfer?"))
    assert answered == types.ElicitResult(action="decline")
    assert alice.asked == [] and bob.asked == []


async def test_a_call_is_asked_at_most_three_questions() -> None:
    alice = Person("alice")
    server = server_with(alice)
    requests = ServerRequests("deny", None, timeout_s=5, elicitation=True)
    actions = [
        (await requests.answer_elicitation(server, question(f"Q{n}?"))).action  # type: ignore[union-attr]
        for n in range(1, 5)
    ]
    assert actions == ["accept", "accept", "accept", "decline"]
    assert alice.asked == ["Q1?", "Q2?", "Q3?"]
