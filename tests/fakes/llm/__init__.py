"""Scripted OpenAI-compatible LLM server (chat completions + Responses) for mcpcord's tests."""

from .items import Cut, Fault, Item, McpApprovalRequest, McpCall, Reply, Stall, Text, ToolCall
from .server import Recorded, ScriptedLLM

__all__ = [
    "Cut",
    "Fault",
    "Item",
    "McpApprovalRequest",
    "McpCall",
    "Recorded",
    "Reply",
    "ScriptedLLM",
    "Stall",
    "Text",
    "ToolCall",
]
