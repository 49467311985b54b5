"""Discord caps a message at 2000 characters; this splits answers without breaking code blocks."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

__all__ = [
    "DISCORD_LIMIT",
    "FENCE_RE",
    "Part",
    "closing_fence",
    "open_fence_at_end",
    "split_message",
    "split_with_spans",
]

# Discord counts code points, as len() does (discord/discord-api-docs#1315).
DISCORD_LIMIT = 2000

# A fence line as CommonMark has it: at most three spaces of indentation (four would make it
# indented code), then three or more backticks or tildes, then an info string. It is anchored to
# a whole line, so backticks in the middle of a line never open or close a block.
FENCE_RE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$", re.MULTILINE)

# A whitespace run holding a newline: a line break, or a paragraph break if it holds two.
_BREAK_RE = re.compile(r"[^\S\n]*\n\s*")
# Whitespace between two words of one line.
_SPACE_RE = re.compile(r"(?<=\S)[^\S\n]+(?=\S)")
_SPACES_RE = re.compile(r"\s+")
_FENCE_STARTS = ("```", "~~~")


@dataclass(frozen=True, slots=True)
class Part:
    """One message: `text[start:end]` of the original, plus the fence lines added around it.

    `text` is `reopened_fence + "\\n"` (when set), then the original slice, then `"\\n"` and
    a closing fence line (when `closed_fence`).
    """

    text: str
    start: int
    end: int
    reopened_fence: str | None
    closed_fence: bool


def split_message(text: str, limit: int = DISCORD_LIMIT) -> list[str]:
    """The message texts of `split_with_spans(text, limit)`."""
    return [part.text for part in split_with_spans(text, limit)]


def split_with_spans(text: str, limit: int = DISCORD_LIMIT) -> list[Part]:
    """Split `text` into parts of at most `limit` characters each.

    A part ends at the last paragraph break (blank line) that fits, else the last line break,
    else the last space between words; a word is cut only when no break fits (a word longer
    than the room left). A fenced code block still open where a part ends is closed by an added
    last line (the opening fence's character, as many times as in the opening run: ``` or ~~~
    or longer) and reopened at the start of the next part with an added copy of its opening
    line (indentation and language kept). Added lines count toward `limit`.

    Contract, with `parts = split_with_spans(text, limit)`:

    - `0 < len(p.text) <= limit` and `p.text` is not whitespace only;
    - `p.text == head + text[p.start:p.end] + tail`, where `head` is `p.reopened_fence + "\\n"`
      if `p.reopened_fence` else `""`, and `tail` is `"\\n"` plus the closing fence line if
      `p.closed_fence` else `""`. So dropping the first line of a reopened part and the last
      line of a closed part gives back the original slice;
    - `p.start < p.end <= q.start` for consecutive parts `p, q`, and the uncovered stretches
      `text[:parts[0].start]`, `text[p.end:q.start]` and `text[parts[-1].end:]` are whitespace
      only. Hence `text` equals the concatenation of the slices with those stretches put back.

    What a cut drops is the whitespace run it is made in (trailing spaces, the newlines, blank
    lines), except the next line's indentation, which stays with the next part because it
    matters in code and nested lists; a hard cut inside a word drops nothing. The whitespace
    around the whole text is dropped the same way, so a whitespace-only text gives `[]`.

    Fences stay balanced in every part as long as `limit` has room for a block's opening
    line, a closing line and some content; only absurdly small limits fall back to plain cuts
    (`reopened_fence=None`, `closed_fence=False`). A block left open at the end of `text` (a
    streaming preview) is closed in the last part too.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return _Splitter(text, limit).split()


def open_fence_at_end(text: str) -> str | None:
    """The opening line (trailing whitespace removed) of a code block still open at the end of
    `text`, or None. A streaming preview appends `"\\n" + closing_fence(line)` to render it."""
    blocks = _scan_blocks(text)
    if blocks and not blocks[-1].closed:
        return blocks[-1].line
    return None


def closing_fence(fence_line: str) -> str:
    """The line that closes the block opened by `fence_line` (e.g. "```python" -> "```")."""
    run = fence_line.lstrip(" ")
    char = run[:1]
    return char * (len(run) - len(run.lstrip(char))) if char else ""


@dataclass(frozen=True, slots=True)
class _Block:
    """One fenced code block; positions index the text it was found in."""

    open_start: int
    open_stop: int  # end of the opening line without trailing whitespace
    close_start: int  # len(text) when the block is never closed
    close_stop: int
    line: str  # the opening line, trailing whitespace removed
    closer: str
    closed: bool


