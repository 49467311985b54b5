"""PDFs with a real text layer, written by hand so tests need no PDF writer."""

from __future__ import annotations


def tiny_pdf(text: str) -> bytes:
    return pdf_pages([text])


def pdf_pages(texts: list[str], lines_per_page: int = 1) -> bytes:
    """One page per text; each page shows its text on `lines_per_page` lines (more text per
    page makes a PDF slower to read, as a dense real one is)."""
    font = 3 + len(texts) * 2  # the object number of the one font every page shares
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (3 + 2 * n) for n in range(len(texts))), len(texts)),
    ]
    for n, text in enumerate(texts):
        safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        lines = " ".join(f"({safe}) Tj 0 -14 Td" for _ in range(lines_per_page))
        stream = f"BT /F1 12 Tf 72 720 Td {lines} ET".encode()
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (font, 4 + 2 * n)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
