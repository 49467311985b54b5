"""The write budget's terms (budget.py): what a write is worth, the limits it is spent under,
and the ticket a waiting write holds."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import IntEnum


class Priority(IntEnum):
    """Lower goes first."""

    FINAL = 0  # the last text of a reply: nothing after it will fix a stale message
    FIRST = 1  # a new message: the user's first sight of (more of) an answer
    EDIT = 2  # an intermediate edit: only refreshes text that is already visible


@dataclass(frozen=True)
class Limits:
    channel_writes: int = 5
    channel_period_s: float = 5.0
    # Discord's global limit: 50/s for every request the bot makes (all pass discord.py's session
    # and are counted, interaction callbacks too, which Discord exempts). Finals and first parts
    # may fill the window up to `global_per_s`; edits only up to `global_edits_per_s` minus the
    # last second's finals and first parts (the best guess of the next second's), so refreshes
    # never slow new answers; typing takes what waiting finals and first parts do not need.
    global_per_s: int = 50
    global_edits_per_s: int = 40
    global_period_s: float = 1.0


# No budget at all: every write goes at once (the bench's baseline, `discord.write_budget: false`).
UNLIMITED = Limits(channel_writes=10**9, global_per_s=10**9, global_edits_per_s=10**9)


@dataclass(order=True)
class Ticket:
    """One write waiting for the budget."""

    priority: Priority
    last_served: int  # this reply's place in the order of service: served longest ago goes first
    seq: int
    channel_id: int = field(compare=False)
    reply_id: int = field(compare=False)
    granted: bool = field(default=False, compare=False)
    cancelled: bool = field(default=False, compare=False)


def across_channels(ticket: Ticket) -> tuple[int, int, int]:
    """Which channel's head goes first when the bot's own window is what binds: finals and first
    parts before edits, and among them the oldest (strict finals-first would starve new answers
    for as long as old ones keep finishing); edits by the same fairness as within a channel."""
    if ticket.priority is Priority.EDIT:
        return (1, ticket.last_served, ticket.seq)
    return (0, ticket.seq, 0)


def free_writes_needed(
    ticket: Ticket, live: Collection[int], waiting: Collection[int], channel_writes: int
) -> int:
    """Free writes a channel's window must hold for this ticket to go. An intermediate edit
    leaves one for every final that will come in the channel (its own and those of the other
    replies showing there: `live`) and one for a reply still waiting to show its first words
    (`waiting`): an edit only refreshes text, a final or a first part is what a user waits for."""
    if ticket.priority is not Priority.EDIT:
        return 1
    reply = ticket.reply_id
    finals = len(live) + (reply not in live)
    first = len(waiting) > (reply in waiting)  # another reply still waits for its first words
    return min(1 + finals + first, channel_writes)


def discard(sets: dict[int, set[int]], channel_id: int, reply_id: int) -> None:
    """Take a reply out of its channel's set, and the set out when it empties."""
    members = sets.get(channel_id)
    if members is not None:
        members.discard(reply_id)
        if not members:
            del sets[channel_id]
