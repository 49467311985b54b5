"""Tool files and Discord's upload limits: what fits is kept, the rest gets a line."""

from __future__ import annotations

from bot.core.events import Attachment
from bot.discord.attachments import MAX_FILES, ReplyFiles


def file(name: str, size: int) -> Attachment:
    return Attachment(filename=name, content_type="application/octet-stream", data=b"x" * size)


def test_over_the_limit_is_refused_with_a_line() -> None:
    files = ReplyFiles(limit_bytes=10 * 1024 * 1024)
    lines = files.add((file("small.png", 1000), file("huge.bin", 11 * 1024 * 1024)))
    assert files.pending
    (line,) = [n.text for n in lines]
    assert "`huge.bin` (11.0 MiB) is over Discord's upload limit (10.0 MiB)" in line


def test_the_limit_counts_all_files_of_the_message_and_their_number() -> None:
    files = ReplyFiles(limit_bytes=1000)
    assert files.add((file("a", 600),)) == []
    (line,) = [n.text for n in files.add((file("b", 600),))]
    assert "`b` did not fit" in line
    many = ReplyFiles(limit_bytes=10_000)
    lines = many.add(tuple(file(f"f{i}", 1) for i in range(MAX_FILES + 2)))
    assert len(lines) == 2
