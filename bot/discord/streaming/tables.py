"""Discord shows markdown tables as raw pipes: this turns them into aligned monospace tables."""

from __future__ import annotations

import re

from wcwidth import wcswidth

from bot.discord.streaming.split import FENCE_RE

__all__ = ["MAX_TABLE_WIDTH", "render_tables"]

# A phone shows about this many monospace cells in a code block before it scrolls sideways.
MAX_TABLE_WIDTH = 60

_PIPE = re.compile(r"(?<!\\)\|")
_DELIMITER_CELL = re.compile(r"^:?-+:?$")
_PARTIAL_DELIMITER = re.compile(r"^[\s|:-]*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def render_tables(text: str) -> str:
    """`text` with each GitHub-style table (header row, delimiter row, rows) shown as Discord
    can show it: a code block of padded columns, or, over MAX_TABLE_WIDTH cells wide, one
    `Name: value` block per row. Everything else, tables in code fences included, is kept.

    `text` may be an answer still streaming: a delimiter row that is only half there already
    makes its table (the raw delimiter row is never shown), and a half row is a row so far."""
    if "|" not in text:
        return text
    lines = text.split("\n")
    out: list[str] = []
    fence: str | None = None  # the closer of the code block we are in
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = FENCE_RE.match(line)
        if fence is not None:
            if marker and marker["fence"].startswith(fence) and not marker["info"].strip():
                fence = None
        elif marker and not (marker["fence"][0] == "`" and "`" in marker["info"]):
            fence = marker["fence"]
        elif i + 1 < len(lines) and _is_row(line):
            header = _cells(line)
            last = i + 1 == len(lines) - 1
            aligns = _delimiter(lines[i + 1], len(header), partial=last)
            if aligns is not None:
                end = i + 2
                while end < len(lines) and _is_row(lines[end]):
                    end += 1
                rows = [_cells(row) for row in lines[i + 2 : end]]
                out.append(_table(header, aligns, rows))
                i = end
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _is_row(line: str) -> bool:
    # Four spaces of indentation make indented code, not a table.
    return bool(line.strip()) and len(line) - len(line.lstrip(" ")) < 4 and bool(_PIPE.search(line))


def _cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _PIPE.split(body)]


def _delimiter(line: str, columns: int, *, partial: bool) -> list[str] | None:
    """The columns' alignments if `line` is the delimiter row of a table of `columns` columns;
    with `partial` (the line is still being written) a beginning of one counts too."""
    if partial:
        if not _PARTIAL_DELIMITER.match(line) or line.count("|") + line.count("-") == 0:
            return None
        cells = _cells(line)
        if len(cells) > columns:
            return None
        return [_align(cell) for cell in cells] + ["left"] * (columns - len(cells))
    cells = _cells(line)
    if len(cells) != columns or not all(_DELIMITER_CELL.match(cell) for cell in cells):
        return None
    return [_align(cell) for cell in cells]


def _align(cell: str) -> str:
    if cell.endswith(":"):
        return "center" if cell.startswith(":") else "right"
    return "left"


def _width(text: str) -> int:
    width = wcswidth(text)
    return width if width >= 0 else len(text)  # control characters: count them as one each


def _plain(cell: str) -> str:
    """A cell as a code block can show it: no markdown that would show as symbols."""
    return _BOLD.sub(r"\1", _CODE_SPAN.sub(lambda m: m.group(2).strip(), cell))


def _table(header: list[str], aligns: list[str], rows: list[list[str]]) -> str:
    columns = len(header)
    rows = [(row + [""] * columns)[:columns] for row in rows]
    plain = [[_plain(cell) for cell in row] for row in [header, *rows]]
    widths = [max(_width(row[c]) for row in plain) for c in range(columns)]
    if sum(widths) + 3 * (columns - 1) > MAX_TABLE_WIDTH:
        return _row_blocks(header, rows)
    lines = [_line(plain[0], widths, aligns)]
    lines.append("-+-".join("-" * w for w in widths))
    lines.extend(_line(row, widths, aligns) for row in plain[1:])
    return "```\n" + "\n".join(lines) + "\n```"


def _line(cells: list[str], widths: list[int], aligns: list[str]) -> str:
    padded = []
    for cell, width, align in zip(cells, widths, aligns, strict=True):
        room = width - _width(cell)
        if align == "right":
            padded.append(" " * room + cell)
        elif align == "center":
            padded.append(" " * (room // 2) + cell + " " * (room - room // 2))
        else:
            padded.append(cell + " " * room)
    return " | ".join(padded).rstrip()


def _row_blocks(header: list[str], rows: list[list[str]]) -> str:
    # Outside a code block the cells keep their markdown; a blank line lets a split fall
    # between rows.
    names = [_plain(name) or f"Column {n}" for n, name in enumerate(header, 1)]
    blocks = [
        "\n".join(f"{name}: {cell}" for name, cell in zip(names, row, strict=True) if cell)
        for row in rows
    ]
    return "\n\n".join(block for block in blocks if block)
