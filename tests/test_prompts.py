"""/prompt's pure parts: argument text, checks, prompt text, autocomplete choices."""

from __future__ import annotations

import mcp_types as types
import pytest

from bot.discord.commands.prompt import argument_choices, prompt_choices
from bot.tools.mcp_prompts import (
    PromptError,
    PromptInfo,
    check_arguments,
    parse_arguments,
    prompt_text,
)

ARGS = PromptInfo(
    "everything",
    "args-prompt",
    "A prompt with two arguments",
    (
        types.PromptArgument(name="city", required=True),
        types.PromptArgument(name="state", required=False),
    ),
)


def test_parse_and_check_arguments() -> None:
    assert parse_arguments("city=Paris; state = Île-de-France ") == {
        "city": "Paris",
        "state": "Île-de-France",
    }
    assert parse_arguments("q=a=b") == {"q": "a=b"}
    assert parse_arguments(None) == {}
    with pytest.raises(PromptError, match="not `key=value`"):
        parse_arguments("city")
    check_arguments(ARGS, {"city": "Paris"})
    with pytest.raises(PromptError, match="needs `city=…`"):
        check_arguments(ARGS, {"state": "x"})
    with pytest.raises(PromptError, match="no argument town"):
        check_arguments(ARGS, {"city": "x", "town": "y"})


def test_prompt_text_keeps_resources_and_roles() -> None:
    result = types.GetPromptResult(
        messages=[
            types.PromptMessage(role="user", content=types.TextContent(type="text", text="Hi")),
            types.PromptMessage(
                role="assistant",
                content=types.EmbeddedResource(
                    type="resource",
                    resource=types.TextResourceContents(uri="test://a", text="file body"),
                ),
            ),
        ]
    )
    text = prompt_text(result)
    assert text.startswith("user: Hi") and "assistant: [resource test://a]\nfile body" in text


def test_autocomplete_choices() -> None:
    other = PromptInfo("srv", "simple-prompt", "", ())
    choices = prompt_choices([ARGS, other], "ARGS")
    assert [c.value for c in choices] == ["everything/args-prompt"]
    assert choices[0].name == "everything/args-prompt — A prompt with two arguments"
    assert [c.value for c in argument_choices(ARGS, "", [])] == ["city=", "state="]
    assert [c.value for c in argument_choices(ARGS, "city=Paris; s", [])] == [
        "city=Paris; s",
        "city=Paris; state=",
    ]
    completed = argument_choices(ARGS, "city=Pa", ["Paris", "Pamplona"])
    assert [c.value for c in completed] == ["city=Pa", "city=Paris", "city=Pamplona"]
