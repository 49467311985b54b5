"""MCP sampling answered with the bot's own model, on every path a turn can take, against the
scripted LLM server."""

from __future__ import annotations

import asyncio
import sys

import mcp_types as types
import pytest
from pydantic import SecretStr

from bot.config import LLMConfig
from bot.tools.sampling import make_sampler
from tests.fakes.llm import Fault, ScriptedLLM, Text
from tests.module_llm import module_llm  # noqa: F401 (this module's `llm`)


@pytest.fixture(autouse=True)
def served(llm: ScriptedLLM) -> None:
    """The models this module's bots are configured with; any other is OpenAI's 404."""
    llm.serve("sampler", "second", "keyed")


def request(text: str) -> types.CreateMessageRequestParams:
    content = types.TextContent(type="text", text=text)
    return types.CreateMessageRequestParams(
        messages=[types.SamplingMessage(role="user", content=content)],
        system_prompt="Answer in five words.",
        max_tokens=50_000,
    )


# "openai/": the openai SDK; "hosted_vllm/": litellm; and the Responses API.
@pytest.mark.parametrize(
    ("backend", "model"),
    [("chat", "openai/sampler"), ("chat", "hosted_vllm/sampler"), ("responses", "sampler")],
)
async def test_a_sampling_request_is_answered_by_the_bots_model(
    llm: ScriptedLLM, backend: str, model: str
) -> None:
    key = f"k-sample-{backend}-{model.split('/')[0]}"
    llm.script(key, Text("Silent bytes falling down."))
    config = LLMConfig(
        backend=backend,  # type: ignore[arg-type]
        model=model,
        base_url=llm.base_url,
        api_key=SecretStr("test"),
    )
    sampled = await make_sampler(config)(request(f"{key} a haiku"))
    assert sampled.text == "Silent bytes falling down."
    assert sampled.model == model and sampled.input_tokens > 0 and sampled.output_tokens > 0
    (sent,) = llm.requests_for(key)
    assert sent.body["model"] == "sampler"
    assert "tools" not in sent.body
    capped = sent.body.get("max_tokens", sent.body.get("max_output_tokens"))
    assert capped == 4_000  # a server cannot make the bot's model write a book


async def test_sampling_with_an_openai_compatible_model_does_not_import_litellm(
    llm: ScriptedLLM,
) -> None:
    """litellm's import takes ~130 MB and seconds of the event loop; a bot that talks to an
    OpenAI-compatible endpoint never needs it, MCP sampling included."""
    key = "k-sample-no-litellm"
    llm.script(key, Text("Answered without litellm."))
    code = (
        "import asyncio, sys\n"
        "from pydantic import SecretStr\n"
        "from bot.config import LLMConfig\n"
        "from bot.tools.sampling import make_sampler\n"
        "from tests.test_sampling import request\n"
        f"config = LLMConfig(model='openai/sampler', base_url={llm.base_url!r},"
        " api_key=SecretStr('test'))\n"
        f"sampled = asyncio.run(make_sampler(config)(request({key + ' hi'!r})))\n"
        "print(sampled.text, '|', 'litellm' in sys.modules)\n"
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0
    assert out.decode().split("|") == ["Answered without litellm. ", " False\n"]


@pytest.mark.parametrize(
    ("backend", "prefix"), [("chat", "openai/"), ("chat", "hosted_vllm/"), ("responses", "")]
)
async def test_sampling_retries_then_falls_back_like_a_turn(
    llm: ScriptedLLM, backend: str, prefix: str
) -> None:
    key = f"k-sample-fallback-{backend}-{prefix.strip('/')}"
    llm.script(key, Text("The fallback wrote it."))
    llm.fail_model("down", Fault(503), key=key)
    config = LLMConfig(
        backend=backend,  # type: ignore[arg-type]
        model=f"{prefix}down",
        fallback_models=[f"{prefix}second"],
        max_retries=1,
        base_url=llm.base_url,
        api_key=SecretStr("test"),
    )
    sampled = await make_sampler(config)(request(f"{key} a haiku"))
    assert sampled.text == "The fallback wrote it."
    assert sampled.model == f"{prefix}second"  # priced and shown as the model that answered
    assert [r.model for r in llm.requests_for(key)] == ["down", "down", "second"]


@pytest.mark.parametrize(
    ("backend", "prefix"), [("chat", "openai/"), ("chat", "hosted_vllm/"), ("responses", "")]
)
async def test_a_sampling_fallback_with_its_own_key_never_gets_llm_api_key(
    llm: ScriptedLLM, backend: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same key rule as a turn's (bot/backends/routes.py): a fallback with its own key and
    server gets that key, and LLM__API_KEY stays with the primary model."""
    monkeypatch.setenv("SAMPLING_FALLBACK_KEY", "sk-sampling-fallback")
    key = f"k-sample-keys-{backend}-{prefix.strip('/')}"
    llm.script(key, Text("Own key."))
    llm.fail_model("down", Fault(503), key=key)
    config = LLMConfig(
        backend=backend,  # type: ignore[arg-type]
        model=f"{prefix}down",
        fallback_models=[
            {
                "model": f"{prefix}keyed",
                "api_key_env": "SAMPLING_FALLBACK_KEY",
                "base_url": llm.base_url,
            }
        ],
        max_retries=0,
        base_url=llm.base_url,
        api_key=SecretStr("sk-primary"),
    )
    assert (await make_sampler(config)(request(f"{key} a haiku"))).text == "Own key."
    sent = [(r.model, r.headers.get("Authorization")) for r in llm.requests_for(key)]
    assert sent == [("down", "Bearer sk-primary"), ("keyed", "Bearer sk-sampling-fallback")]
