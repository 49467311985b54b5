"""Elicitation forms: schema to pages of fields, typed checks, the broker's outcomes."""

from __future__ import annotations

import asyncio

from bot.core.elicitation import (
    PAGE_SIZE,
    Answer,
    ElicitationBroker,
    pages,
    parse_schema,
    validate,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "check": {"type": "boolean", "title": "Agree"},
        "integer": {"type": "integer", "minimum": 1, "maximum": 100, "default": 42},
        "email": {"type": "string", "format": "email"},
        "friend": {"type": "string", "enum": ["Monica", "Joey"]},
        "hero": {
            "type": "string",
            "oneOf": [
                {"const": "hero-1", "title": "Superman"},
                {"const": "hero-2", "title": "Flash"},
            ],
        },
        "fish": {"type": "array", "items": {"anyOf": [{"const": "f1", "title": "Tuna"}]}},
        "name": {"type": "string", "title": "Name"},
    },
    "required": ["name"],
}


def test_required_fields_come_first_and_pages_hold_five() -> None:
    fields = parse_schema(SCHEMA)
    assert fields[0].name == "name" and fields[0].required
    kinds = {f.name: f.kind for f in fields}
    assert kinds == {
        "name": "string",
        "check": "boolean",
        "integer": "integer",
        "email": "string",
        "friend": "enum",
        "hero": "enum",
        "fish": "multi",
    }
    split = pages(fields)
    assert [len(p) for p in split] == [PAGE_SIZE, 2]
    assert "default 42" in next(f for f in fields if f.name == "integer").hint()


def test_values_are_checked_and_typed() -> None:
    fields = parse_schema(SCHEMA)
    values, problems = validate(
        fields,
        {
            "name": "Ada",
            "check": "yes",
            "integer": "7",
            "friend": "joey",
            "hero": "Superman",
            "fish": "Tuna",
            "email": "",
        },
    )
    assert problems == []
    assert values == {
        "name": "Ada",
        "check": True,
        "integer": 7,
        "friend": "Joey",
        "hero": "hero-1",
        "fish": ["f1"],
    }  # the empty optional email is left out: the server's default applies
    _, problems = validate(
        fields, {"name": "", "check": "maybe", "integer": "101", "email": "no-at", "friend": "Ross"}
    )
    assert len(problems) == 5 and "**Name** is required." in problems


async def test_broker_answers_and_times_out() -> None:
    broker = ElicitationBroker()
    asked = broker.open(requester_id=7, fields=parse_schema(SCHEMA))
    assert (
        asked.may_answer(7, False) and not asked.may_answer(8, False) and asked.may_answer(8, True)
    )
    waiter = asyncio.create_task(broker.wait(asked, timeout_s=5))
    await asyncio.sleep(0)
    assert broker.finish(asked.id, Answer("decline"))
    assert (await waiter).action == "decline"
    assert broker.get(asked.id) is None and not broker.finish(asked.id, Answer("accept", {}))

    late = broker.open(requester_id=7, fields=[])
    assert (await broker.wait(late, timeout_s=0.05)).action == "cancel"
