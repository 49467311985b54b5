"""Answers MCP sampling requests with the bot's own model: one plain request, no tools."""

from __future__ import annotations

import mcp_types as types

from bot.backends.base import openai_client
from bot.backends.chat_transport import ChatTransport
from bot.config import LLMConfig
from bot.tools.mcp import Sampled, Sampler

MAX_SAMPLING_TOKENS = 4_000  # a server cannot make the bot's model write a book


def _messages(params: types.CreateMessageRequestParams) -> list[dict[str, str]]:
    out = []
    for message in params.messages:
        blocks = message.content if isinstance(message.content, list) else [message.content]
        text = "\n".join(
            b.text if isinstance(b, types.TextContent) else f"[{b.type}]" for b in blocks
        )
        out.append({"role": message.role, "content": text})
    return out


def make_sampler(llm: LLMConfig) -> Sampler:
    """A sampler for the configured backend: the chat backend's transport for `chat` (the openai
    SDK for OpenAI-compatible models, litellm for the rest), the Responses API otherwise."""

    async def chat(params: types.CreateMessageRequestParams) -> Sampled:
        system = (
            [{"role": "system", "content": params.system_prompt}] if params.system_prompt else []
        )
        transport = ChatTransport(llm)
        try:
            response = await transport.create(
                llm.model,
                messages=system + _messages(params),
                max_tokens=min(params.max_tokens, MAX_SAMPLING_TOKENS),
            )
        finally:
            await transport.aclose()
        usage = getattr(response, "usage", None)
        return Sampled(
            text=response.choices[0].message.content or "",
            model=llm.model,
            input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            output_tokens=getattr(usage, "completion_tokens", 0) or 0,
        )

    async def responses(params: types.CreateMessageRequestParams) -> Sampled:
        async with openai_client(llm) as client:
            response = await client.responses.create(
                model=llm.model,
                input=_messages(params),  # type: ignore[arg-type]
                instructions=params.system_prompt,
                max_output_tokens=min(params.max_tokens, MAX_SAMPLING_TOKENS),
                store=False,
            )
        usage = response.usage
        return Sampled(
            text=response.output_text,
            model=llm.model,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
        )

    return chat if llm.backend == "chat" else responses
