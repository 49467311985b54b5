"""Writes docs/config.md, the configuration reference, from the Settings model itself.

Run `python -m bot.ops.config_docs` after adding or changing a key; tests/test_config_docs.py
fails while the file is out of date.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from bot.config import Settings
from bot.ops.reload import split_changes

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "config.md"

HEADER = """\
# Configuration reference

Generated from the Settings model in `bot/config/` by `python -m bot.ops.config_docs`; do not
edit by hand ([`config.yaml`](../config.yaml) is the commented example).

Sources, later wins: defaults < `config.yaml` (path from `BOT_CONFIG`) < `.env` < environment.
Every key can be set from the environment with `__` between levels, in capitals: `llm.model` is
`LLM__MODEL`. Secrets are read from the environment or `.env` only. `<name>` stands for a name
you choose (an MCP server's), `<id>` for a Discord id (a channel's). Keys marked *reload* change on SIGHUP or `python -m bot reload`;
the others need a restart.
"""


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [type_name(a) for a in args if a is not type(None)]
        suffix = " \\| null" if type(None) in args else ""
        return " \\| ".join(parts) + suffix
    if origin is list:
        return f"list[{type_name(args[0])}]"
    if origin is dict:
        return f"map[{type_name(args[0])}, {type_name(args[1])}]"
    if annotation is SecretStr:
        return "secret"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"`{annotation.__name__}`"
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return ""
    return f"`{json.dumps(value)}`"


def section_of(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """(the model to describe key by key, the placeholder it sits under in a map or list, or "")."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item, "[]"
    if typing.get_origin(annotation) is dict:
        key, value = typing.get_args(annotation)
        if isinstance(value, type) and issubclass(value, BaseModel):
            return value, "<id>" if key is int else "<name>"
    return None, ""


def row(key: str, field: FieldInfo) -> str:
    applies = "reload" if split_changes([key])[0] else "restart"
    description = (field.description or "").replace("\n", " ").replace("|", "\\|")
    return (
        f"| `{key}` | {type_name(field.annotation)} | {default_text(field)} | {applies} | "
        f"{description} |"
    )


def rows(model: type[BaseModel], prefix: str) -> list[str]:
    out: list[str] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        section, named = section_of(field.annotation)
        if section is not None:
            inner = {"": f"{key}.", "[]": f"{key}[]."}.get(named, f"{key}.{named}.")
            nested.append((inner, section))
            if not named:
                continue
        out.append(row(key, field))
    for key, section in nested:
        out += rows(section, key)
    return out


def render() -> str:
    lines = [HEADER]
    for name, field in Settings.model_fields.items():
        section, _ = section_of(field.annotation)
        if section is None:
            continue
        lines += [f"## `{name}`", "", field.description or "", ""]
        lines += ["| key | type | default | applies | description |", "|---|---|---|---|---|"]
        lines += rows(section, f"{name}.")
        lines.append("")
    top = [(n, f) for n, f in Settings.model_fields.items() if section_of(f.annotation)[0] is None]
    lines += ["## Top level", ""]
    lines += ["| key | type | default | applies | description |", "|---|---|---|---|---|"]
    lines += [row(name, field) for name, field in top]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    DOC_PATH.parent.mkdir(exist_ok=True)
    DOC_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
