"""A turn that asked for an approval, carried across a restart: what is stored and how it reads.

The backend keeps `request.resume.position` up to date (plain JSON values: the conversation so
far, the calls of the round still to run, the round's number, the model); it is written with
the approval row, before the prompt is posted, and again before each later tool call and after
each tool round, until the turn ends. After a restart the turn continues from there: the call
the approval is about runs once when it is approved (or never), and a call that may already
have run is never run again (see LOST_OUTPUT).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

VERSION = 1
BACKENDS = ("chat", "responses")

LOST_OUTPUT = (
    "This tool call was approved, but the bot restarted while it may have been running, and "
    "its result was lost. It was not run again: it may or may not have taken effect. Do not "
    "assume either; say so if it matters."
)


@dataclass(frozen=True, kw_only=True)
class Resumable:
    """A stored position, with the status its approval row had at start-up: `pending` (the
    buttons still decide), or what was decided before the restart cut the turn."""

    approval_id: int
    status: str
    position: dict[str, Any]
    edited_arguments: dict[str, Any] | None = None  # approved with these before the restart

    @property
    def started(self) -> bool:
        """Whether the first call still to run may have started before the restart."""
        return bool(self.position.get("started"))

    @property
    def backend(self) -> str:
        return str(self.position["backend"])

    @property
    def model(self) -> str:
        return str(self.position["model"])

    @property
    def user_name(self) -> str:
        return str(self.position.get("user_name") or "")


def encode(position: dict[str, Any]) -> str:
    # ASCII: a lone surrogate in a model's words stays storable; NaN is not JSON.
    return json.dumps(
        {"v": VERSION, **position}, ensure_ascii=True, allow_nan=False, separators=(",", ":")
    )


def decode(text: str | None) -> dict[str, Any] | None:
    """The stored position, or None when there is none or it cannot be read (then the approval
    expires as before resumes existed, rather than failing every start-up)."""
    if not text:
        return None
    try:
        position = json.loads(text)
    except ValueError as exc:
        log.warning("a stored turn position is not JSON (%s); it is dropped", exc)
        return None
    if (
        not isinstance(position, dict)
        or position.get("v") != VERSION
        or position.get("backend") not in BACKENDS
        or not isinstance(position.get("model"), str)
        or not isinstance(position.get("calls"), list)
        or not isinstance(position.get("round"), int)
    ):
        log.warning("a stored turn position has an unknown shape; it is dropped")
        return None
    return position


def calls_of(position: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(call id, name, raw arguments) of the calls still to run, in order."""
    calls = []
    for call in position["calls"]:
        if not isinstance(call, dict):
            raise ValueError("a stored call is not an object")
        calls.append((str(call["call_id"]), str(call["name"]), str(call["arguments"])))
    return calls


def call_entry(call_id: str, name: str, arguments: str) -> dict[str, str]:
    return {"call_id": call_id, "name": name, "arguments": arguments}
