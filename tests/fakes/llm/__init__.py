"""Scripted OpenAI-compatible LLM server (chat completions + Responses) for mcpcord's tests."""

from .audio import Heard, duration_usage, tokens_usage
from .items import (
    Cut,
    Fault,
    Finish,
    HangUp,
    Item,
    McpApprovalRequest,
    McpCall,
    Reasoning,
    Refusal,
    Reply,
    Silent,
    Stall,
    Text,
    ToolCall,
    UsageReport,
)
from .server import Recorded, ScriptedLLM

__all__ = [
    "Cut",
    "Fault",
    "Finish",
    "HangUp",
    "Heard",
    "Item",
    "McpApprovalRequest",
    "McpCall",
    "Reasoning",
    "Refusal",
    "Recorded",
    "Reply",
    "ScriptedLLM",
    "Silent",
    "Stall",
    "Text",
    "ToolCall",
    "UsageReport",
    "duration_usage",
    "tokens_usage",
]
