"""End to end: mentions in, streamed and split replies out, history, /reset, faults, concurrency."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.conftest import World
from tests.e2e.harness import Chat
from tests.fakes.llm import Cut, Fault, Text

FENCE = re.compile(r"^\s{0,3}(```|~~~)", re.MULTILINE)


@pytest.fixture(params=["chat", "chat-litellm", "responses"])
def world(request: pytest.FixtureRequest) -> World:
    """Here also the chat backend's litellm path (a provider only litellm speaks)."""
    return request.getfixturevalue(f"{request.param.replace('-', '_')}_world")


def user_texts(body: dict) -> list[str]:
    """The user messages an LLM request carried, for either API."""
    items = body.get("messages") or body.get("input") or []
    if isinstance(items, str):
        return [items]
    texts = []
    for item in items:
        if item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content)
        texts.append(content)
    return texts


async def test_mention_gets_a_streamed_reply_and_other_messages_get_nothing(world: World) -> None:
    chat = Chat(world.discord, "stream")
    key = f"k-stream-{world.backend}"
    text = " ".join(f"word{i}" for i in range(150))
    # A model slow to start (typing shows meanwhile), then ~3.2 s of streaming.
    world.llm.script(key, Text(text, chunk_size=12, delay_s=0.04, first_delay_s=1.0))
    ignored = await chat.say("k-ignore-me please answer", mention=False)
    asked = await chat.say(f"{key} tell me a story")
    parts = await chat.answer(int(asked["id"]), lambda t: t == text)
    assert [p["content"] for p in parts] == [text]
    edits = world.discord.requests_to("PATCH", f"/messages/{parts[0]['id']}")
    assert len(edits) >= 2, f"only {len(edits)} edits for a 3 s stream"
    # Typing shows while the model is silent, and stops once words are shown.
    typing = world.discord.requests_to("POST", f"/channels/{chat.channel}/typing")
    first_words = world.discord.requests_to("POST", f"/channels/{chat.channel}/messages")[0]
    assert typing and all(r.t < first_words.t for r in typing)
    assert chat.replies_to(int(ignored["id"])) == []
    assert not [r for r in world.llm.requests if "k-ignore-me" in str(r.body)]


async def test_typing_stops_at_the_first_words(chat_world: World) -> None:
    # Discord shows "typing" for about 10 s per request, so a bot that types on must refresh
    # within 10 s: an answer streaming for longer than that after its first words shows
    # whether it does. One backend is enough: the renderer is the same.
    world = chat_world
    chat = Chat(world.discord, "typing-stops")
    key = "k-typing-stops"
    text = " ".join(f"w{i:03d}" for i in range(220))  # ~1100 chars in 55 chunks, 0.2 s apart
    world.llm.script(key, Text(text, chunk_size=20, delay_s=0.2, first_delay_s=1.0))
    asked = await chat.say(f"{key} take your time")
    parts = await chat.answer(int(asked["id"]), lambda t: t == text, timeout=60)
    (first_words,) = world.discord.requests_to("POST", f"/channels/{chat.channel}/messages")
    final = world.discord.requests_to("PATCH", f"/messages/{parts[0]['id']}")[-1]
    assert final.t - first_words.t > 10.0, "the answer did not stream long enough to tell"
    typing = world.discord.requests_to("POST", f"/channels/{chat.channel}/typing")
    assert typing, "no typing while the model was silent"
    # A typing request already on its way when the words went out may land just after them.
    assert [r.t - first_words.t for r in typing if r.t > first_words.t + 1.0] == []


async def test_long_answer_with_code_is_split_with_balanced_fences(world: World) -> None:
    chat = Chat(world.discord, "split")
    key = f"k-split-{world.backend}"
    prose = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 12 for i in range(6))
    code = "\n".join(f"    print('line {i}', {i} * 2)" for i in range(60))
    text = f"{prose}\n\n```python\n{code}\n```\n\n{prose[:1400]}"
    assert len(text) > 5000
    world.llm.script(key, Text(text, chunk_size=400))
    asked = await chat.say(f"{key} write code")
    parts = await chat.answer(
        int(asked["id"]), lambda t: "line 59" in t and t.endswith(text.rstrip()[-30:])
    )
    contents = [p["content"] for p in parts]
    assert len(contents) >= 3
    assert all(len(c) <= 2000 for c in contents)
    assert all(len(FENCE.findall(c)) % 2 == 0 for c in contents), "unbalanced fence in a part"
    reopened = [c for c in contents[1:] if c.startswith("```python")]
    assert reopened, "the code block was not reopened with its language"
    # Rejoin: drop the fence lines the splitter added, then compare word for word.
    rejoined = "\n".join(contents)
    for added in ("\n```\n```python\n",):
        rejoined = rejoined.replace(added, "\n")
    assert rejoined.split() == text.split()
    for previous, part in zip(parts, parts[1:], strict=False):
        assert int(part["message_reference"]["message_id"]) == int(previous["id"])


