"""How answers read in Discord: markdown tables, which Discord does not render, as tables."""

from __future__ import annotations

from tests.conftest import World
from tests.e2e.harness import Chat
from tests.fakes.llm import Text

TABLE = (
    "Results:\n\n"
    "| Runner | Jobs | Status |\n"
    "|:-------|-----:|--------|\n"
    "| ci-1 | 12 | ok |\n"
    "| ci-22 | 3 | failing |\n"
    "| ci-3 | 140 | ok |\n\n"
    "Two are fine."
)
ALIGNED = (
    "```\n"
    "Runner | Jobs | Status\n"
    "-------+------+--------\n"
    "ci-1   |   12 | ok\n"
    "ci-22  |    3 | failing\n"
    "ci-3   |  140 | ok\n"
    "```"
)


def contents_sent(world: World, channel: int) -> list[str]:
    """Every text the bot posted or edited into the channel, previews included."""
    sent = world.discord.requests_to("POST", f"/channels/{channel}/messages")
    sent += world.discord.requests_to("PATCH", f"/channels/{channel}/messages/")
    return [r.json["content"] for r in sent if isinstance(r.json, dict) and r.json.get("content")]


async def test_a_table_is_shown_aligned_in_a_code_block_while_streaming_and_at_the_end(
    world: World,
) -> None:
    chat = Chat(world.discord, "table")
    key = f"k-table-{world.backend}"
    world.llm.script(key, Text(TABLE, chunk_size=9, delay_s=0.12))
    asked = await chat.say(f"{key} how are the runners?")
    shown = await chat.answer_text(int(asked["id"]), "Two are fine.")
    assert shown == f"Results:\n\n{ALIGNED}\n\nTwo are fine."
    previews = contents_sent(world, chat.channel)
    assert len(previews) >= 3, previews  # it streamed: the first part, edits, the final text
    assert not [p for p in previews if "|--" in p or ":--" in p]  # no raw separator, ever


async def test_a_wide_table_is_shown_as_one_block_per_row(world: World) -> None:
    chat = Chat(world.discord, "wide-table")
    key = f"k-wide-table-{world.backend}"
    answer = (
        "| Service | Owner | Last incident |\n|---|---|---|\n"
        "| billing | payments-team | card retries doubled after the 2.4 deploy |\n"
        "| search | discovery | none |\n"
    )
    world.llm.script(key, Text(answer))
    asked = await chat.say(f"{key} who owns what?")
    shown = await chat.answer_text(int(asked["id"]), "discovery")
    assert shown == (
        "Service: billing\nOwner: payments-team\n"
        "Last incident: card retries doubled after the 2.4 deploy\n\n"
        "Service: search\nOwner: discovery\nLast incident: none"
    )


async def test_the_history_keeps_the_models_own_table_markdown(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "table-history")
    key = "k-table-history"
    world.llm.script(key, Text(TABLE), Text("Still two."))
    first = await chat.say(f"{key} how are the runners?")
    await chat.answer_text(int(first["id"]), "Two are fine.")
    again = await chat.say(f"{key} and now?")
    await chat.answer_text(int(again["id"]), "Still two.")
    history = world.llm.requests_for(key)[1].body["messages"]
    said = [m["content"] for m in history if m["role"] == "assistant"]
    assert said == [TABLE]
