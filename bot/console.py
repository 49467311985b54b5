"""`python -m bot chat`: talk to the configured backend and tools in the terminal, no Discord."""

from __future__ import annotations

import asyncio
import json
import sys

from bot.app import build_core
from bot.config import Settings
from bot.core.approvals import Action
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


async def _ask(prompt: str) -> str:
    return (await asyncio.to_thread(input, prompt)).strip()


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
                    case ApprovalRequested(approval_id=approval_id, tool=tool, arguments=args):
                        answer = await _ask(f"\nRun {tool} {json.dumps(args)}? [y/N/always] ")
                        action: Action = {"y": "approve", "always": "always"}.get(
                            answer.lower(), "deny"
                        )  # type: ignore[assignment]
                        await core.broker.click(
                            approval_id, user_id=CONSOLE_USER, is_admin=True, action=action
                        )
                    case Notice(text=note):
                        print(f"\n({note})")
                    case TurnFailed(message=message):
                        print(f"\n! {message}", file=sys.stderr)
                    case TurnCompleted():
                        print()
