"""What a turn's reply shows, built from its events: text, tool lines, notices and errors."""

from __future__ import annotations

from dataclasses import dataclass, field

from discord.utils import escape_markdown, escape_mentions

from bot.core.events import (
    ApprovalRequested,
    ApprovalResolved,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    ToolProgress,
    ToolUserContent,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
)
from bot.discord.streaming.tables import render_tables

STREAMING_INDICATOR = " ▌"
STOPPED_LINE = "-# ⏹ stopped by {name}"


@dataclass
class _Text:
    pieces: list[str] = field(default_factory=list)

    def render(self) -> str:
        # Shown, not stored: the conversation keeps the model's own markdown.
        return render_tables("".join(self.pieces))


@dataclass
class _Line:
    text: str

    def render(self) -> str:
        return self.text


def _progress(event: ToolProgress) -> str:
    shown = f"{event.progress:g}/{event.total:g}" if event.total else f"{event.progress:g}"
    return f"{shown} · {event.message}" if event.message else shown


def _label(server: str, tool: str) -> str:
    return f"`{server}.{tool}`" if server else f"`{tool}`"


def usage_line(event: TurnCompleted) -> str:
    """`-# 1,234 in · 56 out · $0.0012 · 3.4 s`: the cost only when the model's price is known."""
    parts = [f"{event.usage.input_tokens:,} in", f"{event.usage.output_tokens:,} out"]
    if event.cost_usd is not None:
        parts.append(f"${event.cost_usd:.4f}" if event.cost_usd < 1 else f"${event.cost_usd:,.2f}")
    if event.seconds is not None:
        parts.append(f"{event.seconds:.1f} s")
    return "-# " + " · ".join(parts)


class Transcript:
    """An ordered list of blocks. Text deltas append in O(1); tool lines update in place."""

    def __init__(self, usage_footer: bool = False) -> None:
        self._usage_footer = usage_footer  # discord.usage_footer
        self._footer = ""  # shown last, once the answer is complete
        self._blocks: list[_Text | _Line] = []
        self._tool_lines: dict[str, _Line] = {}
        self._sealed = 0  # text after this many blocks starts a new block

    def apply(self, event: TurnEvent) -> bool:
        """Fold one event in; True if what the reply shows changed."""
        match event:
            case TextDelta(text=text):
                if not text:
                    return False
                last = self._blocks[-1] if len(self._blocks) > self._sealed else None
                if not isinstance(last, _Text):
                    last = _Text()
                    self._blocks.append(last)
                last.pieces.append(text)
            case ApprovalRequested(call_id=call_id, server=server, tool=tool):
                self._tool_line(call_id, f"-# 🔐 {_label(server, tool)} waiting for approval…")
            case ApprovalResolved(call_id=call_id, approved=True):
                line = self._tool_lines.get(call_id)
                if line:
                    line.text = line.text.replace("waiting for approval…", "approved")
            case ApprovalResolved(call_id=call_id, status=status):
                # A tool's ToolCallFinished then says "not run"; a server's sampling request
                # has no such event, so the line says it here.
                line = self._tool_lines.get(call_id)
                if line is None or "waiting for approval…" not in line.text:
                    return False
                words = "not run (stopped)" if status == "withdrawn" else "not approved"
                line.text = line.text.replace("waiting for approval…", words)
            case ToolCallStarted(call_id=call_id, server=server, tool=tool):
                self._tool_line(call_id, f"-# 🔧 {_label(server, tool)} running…")
            case ToolCallFinished(call_id=call_id, server=server, tool=tool, outcome=outcome):
                words = {
                    "done": "✅ {label} done",
                    "failed": "⚠️ {label} failed",
                    "denied": "🚫 {label} not run (not approved)",
                    "lost": "⚠️ {label} may have run; its result was lost in a restart",
                }[outcome]
                self._tool_line(call_id, "-# " + words.format(label=_label(server, tool)))
            case ToolProgress(call_id=call_id) if call_id in self._tool_lines:
                line = self._tool_lines[call_id]
                if "running…" not in line.text:
                    return False
                text = line.text.split(" running…", 1)[0] + " running… " + _progress(event)
                if text == line.text:
                    return False
                line.text = text
            case ToolUserContent(notes=notes, notes_file=notes_file) if notes or notes_file:
                # Content a server meant for the user, not the model: shown as it came, within
                # the cap core/tool_updates.py puts on it.
                for note in notes:
                    self._blocks.append(_Line(note))
                if notes_file:
                    self._blocks.append(
                        _Line(f"-# ✂️ The tool's notes were cut; more in `{notes_file}`.")
                    )
            case Notice(text=text, icon=icon):
                self._blocks.append(_Line(f"-# {icon} {text}" if icon else f"-# {text}"))
            case TurnFailed(message=message):
                self._blocks.append(_Line(f"⚠️ {message}"))
            case TurnCompleted(stopped_by=None) if self._usage_footer:
                self._footer = usage_line(event)
            case TurnCompleted(stopped_by=str() as name):
                # A name is shown, never pinged (and cannot break the small line's markdown).
                shown = escape_mentions(escape_markdown(" ".join(name.split())))
                self._blocks.append(_Line(STOPPED_LINE.format(name=shown)))
            case _:
                return False
        return True

    def seal(self) -> int:
        """Later text goes into new blocks; returns where they start."""
        self._sealed = len(self._blocks)
        return self._sealed

    def _tool_line(self, call_id: str, text: str) -> None:
        line = self._tool_lines.get(call_id)
        if line is None:
            line = self._tool_lines[call_id] = _Line(text)
            self._blocks.append(line)
        else:
            line.text = text

    def __len__(self) -> int:
        """The number of blocks; `render(start)` shows the blocks from a position on."""
        return len(self._blocks)

    def render(self, start: int = 0, end: int | None = None) -> str:
        """The blocks from `start` to `end`; to the end: with the usage footer, once known."""
        out: list[str] = []
        footer = [_Line(self._footer)] if end is None and self._footer else []
        for block in [*self._blocks[start:end], *footer]:
            text = block.render()
            if out and not out[-1].endswith("\n"):
                out.append("\n")
            out.append(text)
        return "".join(out).strip()
