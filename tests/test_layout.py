"""The architecture rules a reader relies on: no discord below bot/discord, SQL only in bot/store."""

from __future__ import annotations

import ast
import re
from pathlib import Path

BOT = Path(__file__).resolve().parents[1] / "bot"
SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+TABLE)\b", re.I
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_backends_store_tools_never_import_discord() -> None:
    for package in ("core", "backends", "store", "tools"):
        for path in (BOT / package).rglob("*.py"):
            assert "discord" not in imported_modules(path), f"{path} imports discord"


def test_discord_layer_builds_no_llm_requests() -> None:
    for path in (BOT / "discord").rglob("*.py"):
        assert not {"openai", "litellm", "mcp"} & imported_modules(path), path


def test_sql_lives_only_in_the_store() -> None:
    for path in BOT.rglob("*.py"):
        if path.parent.name == "store":
            continue
        assert not SQL.search(path.read_text(encoding="utf-8")), f"SQL in {path}"


def test_modules_stay_small() -> None:
    for path in BOT.rglob("*.py"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 400, f"{path} has {lines} lines"
