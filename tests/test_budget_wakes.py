"""The write budget keeps each waiting channel's next wake until that channel's state changes
(budget.py, `_channel_wake`): a wake kept too long would leave a write waiting for nothing. Over
long random runs of everything the scheduler and Discord tell the budget, the kept wakes must
give the same answer as wakes worked out afresh."""

from __future__ import annotations

import random

import pytest

from bot.discord.streaming.budget import Limits, Priority, WriteBudget


def _fresh_wake(budget: WriteBudget, now: float) -> float | None:
    kept = dict(budget._wake_of)
    budget._wake_of.clear()  # worked out again from the windows, as before the cache existed
    try:
        return budget.next_wake(now)
    finally:
        budget._wake_of.update(kept)


@pytest.mark.parametrize("seed", range(4))
def test_kept_wakes_match_fresh_ones(seed: int) -> None:
    rng = random.Random(seed)
    budget = WriteBudget(Limits(channel_writes=5, channel_period_s=2.0, global_per_s=12))
    channels, replies = [1, 2], list(range(10, 16))
    in_flight: list = []
    tickets: list = []
    now = 0.0
    for _ in range(3000):
        now += rng.choice([0.0, 0.01, 0.05, 0.2, 0.7])
        channel, reply = rng.choice(channels), rng.choice(replies)
        op = rng.randrange(11)
        if op == 0:
            budget.expect_first(channel, reply)
        elif op == 1:
            budget.shown(channel, reply)
        elif op == 2:
            budget.finish(channel, reply)
        elif op in (3, 4):
            priority = Priority.EDIT if rng.random() < 0.6 else rng.choice(list(Priority))
            tickets.append(budget.submit(channel, reply, priority))
        elif op == 5 and tickets:
            budget.cancel(tickets.pop(rng.randrange(len(tickets))))
        elif op == 6:
            budget.grant(now)
        elif op == 7:
            in_flight.append(budget.note_write(channel, now))
        elif op == 8 and in_flight:
            budget.answered(in_flight.pop(rng.randrange(len(in_flight))), now)
        elif op == 9:
            budget.unused(channel)
        elif rng.random() < 0.1:  # e.g. coordination handing this process another share
            budget.limits = Limits(
                channel_writes=rng.choice([4, 5]), channel_period_s=2.0, global_per_s=12
            )
        elif rng.random() < 0.5:
            budget.observe(channel, now, remaining=0, reset_after_s=rng.uniform(0.1, 3.0))
        else:
            budget.rate_limited(rng.choice([channel, None]), now, rng.uniform(0.1, 2.0))
        assert budget.next_wake(now) == _fresh_wake(budget, now)
