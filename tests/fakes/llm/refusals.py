"""Refuses requests OpenAI refuses for their shape: an unknown model, a bad tool name, a parameter
that only goes with another one. Each answer is OpenAI's status and error body.

A fake that serves any model name and any parameters lets a `/model` typo, a tool name with a dot
or a parameter sent in the wrong combination pass every test and fail on the first real request.
"""

from __future__ import annotations

import re
from typing import Any

from .items import error_body

# OpenAI's rule for function names, on both APIs.
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
TOOL_NAME_MAX = 64


def unknown_model(model: Any, served: list[str]) -> tuple[int, dict[str, Any]] | None:
    """OpenAI's 404 for a model it does not serve (or a request without one)."""
    if not isinstance(model, str) or not model:
        return 400, error_body(400, "you must provide a model parameter", param="model")
    if model in served:
        return None
    message = f"The model `{model}` does not exist or you do not have access to it."
    return 404, error_body(404, message, code="model_not_found")


def _tool_names(body: dict[str, Any], chat: bool) -> list[tuple[str, Any]]:
    """(param path, name) of every function tool, in each API's own shape."""
    names = []
    for i, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            continue  # mcp, web_search, ...: not named by the caller
        if chat:
            names.append((f"tools[{i}].function.name", (tool.get("function") or {}).get("name")))
        else:
            names.append((f"tools[{i}].name", tool.get("name")))
    return names


def shape_problem(body: dict[str, Any], *, chat: bool) -> dict[str, Any] | None:
    """OpenAI's 400 body for tool names and parameter combinations it refuses, or None."""
    for param, name in _tool_names(body, chat):
        if not isinstance(name, str) or not name:
            return error_body(400, f"Missing required parameter: '{param}'.", param=param)
        if len(name) > TOOL_NAME_MAX:
            message = (
                f"Invalid '{param}': string too long. Expected a string with maximum length "
                f"{TOOL_NAME_MAX}, but got a string with length {len(name)} instead."
            )
            return error_body(400, message, param=param, code="string_above_max_length")
        if not TOOL_NAME.match(name):
            message = (
                f"Invalid '{param}': string does not match pattern. Expected a string that "
                f"matches the pattern '^[a-zA-Z0-9_-]+$'."
            )
            return error_body(400, message, param=param, code="invalid_value")
    if body.get("stream_options") is not None and not body.get("stream"):
        message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        return error_body(400, message, param="stream_options", code="invalid_value")
    if not body.get("tools"):
        for param in ("tool_choice", "parallel_tool_calls"):
            if body.get(param) is not None:
                message = (
                    f"Invalid value for '{param}': '{param}' is only allowed when 'tools' are "
                    "specified."
                )
                return error_body(400, message, param=param, code=None)
    return None
