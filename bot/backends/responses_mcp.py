"""Server-side MCP servers on the Responses API: the `mcp` tool sent, the lines their calls show."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

from bot.config import ApprovalLists, ApprovalSetting, MCPServerConfig
from bot.core.events import ToolCallFinished, ToolCallStarted, TurnEvent

log = logging.getLogger(__name__)


def mcp_tool(name: str, server: MCPServerConfig) -> dict[str, Any]:
    """A server-side MCP server as a Responses `mcp` tool."""
    tool: dict[str, Any] = {
        "type": "mcp",
        "server_label": name,
        "server_url": server.url,
        "require_approval": require_approval(server.require_approval),
    }
    denied = set(server.disallowed_tools)
    if server.allowed_tools is not None:
        tool["allowed_tools"] = [t for t in server.allowed_tools if t not in denied]
    elif denied:
        # The API has no deny list and the server's tools are unknown here: allow none rather
        # than all, since a denied tool must never run.
        log.warning(
            "MCP server %r: disallowed_tools without allowed_tools on a server_side server "
            "allows none of its tools; list the ones to offer in allowed_tools",
            name,
        )
        tool["allowed_tools"] = []
    if server.headers:
        tool["headers"] = {k: v.get_secret_value() for k, v in server.headers.items()}
    return tool


def require_approval(setting: ApprovalSetting) -> Any:
    if not isinstance(setting, ApprovalLists):
        return setting
    # Unlisted tools need approval (bot/core/approvals.py), which is also the API's default.
    value: dict[str, Any] = {"never": {"tool_names": list(setting.never)}}
    if setting.always:
        value["always"] = {"tool_names": list(setting.always)}
    return value


def json_object(raw: str) -> dict[str, Any]:
    """Arguments for display and approval: the JSON object, or the raw text kept visible."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {"raw": raw}
    return value if isinstance(value, dict) else {"raw": raw}


LOST_APPROVAL = (
    "Approved before the bot restarted; the request carrying that approval may already have "
    "run the tool, so it is not approved again. It may or may not have run."
)


def lost_approval(item: dict[str, Any]) -> dict[str, Any]:
    """An approval answer that may already have reached the server before a restart: sent
    again it would run the tool twice, so it goes as a refusal that says why."""
    if item.get("type") != "mcp_approval_response" or not item.get("approve"):
        return item
    return {**item, "approve": False, "reason": LOST_APPROVAL}


@dataclass
class _Call:
    call_id: str
    server: str
    tool: str
    arguments: str = ""
    shown_arguments: bool = False
    outcome: str = ""  # "" while running


class McpLines:
    """Tool lines for the calls a Responses server runs itself: "running…" as soon as the
    server starts one (`output_item.added`), the final line when `mcp_call.completed` or
    `failed` arrives, and the item with its output only adds what those did not say."""

    def __init__(self) -> None:
        self._calls: dict[str, _Call] = {}

    def running(self, item_id: str, call_id: str, item: Any) -> list[TurnEvent]:
        name = _field(item, "name")
        if not name or item_id in self._calls:
            return []
        call = _Call(call_id, _field(item, "server_label"), name, _field(item, "arguments"))
        self._calls[item_id] = call
        return [self._started(call)]

    def arguments(self, item_id: str, arguments: Any) -> list[TurnEvent]:
        """`mcp_call_arguments.done`: the start again, now with its arguments (the line stays
        "running…"; the audit line digests them)."""
        call = self._calls.get(item_id)
        if call is None or call.outcome or not isinstance(arguments, str):
            return []
        call.arguments = arguments
        return [] if call.shown_arguments or not json_object(arguments) else [self._started(call)]

    def ended(self, item_id: str, failed: bool) -> list[TurnEvent]:
        call = self._calls.get(item_id)
        if call is None or call.outcome:
            return []
        return self._finish(call, "failed" if failed else "done", "")

    def finished(
        self, item_id: str, call_id: str, item: Any, outcome: Literal["done", "failed"], output: str
    ) -> list[TurnEvent]:
        """The call's output item: what it adds to the lines already shown."""
        call = self._calls.get(item_id)
        if call is None:
            call = self._calls[item_id] = _Call(
                call_id, _field(item, "server_label"), _field(item, "name")
            )
        call.arguments = _field(item, "arguments") or call.arguments
        if call.outcome == outcome:
            return []  # said when `mcp_call.completed` came; twice would count it twice
        return self._finish(call, outcome, output)

    def _finish(
        self, call: _Call, outcome: Literal["done", "failed"], output: str
    ) -> list[TurnEvent]:
        # The start again where it went out before its arguments: the audit line digests them.
        again = not call.shown_arguments and json_object(call.arguments)
        events: list[TurnEvent] = [self._started(call)] if again else []
        call.outcome = outcome
        finished = ToolCallFinished(
            call_id=call.call_id, server=call.server, tool=call.tool, outcome=outcome, output=output
        )
        return [*events, finished]

    def _started(self, call: _Call) -> ToolCallStarted:
        arguments = json_object(call.arguments)
        call.shown_arguments = bool(arguments)
        return ToolCallStarted(
            call_id=call.call_id, server=call.server, tool=call.tool, arguments=arguments
        )


def _field(item: Any, name: str) -> str:
    value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
    return value if isinstance(value, str) else ""
