"""`llm.models` and `llm.fallback_models` entries: a model's name, or its own key and server."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr, field_validator, model_validator


class ModelEntry(BaseModel):
    """A model with its own key or server; a plain string `m` stands for `{model: m}`."""

    # As bot/config.py's sections: the docstrings are docs/config.md's descriptions.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    model: str
    """The model's name, as `llm.model` names one (`provider/model` on the chat backend)."""
    api_key_env: str | None = None
    """The environment variable (or .env name) holding this model's key; null = the usual rule: `LLM__API_KEY` for `llm.base_url` or the primary model's provider, else the provider's own variable."""
    base_url: str | None = None
    """This model's own server; null = `llm.base_url`, else the provider's. A model with its own server gets only the key its `api_key_env` names."""
    _api_key: SecretStr | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"model": value} if isinstance(value, str) else value

    @field_validator("api_key_env")
    @classmethod
    def _variable_is_set(cls, name: str | None) -> str | None:
        if name is not None and not os.environ.get(name):
            raise ValueError(
                f"{name} is not set; set it in the environment or .env (or remove api_key_env)"
            )
        return name

    @model_validator(mode="after")
    def _read_key(self) -> ModelEntry:
        # Read once, as a secret: the value never appears in a dump, a log or `check`.
        if self.api_key_env is not None:
            self._api_key = SecretStr(os.environ[self.api_key_env])
        return self

    @property
    def api_key(self) -> SecretStr | None:
        """The value of `api_key_env`, read when the configuration was loaded."""
        return self._api_key
