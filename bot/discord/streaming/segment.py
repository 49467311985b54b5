"""One run of reply messages: where the answer continues below an approval prompt or question."""

from __future__ import annotations

from dataclasses import dataclass, field

import discord


@dataclass
class Segment:
    """Messages showing the transcript's blocks from `start` up to the next segment's start."""

    start: int
    anchor: discord.Message | None
    messages: list[discord.Message] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)
    header: str = ""  # a line shown above the segment's text
