"""Answers MCP sampling requests with the bot's own model: one plain request, no tools."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import mcp_types as types

from bot.backends.base import openai_client
from bot.backends.chat_transport import ChatTransport
from bot.backends.failures import classify, sleep_before_retry
from bot.backends.fallback import model_chain
from bot.config import LLMConfig
from bot.tools.mcp import Sampled, Sampler

log = logging.getLogger(__name__)

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

    async def chat(params: types.CreateMessageRequestParams, model: str) -> Sampled:
        system = (
            [{"role": "system", "content": params.system_prompt}] if params.system_prompt else []
        )
        transport = ChatTransport(llm)
        try:
            response = await transport.create(
                model,
                messages=system + _messages(params),
                max_tokens=min(params.max_tokens, MAX_SAMPLING_TOKENS),
            )
        finally:
            await transport.aclose()
        usage = getattr(response, "usage", None)
        return Sampled(
            text=response.choices[0].message.content or "",
            model=model,
            input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            output_tokens=getattr(usage, "completion_tokens", 0) or 0,
        )

    async def responses(params: types.CreateMessageRequestParams, model: str) -> Sampled:
        async with openai_client(llm, model) as client:
            response = await client.responses.create(
                model=model,
                input=_messages(params),  # type: ignore[arg-type]
                instructions=params.system_prompt,
                max_output_tokens=min(params.max_tokens, MAX_SAMPLING_TOKENS),
                store=False,
            )
        usage = response.usage
        return Sampled(
            text=response.output_text,
            model=model,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
        )

    ask = chat if llm.backend == "chat" else responses

    async def sample(params: types.CreateMessageRequestParams) -> Sampled:
        return await first_answer(llm, lambda model: ask(params, model))

    return sample


async def first_answer(llm: LLMConfig, ask: Callable[[str], Awaitable[Sampled]]) -> Sampled:
    """As a turn does: each model gets `llm.max_retries` retries of a retryable failure, and a
    transient one moves on to the next of `llm.fallback_models`. The caller bounds the wait."""
    models = model_chain(llm.model, llm.fallback_names())
    for n, model in enumerate(models):
        attempt = 0
        while True:
            try:
                return await ask(model)
            except Exception as exc:
                failure = classify(exc)
                if failure.retryable and attempt < llm.max_retries:
                    await sleep_before_retry(attempt, failure)
                    attempt += 1
                    continue
                if not failure.transient or n + 1 == len(models):
                    raise
                log.warning(
                    "sampling: model %s unavailable (%s); trying the next", model, failure.message
                )
                break
    raise AssertionError("model_chain always holds the configured model")


class LiveSampler:
    """The sampler the MCP servers' connections keep for the process's life: a reload points
    it at the new `llm` (model, fallbacks, key), as it does new turns."""

    def __init__(self, llm: LLMConfig) -> None:
        self.use(llm)

    def use(self, llm: LLMConfig) -> None:
        self._sample = make_sampler(llm)

    async def __call__(self, params: types.CreateMessageRequestParams) -> Sampled:
        return await self._sample(params)

    async def short(self, system: str, text: str, max_tokens: int) -> str:
        """One plain request for a few words (a thread's title): no history, no tools."""
        params = types.CreateMessageRequestParams(
            messages=[
                types.SamplingMessage(
                    role="user", content=types.TextContent(type="text", text=text)
                )
            ],
            system_prompt=system,
            max_tokens=max_tokens,
        )
        return (await self._sample(params)).text