def _scan_blocks(text: str) -> list[_Block]:
    blocks: list[_Block] = []
    opener: re.Match[str] | None = None
    for m in FENCE_RE.finditer(text):
        if opener is None:
            if _acts_as_fence(m, None):
                opener = m
        elif _acts_as_fence(m, opener["fence"]):
            close_stop = m.start() + len(m[0].rstrip())
            blocks.append(_block(opener, m.start(), close_stop, closed=True))
            opener = None
    if opener is not None:
        blocks.append(_block(opener, len(text), len(text), closed=False))
    return blocks


def _block(opener: re.Match[str], close_start: int, close_stop: int, *, closed: bool) -> _Block:
    line = opener[0].rstrip()
    return _Block(
        open_start=opener.start(),
        open_stop=opener.start() + len(line),
        close_start=close_start,
        close_stop=close_stop,
        line=line,
        closer=opener["fence"],
        closed=closed,
    )


class _Fences:
    """The blocks of one text, indexed so that position queries cost a bisection."""

    def __init__(self, text: str) -> None:
        self.blocks = _scan_blocks(text)
        self._starts = [b.open_start for b in self.blocks]

    def _at_or_before(self, pos: int) -> _Block | None:
        i = bisect_right(self._starts, pos) - 1
        return self.blocks[i] if i >= 0 else None

    def _before(self, pos: int) -> _Block | None:
        i = bisect_left(self._starts, pos) - 1
        return self.blocks[i] if i >= 0 else None

    def open_at_start(self, pos: int) -> _Block | None:
        """The block a part starting at `pos` (a line start or a word) begins inside."""
        b = self._at_or_before(pos)
        return b if b is not None and b.open_stop < pos <= b.close_start else None

    def open_at_end(self, end: int) -> _Block | None:
        """The block a part ending at `end` (just after a non-space) leaves open."""
        b = self._before(end)
        return b if b is not None and b.open_stop <= end <= b.close_start else None

    def ends_on_opener(self, end: int) -> bool:
        # A part ending right after an opening line would show an empty block.
        b = self._before(end)
        return b is not None and end == b.open_stop

    def starts_on_closer(self, pos: int) -> bool:
        # A part starting at a closing line would reopen a block only to close it.
        b = self._at_or_before(pos)
        return b is not None and b.closed and pos == b.close_start

    def in_fence_line(self, pos: int) -> bool:
        b = self._before(pos)
        return b is not None and (
            pos < b.open_stop or (b.closed and b.close_start < pos < b.close_stop)
        )

    def retreat(self, end: int) -> int:
        """`end` moved to the start of a fence line it would cut (or leave bare at the end)."""
        b = self._before(end)
        if b is None:
            return end
        if end <= b.open_stop:
            return b.open_start
        if b.closed and b.close_start < end < b.close_stop:
            return b.close_start
        return end


