"""Which files become text for the model, and how the rest is explained."""

from __future__ import annotations

from bot.core.attachments import AttachmentLimits, Extracted, extract, kind_of, skip_line
from tests.fakes.pdf_sample import tiny_pdf

LIMITS = AttachmentLimits(max_bytes=10_000, max_chars=50)


def test_kinds_by_content_type_then_name() -> None:
    assert kind_of("a.png", "image/png; charset=x") == "image"
    assert kind_of("notes", "text/plain") == "text"
    assert kind_of("main.rs", None) == "text"
    assert kind_of("Dockerfile", "application/octet-stream") == "text"
    assert kind_of("paper.pdf", None) == "pdf"
    assert kind_of("setup.exe", "application/x-msdownload") == "other"


def test_text_is_capped_and_binary_is_refused() -> None:
    long = extract("a.txt", "text", b"y" * 80, LIMITS)
    assert long.text is not None and long.text.startswith("y" * 50)
    assert "30 more characters" in long.text
    assert extract("b.txt", "text", b"\x00\x01\x02", LIMITS).skipped == "not readable as text"
    assert extract("c.txt", "text", "caf\u00e9".encode("latin-1"), LIMITS).text == "caf\u00e9"


def test_pdf_text_and_broken_pdfs() -> None:
    assert extract("r.pdf", "pdf", tiny_pdf("hello pdf"), LIMITS).text == "hello pdf"
    assert extract("bad.pdf", "pdf", b"%PDF-1.4 garbage", LIMITS).skipped is not None


def test_one_line_for_everything_skipped() -> None:
    items = [Extracted("a.py", text="x"), Extracted("b.bin", skipped="not supported")]
    assert skip_line(items) == "Skipped attachment: b.bin (not supported)"
    assert skip_line(items[:1]) is None
