"""WriteBudget with a fake clock: what goes first, fairness, and what Discord's answers change."""

from __future__ import annotations

import asyncio

import pytest

from bot.discord.streaming.budget import UNLIMITED, Limits, Priority, WriteBudget
from bot.discord.streaming.counted import UNANSWERED_S
from bot.discord.streaming.write_scheduler import WriteScheduler

LIMITS = Limits(channel_writes=5, channel_period_s=5.0, global_per_s=40, global_edits_per_s=40)


def fill(budget: WriteBudget, channel: int, now: float, count: int = 5) -> None:
    for _ in range(count):
        budget.submit(channel, 999, Priority.FIRST)
    assert len(budget.grant(now)) == count


def run(budget: WriteBudget, until: float, start: float = 0.0) -> list[tuple[float, int, str]]:
    """Advance a fake clock from wake-up to wake-up; record (time, reply, priority) granted."""
    now, seen = start, []
    while (wake := budget.next_wake(now)) is not None and wake <= until:
        now = wake
        seen += [(now, t.reply_id, t.priority.name) for t in budget.grant(now)]
    return seen


def test_finals_and_first_parts_go_before_edits() -> None:
    budget = WriteBudget(LIMITS)
    fill(budget, 1, 0.0)
    budget.submit(1, 10, Priority.EDIT)
    budget.submit(1, 11, Priority.FIRST)
    budget.submit(1, 12, Priority.FINAL)
    assert budget.grant(1.0) == []  # the window is full
    assert budget.next_wake(1.0) == 5.0
    order = [(reply, kind) for _, reply, kind in run(budget, 10.0, 1.0)]
    assert order == [(12, "FINAL"), (11, "FIRST"), (10, "EDIT")]


