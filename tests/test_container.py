"""What can be checked of the Docker image and docker-compose.yaml without Docker."""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from bot.__main__ import build_parser
from bot.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
# Read by the bot, but not Settings fields.
NON_SETTING_VARIABLES = {"BOT_CONFIG"}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    buffer = ""
    for raw in (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        joined.append(buffer + line)
        buffer = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined]


def exec_form(arguments: str) -> list[str]:
    text = arguments.strip()
    return yaml.safe_load(text) if text.startswith("[") else shlex.split(text)


def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))


def is_setting(variable: str) -> bool:
    """Whether an environment variable names a Settings field (nested by `__`)."""
    model: Any = Settings
    parts = variable.lower().split("__")
    while parts:
        part = parts.pop(0)
        fields = model.model_fields
        if part not in fields:
            return False
        annotation = fields[part].annotation
        origin = getattr(annotation, "__origin__", None)
        if origin is dict:
            if not parts:
                return True
            parts.pop(0)  # a name of the operator's choosing, e.g. an MCP server's
            value = annotation.__args__[1]
            if not parts:
                return True
            model = value
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        return not parts
    return True


def test_dockerfile_base_user_init_healthcheck_and_lock() -> None:
    steps = dockerfile()
    froms = [args for op, args in steps if op == "FROM"]
    assert froms == ["python:3.11-slim"]
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert f"--uid {10001}" in " ".join(args for op, args in steps if op == "RUN")
    entry = [exec_form(args) for op, args in steps if op == "ENTRYPOINT"]
    assert entry and entry[-1][0].endswith("tini")
    installs = " ".join(args for op, args in steps if op == "RUN")
    assert re.search(r"apt-get install [^&]*\btini\b", installs)
    assert re.search(r"apt-get install [^&]*\bnodejs\b[^&]*\bnpm\b", installs)  # for npx servers
    assert "--require-hashes -r requirements.lock" in installs
    health = [args for op, args in steps if op == "HEALTHCHECK"]
    assert len(health) == 1
    command = exec_form(health[0].split("CMD", 1)[1])
    assert command[:3] == ["python", "-m", "bot"]
    choices = build_parser()._actions[1].choices
    assert command[3] in choices
    assert exec_form(next(args for op, args in steps if op == "CMD")) == ["python", "-m", "bot"]


def test_every_copied_file_exists_and_is_not_docker_ignored() -> None:
    ignored = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for op, args in dockerfile():
        if op == "COPY":
            parts = [p for p in args.split() if not p.startswith("--")]
            sources += parts[:-1]
    assert "requirements.lock" in sources and "bot" in sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source


def test_compose_passes_only_real_settings_and_matches_the_proxy() -> None:
    spec = compose()
    bot = spec["services"]["bot"]
    env = bot["environment"]
    for variable in env:
        assert variable in NON_SETTING_VARIABLES or is_setting(variable), variable
    assert env["LLM__BACKEND"] == "responses"
    # The database lives on a named volume declared at the top level.
    volumes = dict(v.split(":", 1) for v in bot["volumes"])
    assert volumes["mcpcord-data"] == "/data"
    assert "mcpcord-data" in spec["volumes"]
    assert env["STORAGE__PATH"].startswith("/data/")
    # config.yaml is mounted read-only where the image reads it (BOT_CONFIG in the Dockerfile).
    mounts = [v.split(":") for v in bot["volumes"]]
    (config_mount,) = [m for m in mounts if m[0] == "./config.yaml"]
    env_lines = " ".join(args for instruction, args in dockerfile() if instruction == "ENV")
    image_config = re.search(r"BOT_CONFIG=(\S+)", env_lines)
    assert image_config and config_mount[1:] == [image_config.group(1), "ro"]
    # Every host file the services mount is in the repository.
    for service in spec["services"].values():
        for volume in service.get("volumes", []):
            host = volume.split(":", 1)[0]
            if host.startswith("."):
                assert (REPO_ROOT / host).exists(), host
    # The proxy serves the model the bot asks for, and runs an MCP gateway for `litellm_proxy`.
    proxy = spec["services"]["litellm"]
    config_path = next(v.split(":")[0] for v in proxy["volumes"] if "litellm" in v)
    proxy_config = yaml.safe_load((REPO_ROOT / config_path).read_text(encoding="utf-8"))
    assert env["LLM__MODEL"] in {m["model_name"] for m in proxy_config["model_list"]}
    assert proxy_config["mcp_servers"]
    assert env["MCP__SERVERS__GATEWAY__URL"] == "litellm_proxy"
    assert env["LLM__BASE_URL"].startswith("http://litellm:")


def test_compose_variables_are_in_env_example_and_form_valid_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = (REPO_ROOT / "docker-compose.yaml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    example = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    offered = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", example, re.MULTILINE))
    assert used and used <= offered, used - offered
    # The shipped config.yaml plus the compose environment is a valid configuration.
    monkeypatch.chdir(REPO_ROOT / "tests")  # no .env here
    monkeypatch.setenv("BOT_CONFIG", str(REPO_ROOT / "config.yaml"))
    for variable, value in compose()["services"]["bot"]["environment"].items():
        monkeypatch.setenv(variable, re.sub(r"\$\{[^}]*\}", "x", str(value)))
    settings = Settings()
    assert settings.llm.backend == "responses"
    assert settings.mcp.servers["gateway"].server_side


def test_is_setting_rejects_unknown_names() -> None:
    assert is_setting("LLM__MODEL") and is_setting("MCP__SERVERS__ANY__URL")
    assert not is_setting("LLM__MODLE") and not is_setting("MCP__SERVERS__ANY__URLL")
