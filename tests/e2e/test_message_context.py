"""What a message brings besides its words: the message it replies to, and attached files."""

from __future__ import annotations

from tests.conftest import World
from tests.e2e.harness import Chat
from tests.fakes.llm import Text
from tests.fakes.pdf_sample import pdf_pages, tiny_pdf


def last_user_text(body: dict) -> str:
    items = body.get("messages") or body.get("input") or []
    if isinstance(items, str):
        return items
    users = [i for i in items if isinstance(i, dict) and i.get("role") == "user"]
    content = users[-1]["content"]
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content


async def test_a_reply_to_someone_else_brings_their_message(world: World) -> None:
    chat = Chat(world.discord, "quote")
    key = f"k-quote-{world.backend}"
    other = world.discord.add_user("quoted-person")
    original = await chat.say("the build breaks on ARM since Tuesday", user=other, mention=False)
    world.llm.script(key, Text("Looks like a toolchain issue."))
    asked = await chat.say(f"{key} what do you think?", reply_to=int(original["id"]))
    await chat.answer_text(int(asked["id"]), "toolchain issue")
    sent = last_user_text(world.llm.requests_for(key)[0].body)
    assert "the build breaks on ARM since Tuesday" in sent
    assert "quoted-person" in sent and f"{key} what do you think?" in sent


async def test_files_are_read_and_the_rest_is_skipped_with_a_line(world: World) -> None:
    chat = Chat(world.discord, "files")
    key = f"k-files-{world.backend}"
    world.llm.script(key, Text("Read them."))
    code = "def answer():\n    return 42  # the-code-marker\n"
    files = [
        {"filename": "solver.py", "content": code, "content_type": "text/x-python"},
        {
            "filename": "report.pdf",
            "content": tiny_pdf("pdf-marker revenue up"),
            "content_type": "application/pdf",
        },
        {"filename": "huge.txt", "content": "x" * 2_100_000, "content_type": "text/plain"},
        {
            "filename": "tool.exe",
            "content": b"MZ\x00\x01",
            "content_type": "application/octet-stream",
        },
    ]
    asked = await chat.say(f"{key} look at these", attachments=files)
    reply = await chat.answer_text(int(asked["id"]), "Read them.")
    sent = last_user_text(world.llm.requests_for(key)[0].body)
    assert "the-code-marker" in sent and 'name="solver.py"' in sent
    assert "pdf-marker revenue up" in sent
    assert "xxxxxxxxxx" not in sent and "MZ" not in sent
    skip = next(line for line in reply.splitlines() if "Skipped" in line)
    assert "huge.txt" in skip and "limit" in skip
    assert "tool.exe" in skip and "not supported" in skip


async def test_a_pdf_of_many_pages_reaches_the_model_cut_with_a_note(chat_world: World) -> None:
    world = chat_world
    chat = Chat(world.discord, "pdf-pages")
    key = "k-pdf-pages"
    world.llm.script(key, Text("Read the start."))
    pdf = pdf_pages([f"pdfpage-{n}-end" for n in range(1, 131)])
    files = [{"filename": "tome.pdf", "content": pdf, "content_type": "application/pdf"}]
    asked = await chat.say(f"{key} summarise this", attachments=files)
    await chat.answer_text(int(asked["id"]), "Read the start.")
    sent = last_user_text(world.llm.requests_for(key)[0].body)
    assert "pdfpage-1-end" in sent and "pdfpage-100-end" in sent
    assert "pdfpage-101-end" not in sent
    assert "[... 30 more pages not read: only the first 100 are]" in sent


async def test_a_mention_replying_to_a_forward_reads_the_forwarded_message(world: World) -> None:
    chat = Chat(world.discord, "fwd-reply")
    elsewhere = Chat(world.discord, "fwd-source")
    key = f"k-fwd-reply-{world.backend}"
    other = world.discord.add_user("fwd-author")
    original = await elsewhere.say("the deploy froze at step 4", user=other, mention=False)
    forward = await world.discord.forward_message(chat.channel, chat.user, int(original["id"]))
    world.llm.script(key, Text("Step 4 waits on a lock."))
    asked = await chat.say(f"{key} why?", reply_to=int(forward["id"]))
    await chat.answer_text(int(asked["id"]), "waits on a lock")
    sent = last_user_text(world.llm.requests_for(key)[0].body)
    assert "[forwarded message] the deploy froze at step 4" in sent
    assert f"{key} why?" in sent


async def test_a_mention_replying_to_an_embed_only_webhook_message_reads_the_embed(
    world: World,
) -> None:
    chat = Chat(world.discord, "embed-reply")
    key = f"k-embed-reply-{world.backend}"
    alert = {
        "title": "Pipeline #812 failed",
        "description": "job `test-arm64` exited with 137",
        "fields": [{"name": "branch", "value": "release-2.4"}, {"name": "runner", "value": "ci-7"}],
        "footer": {"text": "GitLab CI"},
        "author": {"name": "ci-bot"},
    }
    hook = await world.discord.webhook_message(chat.channel, "CI alerts", embeds=[alert])
    world.llm.script(key, Text("137 is the OOM killer."))
    asked = await chat.say(f"{key} what happened?", reply_to=int(hook["id"]))
    await chat.answer_text(int(asked["id"]), "OOM killer")
    sent = last_user_text(world.llm.requests_for(key)[0].body)
    for part in (
        "Pipeline #812 failed",
        "job `test-arm64` exited with 137",
        "branch: release-2.4",
        "runner: ci-7",
        "GitLab CI",
        "ci-bot",
        "CI alerts",
    ):
        assert part in sent, part


async def test_a_reply_brings_the_quoted_messages_text_files(world: World) -> None:
    chat = Chat(world.discord, "quote-files")
    key = f"k-quote-files-{world.backend}"
    other = world.discord.add_user("log-poster")
    log = "ERROR disk full on /var/lib  # quoted-file-marker\n"
    files = [{"filename": "build.log", "content": log, "content_type": "text/plain"}]
    original = await chat.say("here is the log", user=other, mention=False, attachments=files)
    world.llm.script(key, Text("The disk is full."))
    asked = await chat.say(f"{key} why does it fail?", reply_to=int(original["id"]))
    await chat.answer_text(int(asked["id"]), "The disk is full.")
    sent = last_user_text(world.llm.requests_for(key)[0].body)
    assert "quoted-file-marker" in sent and 'name="build.log"' in sent
    assert "here is the log" in sent and f"{key} why does it fail?" in sent
