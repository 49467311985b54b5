"""MCP prompt templates: listing them, checking arguments, completing them, and fetching the text."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import mcp_types as types
from mcp import Client

from bot.tools.mcp_format import describe_error, truncate

MAX_PROMPT_CHARS = 20_000


@dataclass(frozen=True)
class PromptInfo:
    server: str
    name: str
    description: str
    arguments: tuple[types.PromptArgument, ...]

    @property
    def full_name(self) -> str:
        return f"{self.server}/{self.name}"

    @property
    def required(self) -> list[str]:
        return [a.name for a in self.arguments if a.required]


class PromptError(Exception):
    """A prompt cannot be used as asked, said in one plain line for the user."""


def parse_arguments(text: str | None) -> dict[str, str]:
    """`key=value; key=value` (values may hold `=`, not `;`)."""
    values: dict[str, str] = {}
    for item in (text or "").split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PromptError(f"`{item.strip()}` is not `key=value`.")
        values[key.strip()] = value.strip()
    return values


def check_arguments(prompt: PromptInfo, values: dict[str, str]) -> None:
    known = {a.name for a in prompt.arguments}
    unknown = sorted(set(values) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise PromptError(
            f"`{prompt.full_name}` has no argument {', '.join(unknown)} (it takes: {allowed})."
        )
    missing = [name for name in prompt.required if not values.get(name)]
    if missing:
        raise PromptError(f"`{prompt.full_name}` needs {', '.join(f'`{m}=…`' for m in missing)}.")


def prompt_text(result: types.GetPromptResult) -> str:
    """The prompt's messages as one user text: text and embedded text resources; other
    content is named. Messages of more than one role keep their role as a label."""
    roles = {m.role for m in result.messages}
    parts: list[str] = []
    for message in result.messages:
        block = message.content
        if isinstance(block, types.TextContent):
            text = block.text
        elif isinstance(block, types.EmbeddedResource):
            res = block.resource
            if isinstance(res, types.TextResourceContents):
                text = f"[resource {res.uri}]\n{res.text}"
            else:
                text = f"[binary resource {res.uri} ({res.mime_type or 'unknown type'})]"
        elif isinstance(block, types.ResourceLink):
            text = f"[resource link: {block.name} <{block.uri}>]"
        else:
            text = f"[{block.type} content]"
        parts.append(f"{message.role}: {text}" if len(roles) > 1 else text)
    return truncate("\n\n".join(parts), MAX_PROMPT_CHARS)


async def fetch(
    client: Client, prompt: PromptInfo, values: dict[str, str], timeout_s: float
) -> str:
    try:
        with anyio.fail_after(timeout_s):
            result = await client.get_prompt(prompt.name, values)
    except TimeoutError:
        raise PromptError(f"`{prompt.full_name}` did not answer within {timeout_s:g} s.") from None
    except Exception as exc:
        raise PromptError(f"`{prompt.full_name}` failed: {describe_error(exc)}") from None
    return prompt_text(result)


async def complete(
    client: Client, prompt: PromptInfo, argument: str, value: str, given: dict[str, str]
) -> list[str]:
    """The server's completions for one argument ([] when it offers none or fails)."""
    if client.server_capabilities.completions is None:
        return []
    try:
        with anyio.fail_after(2):  # autocomplete must answer Discord within 3 s
            result = await client.complete(
                types.PromptReference(type="ref/prompt", name=prompt.name),
                {"name": argument, "value": value},
                context_arguments=given or None,
            )
    except Exception:
        return []
    return list(result.completion.values)
