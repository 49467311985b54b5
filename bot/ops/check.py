"""`python -m bot check`: config, storage, each MCP server and one tiny LLM call, as a table."""

from __future__ import annotations

import asyncio
import os

from bot.config import DEFAULT_CONFIG_PATH, Settings
from bot.ops.check_row import Row
from bot.store.sqlite import Store
from bot.tools.mcp import MCPTools


async def run_checks(settings: Settings, *, discord: bool = False) -> int:
    rows = [Row("config", True, os.environ.get("BOT_CONFIG") or DEFAULT_CONFIG_PATH)]
    rows.append(
        Row("DISCORD_TOKEN", True, "set")
        if settings.discord_token is not None
        else Row("DISCORD_TOKEN", False, "not set; set DISCORD_TOKEN in the environment or .env")
    )
    try:
        async with Store.open(settings.storage.path):
            pass  # opening migrates: the file is writable and its schema current
        rows.append(Row("storage", True, f"{settings.storage.path} (schema up to date)"))
    except Exception as exc:
        rows.append(Row("storage", False, f"{settings.storage.path}: {exc}"))
    bot_side = {n: s for n, s in settings.mcp.servers.items() if not s.server_side}
    async with MCPTools(bot_side, tool_timeout_s=settings.mcp.tool_timeout_s) as tools:
        for status in tools.status():
            detail = ", ".join(status.tools) or "no tools" if status.connected else status.error
            rows.append(Row(f"mcp:{status.name}", status.connected, detail or "failed"))
    for name, server in settings.mcp.servers.items():
        if server.server_side:
            rows.append(Row(f"mcp:{name}", True, f"server-side ({server.url}); not connected here"))
    # A fallback model that cannot answer would only show up on the day it is needed.
    fallbacks = [m for m in settings.llm.fallback_models if m != settings.llm.model]
    for model in [settings.llm.model, *fallbacks]:
        name = (
            f"llm:{settings.llm.backend}"
            if model == settings.llm.model
            else f"llm:fallback:{model}"
        )
        missing = missing_llm_key(settings, model)
        rows.append(
            Row(name, False, missing) if missing else await _check_llm(settings, model, name)
        )
    if discord:
        from bot.ops.check_discord import discord_rows

        rows += await discord_rows(settings)
    _print_table(rows)
    return 0 if all(row.ok for row in rows) else 1


def missing_llm_key(settings: Settings, model: str) -> str | None:
    """Says which variable to set when no key can reach the provider; None if one can.

    Checked before the call, so a newcomer reads the variable's name rather than the
    provider library's long complaint about missing credentials."""
    if settings.llm_api_key():
        return None
    if settings.llm.backend == "responses":
        wanted = [] if os.environ.get("OPENAI_API_KEY") else ["OPENAI_API_KEY"]
    else:
        from bot.backends.chat import import_litellm

        found = import_litellm().validate_environment(model=model)
        # Only secrets: an OLLAMA_API_BASE-style variable is covered by llm.base_url.
        wanted = [k for k in found.get("missing_keys", []) if "KEY" in k or "TOKEN" in k]
    if not wanted:
        return None
    return (
        f"no API key for {model}; set LLM__API_KEY "
        f"(or {' and '.join(wanted)}) in the environment or .env"
    )


async def _check_llm(settings: Settings, model: str, name: str) -> Row:
    llm = settings.llm
    try:
        if llm.backend == "responses":
            from openai import AsyncOpenAI

            client = AsyncOpenAI(
                base_url=llm.base_url,
                api_key=settings.llm_api_key() or os.environ.get("OPENAI_API_KEY") or "unset",
                timeout=min(llm.request_timeout_s, 30),
                max_retries=0,
            )
            response = await client.responses.create(
                model=model, input="Reply with OK.", max_output_tokens=16
            )
            answer = response.output_text
            await client.close()
        else:
            from bot.backends.chat import import_litellm

            litellm = import_litellm()
            kwargs: dict[str, str] = {"api_base": llm.base_url} if llm.base_url else {}
            api_key = settings.llm_api_key()
            if api_key:
                kwargs["api_key"] = api_key
            reply = await asyncio.wait_for(
                litellm.acompletion(
                    model=model,
                    messages=[{"role": "user", "content": "Reply with OK."}],
                    max_tokens=5,
                    max_retries=0,
                    **kwargs,
                ),
                timeout=min(llm.request_timeout_s, 30),
            )
            answer = reply.choices[0].message.content or ""
        return Row(name, True, f"{model} answered {answer.strip()[:40]!r}")
    except Exception as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        return Row(name, False, f"{model}: {reason}")


def _print_table(rows: list[Row]) -> None:
    width = max(len(row.name) for row in rows)
    for row in rows:
        print(f"{'OK  ' if row.ok else 'FAIL'}  {row.name.ljust(width)}  {row.detail}")
