"""Which files become text for the model, and how the rest is explained."""

from __future__ import annotations

import asyncio

from bot.core.attachments import (
    AttachmentLimits,
    Extracted,
    extract,
    extract_off_loop,
    kind_of,
    skip_line,
)
from tests.fakes.pdf_sample import pdf_pages, tiny_pdf

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


def test_a_pdf_over_the_page_cap_is_read_in_part_with_a_note() -> None:
    limits = AttachmentLimits(max_bytes=10**6, max_chars=10_000, max_pdf_pages=3)
    pdf = pdf_pages([f"marker-{n}" for n in range(1, 6)])
    text = extract("long.pdf", "pdf", pdf, limits).text
    assert text is not None
    assert "marker-1" in text and "marker-3" in text and "marker-4" not in text
    assert "[... 2 more pages not read: only the first 3 are]" in text


def test_a_pdf_that_takes_too_long_is_read_in_part_with_a_note() -> None:
    limits = AttachmentLimits(max_bytes=10**6, max_chars=10_000, pdf_read_s=0)
    text = extract("slow.pdf", "pdf", pdf_pages(["first-page", "second-page"]), limits).text
    assert text is not None
    assert "first-page" in text and "second-page" not in text  # one page is always read
    assert "[... 1 more page not read: reading took too long]" in text


def test_a_pdf_stops_being_read_once_it_gave_all_the_text_that_is_shown() -> None:
    limits = AttachmentLimits(max_bytes=10**6, max_chars=100)
    text = extract("big.pdf", "pdf", pdf_pages(["w" * 60] * 4), limits).text
    assert text is not None
    assert "more characters not shown" in text and "[... 2 more pages not read]" in text


async def test_a_pdf_is_read_while_the_event_loop_goes_on() -> None:
    """A dense PDF takes a while to parse; streams, typing and the heartbeat must not wait."""
    limits = AttachmentLimits(max_bytes=10**7, max_chars=10**6)
    pdf = pdf_pages([f"dense page {n}" for n in range(1, 101)], lines_per_page=40)
    ticks = 0
    reading = asyncio.ensure_future(extract_off_loop("dense.pdf", "pdf", pdf, limits))
    while not reading.done():
        await asyncio.sleep(0)
        ticks += 1
    item = reading.result()
    assert item.text is not None and "dense page 100" in item.text
    assert ticks > 1  # the loop ran other work while the PDF was parsed
