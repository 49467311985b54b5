"""Faults a test injects on purpose: dropped connections, 5xx answers, refused command syncs.

Real Discord fails in ways a clean fake never shows: a keep-alive connection closes in the middle
of a request (aiohttp raises ServerDisconnectedError, which discord.py passes through), a route
answers 5xx for a while, a request is taken and never answered, a guild refuses the application's
commands. Each rule here matches a
method and a path pattern and fires on the next N matching requests.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["drop", "status", "hang"]


@dataclass
class Rule:
    method: str
    pattern: re.Pattern[str]
    remaining: int
    kind: Kind
    status: int = 0
    code: int = 0
    message: str = ""
    # drop: handle the request first (the change happens, the answer is lost) or not at all.
    after_handling: bool = False
    fired: int = 0
    # hang: the request is held, unanswered and not applied, until this is set (or the fake stops).
    released: asyncio.Event = field(default_factory=asyncio.Event)


class Faults:
    def __init__(self) -> None:
        self._rules: list[Rule] = []

    def drop_connection(
        self, method: str, path: str, times: int = 1, *, after_handling: bool = False
    ) -> Rule:
        """Close the TCP connection without an answer on the next `times` requests whose path
        matches the regex `path` (searched, not anchored)."""
        return self._add(
            Rule(method.upper(), re.compile(path), times, "drop", after_handling=after_handling)
        )

    def hang(self, method: str, path: str, times: int = 1) -> Rule:
        """Take the next `times` matching requests and never answer them: nothing is applied
        and the connection stays open, so only the client's own timeout ends the wait."""
        return self._add(Rule(method.upper(), re.compile(path), times, "hang"))

    def server_error(self, method: str, path: str, times: int = 1, status: int = 503) -> Rule:
        return self._add(
            Rule(
                method.upper(), re.compile(path), times, "status", status, 0, "Service Unavailable"
            )
        )

    def refuse_command_sync(self, guild_id: int) -> Rule:
        """The guild answers a command sync with 403 / 50001, as after the bot was kicked."""
        path = rf"/applications/\d+/guilds/{guild_id}/commands$"
        return self._add(
            Rule("PUT", re.compile(path), 10**9, "status", 403, 50001, "Missing Access")
        )

    def take(self, method: str, path: str) -> Rule | None:
        """The rule that fires for this request, if any (and count it)."""
        for rule in self._rules:
            if rule.remaining > 0 and rule.method == method and rule.pattern.search(path):
                rule.remaining -= 1
                rule.fired += 1
                return rule
        return None

    def clear(self) -> None:
        self.release_hung()
        self._rules.clear()

    def release_hung(self) -> None:
        """Ends every held request (as a dropped connection) so the server can stop."""
        for rule in self._rules:
            rule.released.set()

    def _add(self, rule: Rule) -> Rule:
        self._rules.append(rule)
        return rule