async def test_history_is_kept_per_user_and_channel(world: World) -> None:
    chat = Chat(world.discord, "history")
    key = f"k-hist-{world.backend}"
    world.llm.script(key, Text("Nice to meet you, Ada."), Text("Your name is Ada."))
    first = await chat.say(f"{key} my name is Ada")
    await chat.answer_text(int(first["id"]), "Nice to meet you")
    second = await chat.say(f"{key} what is my name?")
    await chat.answer_text(int(second["id"]), "Your name is Ada")
    requests = world.llm.requests_for(key)
    assert len(requests) == 2
    follow_up = requests[1].body
    if world.backend.startswith("chat"):
        assert any("my name is Ada" in t for t in user_texts(follow_up))
        assert any(
            m.get("role") == "assistant" and "Nice to meet you" in (m.get("content") or "")
            for m in follow_up["messages"]
        )
    else:  # state: server — the earlier exchange travels as previous_response_id
        assert follow_up.get("previous_response_id")
        assert not any("my name is Ada" in t for t in user_texts(follow_up))
    other = world.discord.add_user("stranger")
    third = await chat.say(f"{key} who am I?", user=other)
    await chat.answer_text(int(third["id"]), "echo")
    fresh = world.llm.requests_for(key)[2].body
    assert not any("Ada" in t for t in user_texts(fresh))
    assert not fresh.get("previous_response_id")


async def test_reset_command_forgets_the_conversation(world: World) -> None:
    chat = Chat(world.discord, "reset")
    key = f"k-reset-{world.backend}"
    world.llm.script(key)  # no scripted replies: the default echo, but requests are tagged
    first = await chat.say(f"{key} remember the word banana")
    await chat.answer_text(int(first["id"]), "echo")
    interaction = await world.discord.slash_command("reset", chat.user, chat.channel)
    response = await interaction.wait_response()
    assert response["data"]["flags"] & 64, "the /reset answer must be ephemeral"
    assert "forgotten" in response["data"]["content"]
    second = await chat.say(f"{key} what was the word?")
    await chat.answer_text(int(second["id"]), "echo")
    latest = world.llm.requests_for(key)[-1].body
    assert not any("banana" in t for t in user_texts(latest))
    assert not latest.get("previous_response_id")


async def test_rate_limit_then_success_is_retried(world: World) -> None:
    chat = Chat(world.discord, "retry")
    key = f"k-429-{world.backend}"
    world.llm.script(key, Fault(429, retry_after=2), Text("made it through"))
    asked = await chat.say(f"{key} hello")
    assert "made it through" in await chat.answer_text(int(asked["id"]), "made it through")
    refused, retried = world.llm.requests_for(key)
    # The server said when to come back, and the retry came no earlier (the bot's own first
    # backoff, 0.5 s give or take a quarter, would have been sooner).
    assert retried.t - refused.t >= 2.0


async def test_repeated_server_errors_show_a_short_error_and_the_bot_recovers(world: World) -> None:
    chat = Chat(world.discord, "errors")
    key = f"k-500-{world.backend}"
    world.llm.script(key, *[Fault(500)] * 4)
    asked = await chat.say(f"{key} hello")
    text = await chat.answer_text(int(asked["id"]), "⚠️")
    assert "Try again" in text and len(text) < 200
    again = await chat.say(f"{key} hello again")
    assert "echo" in await chat.answer_text(int(again["id"]), "echo")


