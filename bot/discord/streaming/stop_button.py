"""Where a streaming reply's Stop button is: on its newest part while the turn runs, moved by
the edits that happen anyway and taken off by the final edit, so it costs no request of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import discord


class StopButtonSpot:
    def __init__(self, make_view: Callable[[], discord.ui.View] | None) -> None:
        self._make_view = make_view
        self.on: int | None = None  # the message showing it

    def wanted(self, newest_while_running: bool) -> bool:
        return self._make_view is not None and newest_while_running

    def stale(self, message_id: int, button: bool) -> bool:
        """This part shows the button but should not: it needs an edit even if its text holds."""
        return message_id == self.on and not button

    def change(self, message_id: int | None, button: bool) -> dict[str, Any]:
        """The `view` argument that puts the button on (or takes it off) this write, if any;
        `message_id` None: a new message."""
        carries = message_id is not None and message_id == self.on
        if button and not carries and self._make_view is not None:
            return {"view": self._make_view()}
        if not button and carries:
            return {"view": None}
        return {}

    def written(self, message_id: int, button: bool, change: dict[str, Any]) -> None:
        if "view" in change:
            self.on = message_id if button else None
