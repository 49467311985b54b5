"""`python -m bot chat`: talk to the configured backend and tools in the terminal, no Discord."""

from __future__ import annotations

import asyncio
import json
import sys

from bot.app import Core, build_core
from bot.config import Settings
from bot.core.approvals import Action
from bot.core.arguments import pretty
from bot.core.events import (
    ApprovalRequested,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnCompleted,
    TurnFailed,
)
from bot.core.state import ConversationKey, TurnRequest

CONSOLE_USER = 1
KEY = ConversationKey(guild_id=0, channel_id=0, user_id=CONSOLE_USER)
CHOICES = {"y": "approve", "yes": "approve", "a": "always", "always": "always"}


async def _ask(prompt: str) -> str:
    return (await asyncio.to_thread(input, prompt)).strip()


async def _read_json() -> str:
    """Lines up to an empty one: room for pretty-printed JSON."""
    print("Enter the arguments as JSON, then an empty line:")
    lines = []
    while line := (await asyncio.to_thread(input)).rstrip():
        lines.append(line)
    return "\n".join(lines)


async def decide(core: Core, event: ApprovalRequested) -> None:
    """Ask on the terminal until the approval is decided: approve, always, edit, reason or deny."""
    broker = core.broker
    print(f"\nApproval needed: {event.server}.{event.tool} with:\n{pretty(event.arguments)}")
    if not broker.rule(event.server).requester_can_approve:
        # The terminal has nobody else to ask, and the asker may only say no.
        print(f"({event.server} needs someone other than the asker to approve; not run.)")
        await broker.click(event.approval_id, user_id=CONSOLE_USER, is_admin=True, action="deny")
        return
    menu = "[y]es, [N]o, [a]lways, [r]eason" + (", [e]dit" if event.editable else "")
    while True:
        try:
            answer = (await _ask(f"Run it? {menu}: ")).lower()
            action: Action = CHOICES.get(answer, "deny")  # type: ignore[assignment]
            edited = reason = None
            if answer in ("e", "edit") and event.editable:
                action, edited = "edit", await _read_json()
            elif answer in ("r", "reason"):
                action, reason = "reason", await _ask("Why not? ")
        except EOFError:
            action, edited, reason = "deny", None, None
        result = await broker.click(
            event.approval_id,
            user_id=CONSOLE_USER,
            is_admin=True,
            action=action,
            user_name="the terminal user",
            edited=edited,
            reason=reason,
        )
        if result.outcome != "invalid":
            return
        print(f"Not run: {result.problem} Try again.")


async def chat(settings: Settings) -> int:
    async with build_core(settings) as core:
        print(
            "Chatting with", settings.llm.model, "- empty line or Ctrl-D to quit, /reset to forget."
        )
        while True:
            try:
                text = await _ask("you> ")
            except EOFError:
                return 0
            if not text:
                return 0
            if text == "/reset":
                await core.store.reset_conversation(KEY)
                print("(forgotten)")
                continue
            request = TurnRequest(key=KEY, user_id=CONSOLE_USER, user_name="you", text=text)
            async for event in core.conversations.run_turn(request):
                match event:
                    case TextDelta(text=delta):
                        print(delta, end="", flush=True)
                    case ToolCallStarted(server=server, tool=tool, arguments=args):
                        print(f"\n[tool {server}.{tool} {json.dumps(args)}]", flush=True)
                    case ToolCallFinished(tool=tool, outcome=outcome):
                        print(f"[{tool}: {outcome}]", flush=True)
                    case ApprovalRequested():
                        await decide(core, event)
                    case Notice(text=note):
                        print(f"\n({note})")
                    case TurnFailed(message=message):
                        print(f"\n! {message}", file=sys.stderr)
                    case TurnCompleted():
                        print()
