"""What follows a turn from the moment it is asked to its end, beside the Discord reply: the
turn's log line, the metrics. Watchers must be quick and must never fail the turn."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from bot.core.events import TurnEvent
from bot.core.state import TurnRequest
from bot.core.turn_log import TurnLog

log = logging.getLogger(__name__)


class TurnWatcher(Protocol):
    """Follows one turn from the moment it is asked (queued ones too) to its end, however it
    ends: a cancelled turn has no final event, so `ended` is how a watcher learns of it."""

    def see(self, event: TurnEvent) -> None: ...
    def ended(self) -> None: ...


# Makes a watcher for each new turn (e.g. the metrics); must be quick and must not fail the turn.
WatcherFactory = Callable[[TurnRequest], TurnWatcher]


class TurnLogWatcher:
    """The turn's log line, as one watcher among others."""

    def __init__(self, turn_log: TurnLog) -> None:
        self._log = turn_log

    def see(self, event: TurnEvent) -> None:
        self._log.see(event)

    def ended(self) -> None:
        self._log.emit()


def tell(watchers: list[Any], method: str, *args: Any) -> None:
    for watcher in watchers:
        try:
            getattr(watcher, method)(*args)
        except Exception:
            log.exception("turn watcher failed in %s", method)