async def test_cut_stream_shows_an_error_and_keeps_history_unchanged(world: World) -> None:
    chat = Chat(world.discord, "cut")
    key = f"k-cut-{world.backend}"
    world.llm.script(
        key, Text("I remember: 42."), Cut("This answer will be cut off soon", after_chars=12)
    )
    first = await chat.say(f"{key} remember 42")
    await chat.answer_text(int(first["id"]), "I remember")
    cut = await chat.say(f"{key} the doomed question")
    text = await chat.answer_text(int(cut["id"]), "⚠️")
    assert "This answer" in text  # what was shown stays, with the error under it
    last = await chat.say(f"{key} next question")
    await chat.answer_text(int(last["id"]), "echo")
    body = world.llm.requests_for(key)[-1].body
    assert not any("doomed" in t for t in user_texts(body))
    if world.backend.startswith("chat"):
        assert any("remember 42" in t for t in user_texts(body))
    else:
        second_id = world.llm.requests_for(key)[1].body.get("previous_response_id")
        assert body.get("previous_response_id") == second_id


async def test_two_mentions_in_one_conversation_are_answered_in_order(world: World) -> None:
    chat = Chat(world.discord, "order")
    key = f"k-order-{world.backend}"
    world.llm.script(key, Text("answer one", chunk_size=2, delay_s=0.05), Text("answer two"))
    one, two = await asyncio.gather(chat.say(f"{key} one"), chat.say(f"{key} two"))
    await chat.answer_text(int(one["id"]), "answer one")
    await chat.answer_text(int(two["id"]), "answer two")
    first, second = world.llm.requests_for(key)
    assert user_texts(first.body)[-1].endswith(f"{key} one")
    # The second question is asked only once the first answer is complete: it continues the
    # first exchange, the whole answer included.
    if world.backend.startswith("chat"):
        assert [m["content"] for m in second.body["messages"] if m["role"] == "assistant"] == [
            "answer one"
        ]
    else:
        assert world.llm.response_request(second.body["previous_response_id"]) == first.body


async def test_twenty_conversations_at_once(world: World) -> None:
    chat = Chat(world.discord, "crowd")
    keys = [f"k-crowd-{world.backend}-{i}" for i in range(20)]
    for i, key in enumerate(keys):
        world.llm.script(key, Text(f"answer {i}", first_delay_s=2.0))  # each model call is slow
    users = [world.discord.add_user(f"crowd{i}") for i in range(20)]
    asked = await asyncio.gather(
        *(chat.say(f"{k} hi", user=u) for k, u in zip(keys, users, strict=True))
    )
    for i, message in enumerate(asked):
        assert await chat.answer_text(int(message["id"]), f"answer {i}", 60) == f"answer {i}"
    # They ran side by side: every question reached the model before the first answer came
    # back. One after another, the second would have waited for the first answer.
    asked_at = [r.t for key in keys for r in world.llm.requests_for(key)]
    answers = world.discord.requests_to("POST", f"/channels/{chat.channel}/messages")
    assert len(asked_at) == 20 and max(asked_at) < min(r.t for r in answers)


async def test_model_output_pings_nobody(world: World) -> None:
    chat = Chat(world.discord, "pings")
    key = f"k-ping-{world.backend}"
    role = world.discord.add_role("mods")
    world.llm.script(key, Text(f"@everyone @here <@&{role}> <@{chat.user}> look!"))
    asked = await chat.say(f"{key} ping them")
    await chat.answer_text(int(asked["id"]), "look!")
    sends = [
        r
        for r in world.discord.requests
        if f"/channels/{chat.channel}/messages" in r.path and r.method in ("POST", "PATCH")
    ]
    assert sends
    for request in sends:
        allowed = request.json.get("allowed_mentions")
        assert allowed is not None, f"{request.method} {request.path} sent no allowed_mentions"
        assert allowed.get("parse") == [] and not allowed.get("users") and not allowed.get("roles")
        assert not allowed.get("replied_user")


async def test_retries_back_off_longer_after_each_failure(world: World) -> None:
    """Three 503s without Retry-After, then an answer: the bot's own backoff (0.5 s doubling,
    jittered by ±25 %) sets the gaps. Only lower bounds: a busy machine makes gaps longer."""
    chat = Chat(world.discord, "backoff")
    key = f"k-backoff-{world.backend}"
    world.llm.script(key, Fault(503), Fault(503), Fault(503), Text("after three retries"))
    asked = await chat.say(f"{key} hello")
    await chat.answer_text(int(asked["id"]), "after three retries")
    times = [r.t for r in world.llm.requests_for(key)]
    assert len(times) == 4
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    shortest = [0.5 * 2**attempt * 0.75 for attempt in range(3)]  # 0.375, 0.75, 1.5 s
    assert all(gap >= floor for gap, floor in zip(gaps, shortest, strict=True)), gaps
