"""Remembers recently deleted messages, so a reply never edits or replies to a message that is gone."""

from __future__ import annotations

from collections import OrderedDict

REMEMBERED = 5000  # far more than the messages all running turns can refer to at once


class DeletedMessages:
    """Fed by the gateway's MESSAGE_DELETE; asked by renderers before they edit or reply."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self._ids: OrderedDict[int, None] = OrderedDict()
        self._size = size

    def note(self, message_id: int) -> None:
        self._ids[message_id] = None
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids
