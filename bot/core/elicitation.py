"""MCP elicitation: a server's question to the person who asked, as fields, answers and a broker.

The server sends a JSON schema (flat: strings, numbers, booleans, enums); the user answers in
pages of text fields (Discord modals hold five). Values are checked against the schema here,
so any front end gets the same rules. Only the requester or an admin may answer.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

PAGE_SIZE = 5  # inputs per Discord modal
_TRUE = {"yes", "y", "true", "1", "on"}
_FALSE = {"no", "n", "false", "0", "off"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Kind = Literal["string", "number", "integer", "boolean", "enum", "multi"]
Action = Literal["accept", "decline", "cancel"]


@dataclass(frozen=True)
class Field:
    name: str
    title: str
    description: str = ""
    kind: Kind = "string"
    required: bool = False
    default: Any = None
    choices: tuple[tuple[str, str], ...] = ()  # (value, label)
    minimum: float | None = None
    maximum: float | None = None
    format: str | None = None

    def hint(self) -> str:
        """A placeholder: what to type, and what applies when left empty."""
        parts = []
        if self.kind == "boolean":
            parts.append("yes or no")
        elif self.choices:
            labels = ", ".join(label for _, label in self.choices)
            parts.append(("one or more of: " if self.kind == "multi" else "one of: ") + labels)
        elif self.format:
            parts.append(self.format)
        if self.default is not None and not self.required:
            parts.append(f"default {self.default}")
        return "; ".join(parts) or self.description


def _choices(prop: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    options = prop.get("oneOf") or prop.get("anyOf")
    if isinstance(options, list):
        return tuple(
            (str(o.get("const")), str(o.get("title") or o.get("const")))
            for o in options
            if isinstance(o, dict) and "const" in o
        )
    values = prop.get("enum")
    if isinstance(values, list):
        names = prop.get("enumNames") or values
        return tuple((str(v), str(n)) for v, n in zip(values, names, strict=False))
    return ()


def parse_schema(schema: dict[str, Any]) -> list[Field]:
    """The schema's fields, required ones first (so the first page asks what is needed)."""
    required = set(schema.get("required") or [])
    fields = []
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        kind: Kind = "string"
        choices: tuple[tuple[str, str], ...] = ()
        if prop.get("type") == "array":
            kind, choices = "multi", _choices(prop.get("items") or {})
        elif choices := _choices(prop):
            kind = "enum"
        elif prop.get("type") in ("number", "integer", "boolean"):
            kind = prop["type"]
        fields.append(
            Field(
                name=name,
                title=str(prop.get("title") or name),
                description=str(prop.get("description") or ""),
                kind=kind,
                required=name in required,
                default=prop.get("default"),
                choices=choices,
                minimum=prop.get("minimum"),
                maximum=prop.get("maximum"),
                format=prop.get("format"),
            )
        )
    return sorted(fields, key=lambda f: not f.required)


def pages(fields: list[Field]) -> list[list[Field]]:
    return [fields[i : i + PAGE_SIZE] for i in range(0, len(fields), PAGE_SIZE)] or [[]]


def _choice(f: Field, text: str) -> str | None:
    for value, label in f.choices:
        if text.lower() in (value.lower(), label.lower()):
            return value
    return None


def _convert(f: Field, text: str) -> tuple[Any, str | None]:
    if f.kind == "boolean":
        if text.lower() in _TRUE:
            return True, None
        if text.lower() in _FALSE:
            return False, None
        return None, "answer yes or no"
    if f.kind == "enum":
        value = _choice(f, text)
        return (value, None) if value is not None else (None, "pick one of the listed values")
    if f.kind == "multi":
        picked = [_choice(f, t.strip()) for t in text.split(",") if t.strip()]
        if any(v is None for v in picked):
            return None, "pick from the listed values, separated by commas"
        return picked, None
    if f.kind in ("number", "integer"):
        try:
            number: float = int(text) if f.kind == "integer" else float(text)
        except ValueError:
            return None, "a whole number" if f.kind == "integer" else "a number"
        if f.minimum is not None and number < f.minimum:
            return None, f"at least {f.minimum:g}"
        if f.maximum is not None and number > f.maximum:
            return None, f"at most {f.maximum:g}"
        return number, None
    if f.format == "email" and not _EMAIL.match(text):
        return None, "an email address"
    if f.format == "date" and not _DATE.match(text):
        return None, "a date as YYYY-MM-DD"
    if f.format == "uri" and "://" not in text:
        return None, "a URL (https://…)"
    return text, None


def validate(fields: list[Field], raw: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Typed values for the fields given (empty optional ones left out), or problems to show."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for f in fields:
        text = (raw.get(f.name) or "").strip()
        if not text:
            if f.required:
                problems.append(f"**{f.title}** is required.")
            continue
        value, problem = _convert(f, text)
        if problem:
            problems.append(f"**{f.title}**: {problem}.")
        else:
            values[f.name] = value
    return values, problems


@dataclass(frozen=True)
class Answer:
    action: Action
    content: dict[str, Any] | None = None


@dataclass
class Pending:
    """One open question: who may answer, its pages, and what was filled in so far."""

    id: str
    requester_id: int
    fields: list[Field]
    url: str | None = None
    page: int = 0
    values: dict[str, Any] = field(default_factory=dict)
    drafts: dict[str, str] = field(default_factory=dict)  # typed text, shown again on a retry
    answer: asyncio.Future[Answer] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def pages(self) -> list[list[Field]]:
        return pages(self.fields)

    def may_answer(self, user_id: int, is_admin: bool) -> bool:
        return is_admin or user_id == self.requester_id


class ElicitationBroker:
    """Open questions by id (in memory: a question cannot outlive the MCP call that asked it).

    Ids are random, not counted: a button left from an earlier process must never name a
    question of this one."""

    def __init__(self) -> None:
        self._open: dict[str, Pending] = {}

    def open(self, requester_id: int, fields: list[Field], url: str | None = None) -> Pending:
        # 16 characters of [A-Za-z0-9_-], as every id inside a custom_id.
        pending = Pending(
            id=secrets.token_urlsafe(12), requester_id=requester_id, fields=fields, url=url
        )
        self._open[pending.id] = pending
        return pending

    def get(self, elicitation_id: str) -> Pending | None:
        return self._open.get(elicitation_id)

    def finish(self, elicitation_id: str, answer: Answer) -> bool:
        pending = self._open.pop(elicitation_id, None)
        if pending is None or pending.answer.done():
            return False
        pending.answer.set_result(answer)
        return True

    async def wait(self, pending: Pending, timeout_s: float) -> Answer:
        try:
            return await asyncio.wait_for(asyncio.shield(pending.answer), timeout_s)
        except TimeoutError:
            self.finish(pending.id, Answer("cancel"))
            return pending.answer.result()
        finally:
            self._open.pop(pending.id, None)
