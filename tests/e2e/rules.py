"""What must never happen in Discord, checked after every end-to-end test that uses a shared world.

Each e2e test gets these for free: no 429 from Discord, no request to a route the fake does not
know, no 4xx the test did not ask for (mark it `@pytest.mark.discord_errors(403, 404)`), no ping
from a bot message except a prompt with buttons pinging the one person it asks (and, where the
bot is configured with `discord.approvals.ping_roles`, the approver roles of its servers), and no reply edited more
often than its edit interval allows: in all, and between one edit and the next (so a bot that
edits on every delta is caught even while the write budget holds it to Discord's pace).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from tests.fakes.discord import FakeDiscord

# Slack over `discord.edit_interval_s` for timer jitter (a fraction of the world's interval).
EDIT_SPACING = 0.8
EDIT_ALLOWANCE = 3  # the first sync, the final text and one retry need no spacing
# Intermediate edits of one message closer together than that: one retry may be. The write budget
# keeps an edit-on-every-delta bot near Discord's average pace, but hands it a channel's free
# writes at once, so its edits come in bursts a bot that waits its interval never makes.
QUICK_EDITS_ALLOWED = 1


@dataclass
class Snapshot:
    requests: int
    unknown_routes: int
    newest_message: int


def snapshot(discord: FakeDiscord) -> Snapshot:
    return Snapshot(
        requests=len(discord.requests),
        unknown_routes=len(discord.unknown_routes),
        newest_message=max(discord.world.messages, default=0),
    )


def approver_roles(config: dict) -> set[int]:
    """The roles an approval prompt of a bot with this config may ping: none unless
    `discord.approvals.ping_roles` is on, then its servers' `approvers.roles`."""
    if not config.get("discord", {}).get("approvals", {}).get("ping_roles"):
        return set()
    servers = config.get("mcp", {}).get("servers", {}).values()
    return {int(r) for server in servers for r in server.get("approvers", {}).get("roles", [])}


def violations(
    discord: FakeDiscord,
    before: Snapshot,
    allowed: set[int],
    edit_interval_s: float = 1.0,
    approver_roles: set[int] | None = None,
) -> list[str]:
    found: list[str] = []
    new = discord.requests[before.requests :]
    for r in new:
        if r.status == 429:
            found.append(f"429 from Discord: {r.method} {r.path}")
        elif 400 <= r.status < 500 and r.status not in allowed:
            found.append(f"unexpected {r.status}: {r.method} {r.path} {r.response}")
    found += [f"unknown route {u}" for u in discord.unknown_routes[before.unknown_routes :]]

    for message_id, message in list(discord.world.messages.items()):
        if message_id <= before.newest_message:
            continue
        if int(message["author"]["id"]) != discord.bot_user_id:
            continue
        pings = discord.pings(message_id)
        # Only a prompt with buttons may ping: the one person it asks, and (when configured)
        # the approver roles, nothing else.
        prompt = bool(message.get("components"))
        may_ping_roles = (approver_roles or set()) if prompt else set()
        if pings.get("everyone"):
            found.append(f"bot message {message_id} pings everyone")
        if not {int(r) for r in pings.get("roles", [])} <= may_ping_roles:
            found.append(f"bot message {message_id} pings roles {pings['roles']}")
        may_ping = 1 if prompt else 0
        if len(pings.get("users", [])) > may_ping:
            found.append(f"bot message {message_id} pings users {pings['users']}")

    spacing = EDIT_SPACING * edit_interval_s
    edits: dict[str, list[float]] = defaultdict(list)
    applied: dict[str, list[float]] = defaultdict(list)  # a refused edit changed nothing shown
    for r in new:
        if r.method == "PATCH" and "/channels/" in r.path and "/messages/" in r.path:
            edits[r.path].append(r.t)
            if 200 <= r.status < 300:
                applied[r.path].append(r.t)
    for path, times in edits.items():
        span = max(times) - min(times)
        bound = EDIT_ALLOWANCE + span / spacing
        if len(times) > bound:
            found.append(f"{len(times)} edits of {path} in {span:.1f} s (bound {bound:.0f})")
    for path, times in applied.items():
        # The last edit is the final text, which may follow the one before at once; a retry
        # after a refused edit is not counted (the refused one is not in `applied`).
        gaps = [later - earlier for earlier, later in zip(times, times[1:-1], strict=False)]
        quick = [f"{gap:.2f}" for gap in gaps if gap < spacing]
        if len(quick) > QUICK_EDITS_ALLOWED:
            found.append(
                f"{len(quick)} edits of {path} came {', '.join(quick)} s after the one before "
                f"(interval {edit_interval_s} s)"
            )
    return found
