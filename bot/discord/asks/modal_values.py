"""The values of a submitted modal, read from the interaction's payload.

Our forms are answered from `on_interaction`, not by discord.py's copy of the modal: discord.py
stores a modal only once Discord has answered the callback that opened it, so a submit that
arrives first (a fast hand on a busy bot) or after a restart finds nothing there and would go
unanswered ("This interaction failed").
"""

from __future__ import annotations

from typing import Any

TEXT_INPUT = 4
ACTION_ROW = 1
LABEL = 18


def submitted_values(data: dict[str, Any]) -> dict[str, str]:
    """Each text input's value by its custom_id, whether it sits in an action row (the old
    layout) or in a label (the new one)."""
    values: dict[str, str] = {}

    def walk(components: list[dict[str, Any]]) -> None:
        for component in components:
            kind = component.get("type")
            if kind == ACTION_ROW:
                walk(component.get("components") or [])
            elif kind == LABEL and isinstance(component.get("component"), dict):
                walk([component["component"]])
            elif kind == TEXT_INPUT and component.get("custom_id") is not None:
                values[str(component["custom_id"])] = str(component.get("value") or "")

    walk(list(data.get("components") or []))
    return values
