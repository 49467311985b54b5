"""`python -m bot check`: config, storage, each MCP server and one tiny LLM call, as a table."""

from __future__ import annotations

import asyncio
import io
import os
import wave

from bot.backends.base import openai_client
from bot.backends.chat_transport import ChatTransport, speaks_openai
from bot.backends.routes import provider, route
from bot.backends.transcription import transcribe
from bot.config import DEFAULT_CONFIG_PATH, Settings
from bot.ops.check_row import Row
from bot.store.sqlite import Store
from bot.tools.mcp import MCPTools
from bot.tools.mcp_format import short_url


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
            url = short_url(server.url or "")
            rows.append(Row(f"mcp:{name}", True, f"server-side ({url}); not connected here"))
    # A fallback (or /model choice) that cannot answer would only show up on the day it is needed.
    for name, model in models_to_check(settings):
        missing = missing_llm_key(settings, model)
        rows.append(
            Row(name, False, f"{missing} ({where(settings, model)})")
            if missing
            else await _check_llm(settings, model, name)
        )
    listener = settings.llm.transcription_model
    if listener:
        missing = missing_llm_key(settings, listener)
        rows.append(
            Row("llm:transcription", False, f"{missing} ({where(settings, listener)})")
            if missing
            else await _check_transcription(settings, listener)
        )
    if discord:
        from bot.ops.check_discord import discord_rows

        rows += await discord_rows(settings)
    _print_table(rows)
    return 0 if all(row.ok for row in rows) else 1


def models_to_check(settings: Settings) -> list[tuple[str, str]]:
    """(row name, model): the primary model, each other model a turn may use, each fallback."""
    llm = settings.llm
    channel_models = [c.model for c in settings.discord.channels.values() if c.model]
    fallbacks = llm.fallback_names()
    others = [m for m in [*llm.model_names(), *channel_models] if m not in fallbacks]
    rows: dict[str, str] = {llm.model: f"llm:{llm.backend}"}  # model -> its row, first wins
    for model in others:
        rows.setdefault(model, f"llm:model:{model}")
    for model in fallbacks:
        rows.setdefault(model, f"llm:fallback:{model}")
    return [(name, model) for model, name in rows.items()]


def where(settings: Settings, model: str) -> str:
    """The key's variable and the server a model's requests go to: names, never values."""
    found = route(settings.llm, model)
    server = short_url(found.base_url) if found.base_url else "the provider's"
    return f"key {found.key_name}, base URL {server}"


def missing_llm_key(settings: Settings, model: str) -> str | None:
    """Says which variable to set when no key can reach the provider; None if one can.

    Checked before the call, so a newcomer reads the variable's name rather than the
    provider library's long complaint about missing credentials."""
    llm = settings.llm
    found = route(llm, model)
    if found.api_key is not None or not found.own_variable:
        return None  # a key of ours, or a model's own server that needs none
    if llm.backend == "responses" or speaks_openai(model):
        wanted = [] if os.environ.get("OPENAI_API_KEY") else ["OPENAI_API_KEY"]
    else:
        from bot.backends.chat import import_litellm

        needed = import_litellm().validate_environment(model=model)
        # Only secrets: an OLLAMA_API_BASE-style variable is covered by llm.base_url.
        wanted = [k for k in needed.get("missing_keys", []) if "KEY" in k or "TOKEN" in k]
    if not wanted:
        return None
    names = " and ".join(wanted)
    shares_llm_key = llm.base_url or llm.backend == "responses"
    if shares_llm_key or provider(model) == provider(llm.model):
        return f"no API key for {model}; set LLM__API_KEY (or {names}) in the environment or .env"
    # LLM__API_KEY belongs to the primary model's provider: it is never sent to this one.
    return f"no API key for {model}; set {names} in the environment or .env"


async def _check_llm(settings: Settings, model: str, name: str) -> Row:
    llm = settings.llm
    timeout = min(llm.request_timeout_s, 30)
    try:
        if llm.backend == "responses":
            async with openai_client(llm, model) as client:
                response = await asyncio.wait_for(
                    client.responses.create(
                        model=model, input="Reply with OK.", max_output_tokens=16
                    ),
                    timeout=timeout,
                )
            answer = response.output_text
        else:
            # The turn's own path: the openai SDK for OpenAI-compatible models, litellm else.
            transport = ChatTransport(llm)
            try:
                reply = await asyncio.wait_for(
                    transport.create(
                        model,
                        messages=[{"role": "user", "content": "Reply with OK."}],
                        max_tokens=5,
                    ),
                    timeout=timeout,
                )
            finally:
                await transport.aclose()
            answer = reply.choices[0].message.content or ""
        detail = f"{model} answered {answer.strip()[:40]!r}"
        return Row(name, True, f"{detail} ({where(settings, model)})")
    except Exception as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        return Row(name, False, f"{model}: {reason} ({where(settings, model)})")


def silence_wav(seconds: float = 0.5, rate: int = 16_000) -> bytes:
    """A tiny valid WAV file of silence: every transcription endpoint takes WAV, and half a
    second costs a fraction of a cent while going the same way a voice message does."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()


async def _check_transcription(settings: Settings, model: str) -> Row:
    timeout = min(settings.llm.request_timeout_s, 30)
    try:
        heard = await asyncio.wait_for(
            transcribe(settings.llm, "check.wav", silence_wav(), "audio/wav"), timeout=timeout
        )
        detail = f"{model} transcribed 0.5 s of silence as {heard.text.strip()[:40]!r}"
        return Row("llm:transcription", True, f"{detail} ({where(settings, model)})")
    except Exception as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        return Row("llm:transcription", False, f"{model}: {reason} ({where(settings, model)})")


def _print_table(rows: list[Row]) -> None:
    width = max(len(row.name) for row in rows)
    for row in rows:
        print(f"{'OK  ' if row.ok else 'FAIL'}  {row.name.ljust(width)}  {row.detail}")
