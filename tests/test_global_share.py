"""Each process of a sharded bot plans only its part of the token's global 50 requests/s."""

from __future__ import annotations

from bot.config import DiscordConfig
from bot.discord.streaming.budget import Limits, Priority, WriteBudget
from bot.discord.streaming.share import global_share, limits_for


def test_a_process_with_every_shard_plans_the_whole_limit() -> None:
    assert global_share(DiscordConfig()) == 50
    assert global_share(DiscordConfig(shard_count=4)) == 50  # shard_ids null: all four here


def test_a_process_with_some_shards_plans_its_share() -> None:
    assert global_share(DiscordConfig(shard_count=2, shard_ids=[1])) == 25
    assert global_share(DiscordConfig(shard_count=4, shard_ids=[0, 2, 3])) == 37
    # Rounded down: three processes of one shard each plan 16/s, 48 in all, never 51.
    assert sum(global_share(DiscordConfig(shard_count=3, shard_ids=[i])) for i in range(3)) <= 50
    assert global_share(DiscordConfig(shard_count=100, shard_ids=[7])) == 1


def test_the_operator_may_set_the_limit() -> None:
    config = DiscordConfig(shard_count=2, shard_ids=[0], global_rate_limit=40)
    assert global_share(config) == 40


def test_edits_keep_four_fifths_of_a_share() -> None:
    assert limits_for(50) == Limits()
    assert limits_for(25).global_edits_per_s == 20
    assert limits_for(1).global_edits_per_s == 1


def test_a_half_budget_grants_twenty_five_writes_a_second() -> None:
    budget = WriteBudget(limits_for(25))
    for channel in range(40):
        budget.submit(channel, channel, Priority.FINAL)
    assert len(budget.grant(0.0)) == 25
    assert budget.grant(0.5) == []
    assert len(budget.grant(1.01)) == 15