class _Splitter:
    def __init__(self, text: str, limit: int) -> None:
        self.text = text
        self.limit = limit
        self.stop = len(text.rstrip())
        self.fences = _Fences(text)
        # Cut candidates are found only once a text turns out not to fit: the common streaming
        # case (a short answer) never pays for them.
        self._breaks: tuple[list[int], list[int], list[bool]] | None = None
        self._spaces: tuple[list[int], list[int]] | None = None

    def split(self) -> list[Part]:
        text = self.text
        # The first line keeps its indentation, like any line after a cut.
        pos = text.rfind("\n", 0, _space_end(text, 0)) + 1
        parts: list[Part] = []
        while pos < self.stop:
            part, pos = self._next_part(pos)
            parts.append(part)
        return parts

    def _next_part(self, pos: int) -> tuple[Part, int]:
        opened = self.fences.open_at_start(pos)
        head = len(opened.line) + 1 if opened else 0
        if self._fits(pos, head, self.stop):
            return self._part(pos, self.stop, opened), self.stop
        cut = (
            self._break_cut(pos, head, paragraph=True, clean=True)
            or self._break_cut(pos, head, paragraph=False, clean=True)
            or self._space_cut(pos, head)
            or self._break_cut(pos, head, paragraph=False, clean=False)
            or self._hard_cut(pos, head)
        )
        if cut is None:
            return self._plain_cut(pos)
        end, nxt = cut
        return self._part(pos, end, opened), nxt

    def _fits(self, pos: int, head: int, end: int) -> bool:
        closing = self.fences.open_at_end(end)
        tail = len(closing.closer) + 1 if closing else 0
        return end - pos + head + tail <= self.limit

    def _part(self, pos: int, end: int, opened: _Block | None) -> Part:
        closing = self.fences.open_at_end(end)
        body = self.text[pos:end]
        if opened:
            body = f"{opened.line}\n{body}"
        if closing:
            body = f"{body}\n{closing.closer}"
        return Part(
            text=body,
            start=pos,
            end=end,
            reopened_fence=opened.line if opened else None,
            closed_fence=closing is not None,
        )

    def _break_cut(
        self, pos: int, head: int, *, paragraph: bool, clean: bool
    ) -> tuple[int, int] | None:
        ends, nexts, paragraphs = self._get_breaks()
        i = bisect_right(ends, pos + self.limit - head) - 1
        while i >= 0 and ends[i] > pos:
            end, nxt = ends[i], nexts[i]
            if (
                (paragraphs[i] or not paragraph)
                and not self.fences.ends_on_opener(end)
                and not (clean and self.fences.starts_on_closer(nxt))
                and self._fits(pos, head, end)
            ):
                return end, nxt
            i -= 1
        return None

    def _space_cut(self, pos: int, head: int) -> tuple[int, int] | None:
        ends, nexts = self._get_spaces()
        i = bisect_right(ends, pos + self.limit - head) - 1
        while i >= 0 and ends[i] > pos:
            end, nxt = ends[i], nexts[i]
            if (
                not self.fences.in_fence_line(end)
                and not self._fence_like_halves(end, nxt)
                and self._fits(pos, head, end)
            ):
                return end, nxt
            i -= 1
        return None

    def _hard_cut(self, pos: int, head: int) -> tuple[int, int] | None:
        # Only reached when a word (or an unbreakable stretch) is longer than the room left.
        text = self.text
        end = min(pos + self.limit - head, self.stop)
        while end > pos:
            moved = _rstrip(text, self.fences.retreat(end), pos)
            if moved != end:
                end = moved
                continue
            nxt = _skip_gap(text, end)
            if not self._fence_like_halves(end, nxt) and self._fits(pos, head, end):
                return end, nxt
            end -= 1
        return None

    def _plain_cut(self, pos: int) -> tuple[Part, int]:
        # The limit cannot hold a fence line twice plus content: give up on balancing fences
        # rather than loop or overflow.
        text = self.text
        start = _space_end(text, pos)
        end = _rstrip(text, min(start + self.limit, self.stop), start)
        part = Part(
            text=text[start:end], start=start, end=end, reopened_fence=None, closed_fence=False
        )
        return part, _skip_gap(text, end)

    def _fence_like_halves(self, end: int, nxt: int) -> bool:
        # Cutting inside a line makes two new lines. The original line was no fence line (those
        # are never cut), but a half of it may read as one where it lands: "``` foo" in prose
        # would open a block, a bare "```" inside one would close it, unbalancing the parts.
        text = self.text
        if text.find("\n", end, nxt) != -1:
            return False
        line_start = text.rfind("\n", 0, end) + 1
        head = FENCE_RE.match(text, line_start, end)
        if head and _acts_as_fence(head, _closer(self.fences.open_at_end(end))):
            return True
        if not text.startswith(_FENCE_STARTS, nxt):
            return False
        line_end = text.find("\n", nxt)
        tail = FENCE_RE.match(text[nxt : line_end if line_end != -1 else len(text)])
        return tail is not None and _acts_as_fence(tail, _closer(self.fences.open_at_start(nxt)))

    def _get_breaks(self) -> tuple[list[int], list[int], list[bool]]:
        if self._breaks is None:
            text = self.text
            ends: list[int] = []
            nexts: list[int] = []
            paragraphs: list[bool] = []
            for m in _BREAK_RE.finditer(text):
                a, b = m.span()
                if a == 0 or b == len(text):
                    continue  # the whitespace around the whole text is no cut
                last = text.rfind("\n", a, b)
                ends.append(a)
                nexts.append(last + 1)
                paragraphs.append(text.find("\n", a, last) != -1)
            self._breaks = ends, nexts, paragraphs
        return self._breaks

    def _get_spaces(self) -> tuple[list[int], list[int]]:
        if self._spaces is None:
            spans = [m.span() for m in _SPACE_RE.finditer(self.text)]
            self._spaces = [a for a, _ in spans], [b for _, b in spans]
        return self._spaces


def _acts_as_fence(line: re.Match[str], closer: str | None) -> bool:
    """Whether a FENCE_RE line closes the block `closer` belongs to, or opens one if None."""
    if closer is not None:
        # Same character, at least as long, nothing after it.
        return line["fence"].startswith(closer) and not line["info"].strip()
    # CommonMark: a backtick info string may not hold backticks; such a line is inline code
    # (```like this```), not a block.
    return not (line["fence"][0] == "`" and "`" in line["info"])


def _closer(block: _Block | None) -> str | None:
    return block.closer if block else None


def _rstrip(text: str, end: int, floor: int) -> int:
    while end > floor and text[end - 1].isspace():
        end -= 1
    return end


def _space_end(text: str, pos: int) -> int:
    m = _SPACES_RE.match(text, pos)
    return m.end() if m else pos


def _skip_gap(text: str, pos: int) -> int:
    # Skip the whitespace at a cut, but give back the indentation of the line it ends on.
    stop = _space_end(text, pos)
    newline = text.rfind("\n", pos, stop)
    return newline + 1 if newline != -1 else stop