def test_edits_of_concurrent_replies_are_shared_fairly() -> None:
    budget = WriteBudget(LIMITS)
    served: list[int] = []
    pending = {reply: budget.submit(7, reply, Priority.EDIT) for reply in (1, 2, 3)}
    now = 0.0
    for _ in range(30):
        wake = budget.next_wake(now)
        assert wake is not None
        now = wake
        for ticket in budget.grant(now):
            served.append(ticket.reply_id)
            # every reply always has a newer text waiting: it asks again at once
            pending[ticket.reply_id] = budget.submit(7, ticket.reply_id, Priority.EDIT)
    counts = [served.count(r) for r in (1, 2, 3)]
    assert max(counts) - min(counts) <= 1, counts
    # and the channel never got more than 5 writes in any 5 s
    assert len(served) <= 5 * (now // 5.0 + 1)


def test_one_edit_is_kept_back_for_a_reply_still_waiting_for_its_first_words() -> None:
    budget = WriteBudget(LIMITS)
    budget.expect_first(3, reply_id=20)
    fill(budget, 3, 0.0, count=4)
    budget.submit(3, 21, Priority.EDIT)
    assert budget.grant(0.5) == []  # the last free write is held for reply 20
    first = budget.submit(3, 20, Priority.FIRST)
    assert budget.grant(0.6) == [first]
    budget.shown(3, 20)
    assert [t.reply_id for t in budget.grant(5.1)] == [21]


def test_remaining_zero_from_discord_holds_writes_until_its_reset() -> None:
    budget = WriteBudget(LIMITS)
    budget.observe(4, 0.0, remaining=0, reset_after_s=2.5)
    budget.submit(4, 1, Priority.FINAL)
    budget.submit(5, 2, Priority.FINAL)
    assert [t.channel_id for t in budget.grant(0.1)] == [5]  # other channels are not held
    assert budget.next_wake(0.1) == 2.5
    assert [t.channel_id for t in budget.grant(2.5)] == [4]


def test_a_429_holds_its_channel_and_a_global_429_holds_everything() -> None:
    budget = WriteBudget(LIMITS)
    budget.rate_limited(4, 0.0, retry_after_s=1.5)
    budget.submit(4, 1, Priority.FINAL)
    assert budget.grant(1.0) == []
    assert [t.reply_id for t in budget.grant(1.5)] == [1]

    budget.rate_limited(None, 2.0, retry_after_s=3.0)
    budget.submit(8, 2, Priority.FINAL)
    budget.submit(9, 3, Priority.FIRST)
    assert budget.grant(4.9) == []
    assert budget.next_wake(4.9) == 5.0
    assert [t.reply_id for t in budget.grant(5.0)] == [2, 3]


def test_the_global_limit_binds_across_channels_with_finals_first() -> None:
    budget = WriteBudget(LIMITS)
    for _ in range(10):
        budget.note_other_request(0.0)  # typing indicators count toward 50/s too
    for channel in range(100, 140):
        budget.submit(channel, channel, Priority.EDIT)
    budget.submit(200, 1, Priority.FINAL)
    granted = budget.grant(0.0)
    assert len(granted) == 30 and granted[0].reply_id == 1
    assert budget.next_wake(0.0) == 1.0
    assert len(budget.grant(1.0)) == 11


def test_cancelled_tickets_are_skipped() -> None:
    budget = WriteBudget(LIMITS)
    gone = budget.submit(6, 1, Priority.FINAL)
    budget.cancel(gone)
    kept = budget.submit(6, 2, Priority.EDIT)
    assert budget.grant(0.0) == [kept]
    assert budget.next_wake(0.0) is None


async def test_the_scheduler_wakes_waiters_in_priority_order() -> None:
    limits = Limits(channel_writes=2, channel_period_s=0.2, global_per_s=40)
    scheduler = WriteScheduler(limits)
    order: list[str] = []

    async def write(name: str, priority: Priority) -> None:
        await scheduler.acquire(1, hash(name), priority)
        order.append(name)

    await asyncio.gather(write("a", Priority.FIRST), write("b", Priority.FIRST))
    await asyncio.gather(
        write("edit", Priority.EDIT), write("first", Priority.FIRST), write("final", Priority.FINAL)
    )
    assert order[:2] == ["a", "b"]
    assert order[2:] == ["final", "first", "edit"]


def test_writes_the_budget_did_not_grant_still_spend_the_window() -> None:
    budget = WriteBudget(LIMITS)
    granted = budget.submit(2, 1, Priority.FIRST)
    assert budget.grant(0.0) == [granted]
    budget.answered(budget.note_write(2, 0.0), 0.0)  # the granted write: already counted
    for _ in range(4):
        # e.g. approval prompts sent outside the renderer
        budget.answered(budget.note_write(2, 0.1), 0.1)
    budget.submit(2, 1, Priority.FINAL)
    assert budget.grant(0.2) == []
    assert budget.next_wake(0.2) == 5.0


def test_message_writes_are_told_apart_from_other_routes() -> None:
    from bot.discord.streaming.budget_feed import message_write_channel

    assert message_write_channel("POST", "/api/v10/channels/42/messages") == 42
    assert message_write_channel("PATCH", "/api/v10/channels/42/messages/7") == 42
    assert message_write_channel("DELETE", "/api/v10/channels/42/messages/7") == 42
    assert message_write_channel("GET", "/api/v10/channels/42/messages/7") is None
    assert message_write_channel("POST", "/api/v10/channels/42/typing") is None
    assert message_write_channel("POST", "/api/v10/channels/42/messages/7/threads") is None


def test_typing_takes_only_what_waiting_finals_and_first_parts_do_not_need() -> None:
    limits = Limits(channel_writes=5, channel_period_s=5.0, global_per_s=4, global_edits_per_s=3)
    budget = WriteBudget(limits)
    for channel in (1, 2, 3):
        budget.submit(channel, channel, Priority.FIRST)
    assert len(budget.grant(0.0)) == 3
    waiting = budget.submit(4, 4, Priority.FIRST)
    assert not budget.may_type(0.0)  # the last slot of this second is the first part's
    assert budget.grant(0.0) == [waiting]
    # A typing request may_type did not count leaving (and answered at once).
    budget.answered(budget.note_other_request(0.0, typing=True), 0.0)
    assert not budget.may_type(0.0)
    assert budget.may_type(1.0)
    budget.note_other_request(1.0, typing=True)  # the one may_type counted: not twice
    # So three of the second's four requests are left (two, had it been counted twice).
    assert [budget.may_type(1.0) for _ in range(4)] == [True, True, True, False]


def test_edits_leave_global_room_for_finals_and_first_parts() -> None:
    limits = Limits(channel_writes=5, channel_period_s=5.0, global_per_s=4, global_edits_per_s=2)
    budget = WriteBudget(limits)
    for channel in (1, 2):
        budget.submit(channel, channel, Priority.FIRST)
    assert len(budget.grant(0.0)) == 2
    edit = budget.submit(3, 3, Priority.EDIT)
    assert budget.grant(0.0) == []  # edits stop at 2 per second
    final = budget.submit(5, 5, Priority.FINAL)
    assert budget.grant(0.0) == [final]  # a final still fits
    assert budget.next_wake(0.0) == 1.0
    assert budget.grant(1.0) == [edit]


def test_edits_leave_room_for_the_finals_of_replies_showing_in_the_channel() -> None:
    budget = WriteBudget(LIMITS)
    for reply in (1, 2, 3):
        budget.expect_first(9, reply)
        budget.submit(9, reply, Priority.FIRST)
        budget.shown(9, reply)  # shown: each will need a final
    assert len(budget.grant(0.0)) == 3
    edit = budget.submit(9, 1, Priority.EDIT)
    assert budget.grant(0.5) == []  # 2 free writes, 3 finals to come: no edit now
    final = budget.submit(9, 2, Priority.FINAL)
    assert budget.grant(0.6) == [final]
    budget.finish(9, 2)
    budget.finish(9, 3)
    assert budget.grant(0.7) == []  # the one free write is reply 1's own final
    assert budget.next_wake(0.7) == 5.0
    assert budget.grant(5.0) == [edit]


def test_a_reply_that_never_started_holds_no_reserve() -> None:
    budget = WriteBudget(LIMITS)
    budget.shown(7, 99)  # e.g. an error line of a turn that never got its conversation
    budget.submit(7, 1, Priority.FIRST)
    budget.submit(7, 2, Priority.FIRST)
    budget.submit(7, 3, Priority.FIRST)
    assert len(budget.grant(0.0)) == 3
    budget.expect_first(7, 4)
    budget.shown(7, 4)
    edit = budget.submit(7, 4, Priority.EDIT)
    assert budget.grant(0.1) == [edit]  # 2 free: its own final is the only one to keep


def test_across_channels_finals_and_first_parts_go_oldest_first() -> None:
    """When the bot's window binds, a stream of finals must not starve a new answer's first
    words (nor the other way round): the one waiting longest goes first."""
    limits = Limits(channel_writes=5, channel_period_s=5.0, global_per_s=2)
    budget = WriteBudget(limits)
    fill(budget, 1, 0.0, count=2)  # the bot's window is full until 1.0
    first = budget.submit(2, 20, Priority.FIRST)
    finals = [budget.submit(channel, channel, Priority.FINAL) for channel in (3, 4, 5)]
    assert budget.grant(0.5) == []
    assert budget.grant(1.0) == [first, finals[0]]
    assert budget.grant(2.0) == finals[1:]


def test_edits_leave_the_next_seconds_room_to_finals_and_first_parts() -> None:
    """Edits take from the bot's window only what the last second's finals and first parts (the
    best guess of the next second's) and those waiting right now leave over."""
    limits = Limits(channel_writes=5, channel_period_s=5.0, global_per_s=20, global_edits_per_s=10)
    budget = WriteBudget(limits)
    for channel in range(1, 8):  # 7 first parts this second: new answers keep coming
        budget.submit(channel, channel, Priority.FIRST)
    assert len(budget.grant(0.0)) == 7
    budget.rate_limited(8, 0.0, 5.0)
    budget.submit(8, 8, Priority.FIRST)  # waits for its channel: it will need the bot's room too
    edits = [budget.submit(channel, 100 + channel, Priority.EDIT) for channel in (20, 21, 22)]
    assert budget.grant(0.1) == edits[:2]  # 10 - 7 - 1 = 2
    assert budget.next_wake(0.1) == 1.0
    assert budget.grant(1.0) == edits[2:]


def test_a_write_is_counted_until_a_period_after_its_answer() -> None:
    """Discord counts a request somewhere between when it leaves and when its answer is read:
    a write that left late (a busy event loop) and was answered late holds its window from its
    answer, so the next window's writes cannot land in it, whatever the latency."""
    limits = Limits(channel_writes=1, channel_period_s=1.0, global_per_s=40)
    budget = WriteBudget(limits)
    budget.submit(3, 1, Priority.FIRST)
    assert len(budget.grant(0.0)) == 1
    counted = budget.note_write(3, 0.4)  # it left 0.4 s after its grant
    budget.submit(3, 1, Priority.FINAL)
    assert budget.grant(1.2) == []  # still in flight: Discord may not have counted it yet
    budget.answered(counted, 1.3)
    assert budget.grant(2.2) == []
    assert budget.next_wake(2.2) == 2.3
    assert len(budget.grant(2.3)) == 1


def test_a_request_never_answered_does_not_hold_the_window_for_good() -> None:
    limits = Limits(channel_writes=5, channel_period_s=5.0, global_per_s=1)
    budget = WriteBudget(limits)
    budget.note_other_request(0.0)  # e.g. a hung connection: no answer, no error
    final = budget.submit(4, 1, Priority.FINAL)
    assert budget.grant(5.0) == []
    assert budget.next_wake(5.0) == UNANSWERED_S + 1.0
    assert budget.grant(UNANSWERED_S + 1.0) == [final]


def test_a_grant_given_back_unused_frees_its_place_at_once() -> None:
    """A flusher takes a write before it knows whether its text changed; when nothing had, the
    grant it gives back must not hold the channel's window for a whole period."""
    limits = Limits(channel_writes=2, channel_period_s=5.0, global_per_s=40)
    budget = WriteBudget(limits)
    for reply in (1, 2):
        budget.submit(8, reply, Priority.FIRST)
    assert len(budget.grant(0.0)) == 2
    budget.unused(8)  # one of them found nothing to write
    later = budget.submit(8, 3, Priority.FINAL)
    assert budget.grant(0.1) == [later]  # the channel had room again at once
    for _ in range(2):
        budget.answered(budget.note_write(8, 0.2), 0.2)
    budget.unused(8)  # both grants left as writes: nothing is unused, nothing is freed
    budget.submit(8, 4, Priority.FINAL)
    assert budget.grant(0.3) == []
    assert budget.next_wake(0.3) == 5.2


def test_an_unused_grant_frees_its_place_in_the_bots_window_too() -> None:
    limits = Limits(channel_writes=5, channel_period_s=5.0, global_per_s=2, global_edits_per_s=2)
    budget = WriteBudget(limits)
    budget.submit(8, 1, Priority.FIRST)
    budget.submit(9, 2, Priority.FIRST)
    assert len(budget.grant(0.0)) == 2
    budget.unused(8)
    budget.unused(8)  # only one was granted there: a second call changes nothing
    later = budget.submit(10, 3, Priority.FINAL)
    assert budget.grant(0.1) == [later]
    assert budget.submit(10, 4, Priority.FINAL) and budget.grant(0.2) == []
    assert budget.next_wake(0.2) == 1.0


def test_a_typing_place_is_held_until_a_period_after_its_answer_however_late_it_leaves() -> None:
    # discord.py may hold a typing request (its route lock, a busy loop) past the second after
    # may_type counted it; had its place aged out, it would land in a window already full.
    budget = WriteBudget(Limits(global_per_s=2, global_edits_per_s=2))
    assert budget.may_type(0.0) and budget.may_type(0.0)
    assert not budget.may_type(1.5)  # neither has left yet: both still hold their places
    first = budget.note_other_request(2.0, typing=True)
    budget.answered(first, 2.5)
    assert not budget.may_type(3.4)
    assert budget.may_type(3.5)  # a period after the first one's answer


def test_after_a_restart_discords_count_of_the_last_runs_writes_holds_the_channel() -> None:
    """The bot's previous run wrote 3 times into a channel a moment before it stopped; Discord
    still counts them. Until a channel period has passed since start, a channel's first write
    goes alone, and its answer's count (4 used) holds the window to 1 more until Discord's
    reset, not the 4 more a fresh window would allow (CI saw two 429s answering what was missed
    right after a restart)."""
    budget = WriteBudget(LIMITS, earlier_writes_until=5.0)
    tickets = [budget.submit(7, reply, Priority.FIRST) for reply in range(4)]
    assert budget.grant(0.0) == tickets[:1]
    first = budget.note_write(7, 0.0)
    assert budget.grant(0.01) == []  # Discord has not said what it counts yet
    assert budget.next_wake(0.01) == 5.0  # or the answer, which looks again
    budget.observe(7, 0.05, remaining=1, reset_after_s=2.0, limit=5)
    budget.answered(first, 0.05)
    assert budget.grant(0.05) == tickets[1:2]
    budget.answered(budget.note_write(7, 0.06), 0.1)
    assert budget.grant(0.1) == []
    assert budget.next_wake(0.1) == pytest.approx(
        2.05
    )  # the earlier writes age out at Discord's reset
    assert budget.grant(2.05) == tickets[2:]
    # Another channel Discord has not answered about: its first write alone too...
    other = [budget.submit(8, reply, Priority.FIRST) for reply in (10, 11)]
    assert budget.grant(2.1) == other[:1]
    # ...while once the period is over nothing the bot did not write can still count.
    later = [budget.submit(9, reply, Priority.FIRST) for reply in (20, 21, 22)]
    assert budget.grant(5.0) == [*other[1:], *later]


def test_a_budget_that_expects_no_earlier_writes_still_takes_discords_count() -> None:
    """Without a restart to allow for, a fresh channel's writes go at once; an answer that
    counts more than the window holds is still Discord's word, held until its reset."""
    budget = WriteBudget(LIMITS)
    tickets = [budget.submit(7, reply, Priority.FIRST) for reply in range(2)]
    assert budget.grant(0.0) == tickets
    for _ in tickets:
        budget.answered(budget.note_write(7, 0.0), 0.05)
    budget.observe(7, 0.05, remaining=1, reset_after_s=1.0, limit=5)  # 4 counted: 2 it never saw
    more = [budget.submit(7, reply, Priority.FIRST) for reply in range(2, 4)]
    assert budget.grant(0.05) == more[:1]
    assert budget.next_wake(0.05) == pytest.approx(1.05)
    assert budget.grant(1.05) == more[1:]


def test_with_the_budget_off_discords_count_holds_nothing_back() -> None:
    """Off (the bench's baseline), the limits are endless: what Discord counted is reckoned from
    its own limit, a handful of places, not from the budget's (a billion, once: a hang)."""
    budget = WriteBudget(UNLIMITED)
    budget.observe(7, 0.0, remaining=1, reset_after_s=5.0, limit=5)
    tickets = [budget.submit(7, reply, Priority.FIRST) for reply in range(10)]
    assert budget.grant(0.0) == tickets
