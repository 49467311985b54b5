"""Which server and which key each model's requests go to, so a key reaches only its provider.

The rule (README, "Keys for several providers"):
- a `{model, api_key_env, base_url}` entry with its own `base_url` goes there with the key its
  `api_key_env` names, and with no key at all without one;
- an entry with only `api_key_env` goes where the model would go, with that key;
- with `llm.base_url` set (a LiteLLM proxy or one compatible server), or on the responses backend
  (one server for every model), every other model goes there with `LLM__API_KEY`;
- without it, `LLM__API_KEY` goes only to models of the primary model's provider (`llm.model`'s
  prefix); other providers' models get no key from us, and the provider library reads the
  provider's own variable (litellm: ANTHROPIC_API_KEY, ...; the openai SDK: OPENAI_API_KEY).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pydantic import SecretStr

from bot.config import LLMConfig

LLM_API_KEY = "LLM__API_KEY"
OPENAI_PREFIX = "openai/"


@dataclass(frozen=True)
class Route:
    """Where one model's requests go. `api_key` None with `own_variable`: the provider library
    reads the provider's own variable; None without it: no key is sent at all."""

    model: str
    base_url: str | None  # None: the provider's own endpoint
    api_key: SecretStr | None
    key_name: str  # what `check` shows: a variable's name, or why there is none
    own_variable: bool = False


def provider(model: str) -> str:
    """`anthropic` for `anthropic/claude-...`; "" for a bare name (the responses backend's)."""
    return model.split("/", 1)[0] if "/" in model else ""


def route(llm: LLMConfig, model: str) -> Route:
    entry = llm.entry(model)
    if entry is not None and entry.base_url:
        if entry.api_key_env:
            return Route(model, entry.base_url, entry.api_key, entry.api_key_env)
        return Route(model, entry.base_url, None, "none (its own server, no api_key_env)")
    base_url = llm.base_url
    if entry is not None and entry.api_key_env:
        return Route(model, base_url, entry.api_key, entry.api_key_env)
    one_server = base_url is not None or llm.backend == "responses"
    if (one_server or provider(model) == provider(llm.model)) and llm.api_key is not None:
        return Route(model, base_url, llm.api_key, LLM_API_KEY)
    return Route(model, base_url, None, own_variable_name(model), own_variable=True)


def own_variable_name(model: str) -> str:
    """The provider's variable, for `check`: the openai SDK's is certain; for litellm's providers
    `<PROVIDER>_API_KEY` is named when set (most use it), else described."""
    name = provider(model)
    if name in ("", "openai"):
        return "OPENAI_API_KEY"
    guess = f"{name.upper()}_API_KEY"
    return guess if os.environ.get(guess) else f"{name}'s own variable"


def openai_key(found: Route) -> str:
    """The key the openai SDK sends: it refuses to build a client without one, and a keyless
    server ignores the placeholder."""
    if found.api_key is not None:
        return found.api_key.get_secret_value()
    if found.own_variable:
        return os.environ.get("OPENAI_API_KEY") or "not-set"
    return "not-set"
