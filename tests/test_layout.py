"""The architecture rules a reader relies on: no discord below bot/discord, SQL only in bot/store."""

from __future__ import annotations

import ast
import re
from pathlib import Path

BOT = Path(__file__).resolve().parents[1] / "bot"
# Matched against every string literal, across lines: SQL is often written as a triple-quoted block.
SQL = re.compile(
    r"\b(SELECT\s[\s\S]+?\sFROM\s|INSERT\s+(OR\s+\w+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s"
    r"|DELETE\s+FROM\s|CREATE\s+(TABLE|INDEX)\s|ALTER\s+TABLE\s|PRAGMA\s)",
    re.I,
)
LOWER_LAYERS = ("core", "backends", "store", "tools")


def module_name(path: Path, root: Path = BOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = BOT) -> set[str]:
    """Full dotted names this file imports, relative imports resolved against its package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = module_name(path, root)
    package = own if path.name == "__init__.py" else own.rsplit(".", 1)[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def reaches(imported: set[str], *packages: str) -> set[str]:
    return {n for n in imported for p in packages if n == p or n.startswith(p + ".")}


def test_import_resolution_sees_full_paths(tmp_path: Path) -> None:
    """The checks below must see `from bot.discord.streaming.render import X` and relative imports."""
    sample = tmp_path / "bot" / "core" / "x.py"
    sample.parent.mkdir(parents=True)
    sample.write_text(
        "from bot.discord.streaming.render import StreamRenderer\nfrom ..discord import split\n"
    )
    found = reaches(imported_modules(sample, tmp_path / "bot"), "bot.discord")
    assert {"bot.discord.streaming.render", "bot.discord", "bot.discord.split"} <= found


def test_lower_layers_never_import_discord() -> None:
    for package in LOWER_LAYERS:
        for path in (BOT / package).rglob("*.py"):
            bad = reaches(imported_modules(path), "discord", "bot.discord")
            assert not bad, f"{path} imports {sorted(bad)}"


def test_core_never_imports_the_layers_above_it() -> None:
    for path in (BOT / "core").rglob("*.py"):
        bad = reaches(imported_modules(path), "bot.backends", "bot.tools", "bot.app")
        assert not bad, f"{path} imports {sorted(bad)}: a protocol belongs in bot/core"


def test_discord_layer_builds_no_llm_requests() -> None:
    for path in (BOT / "discord").rglob("*.py"):
        bad = reaches(imported_modules(path), "openai", "litellm", "mcp", "bot.backends")
        assert not bad, f"{path} imports {sorted(bad)}"


def sql_in(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and SQL.search(node.value)
        ):
            found.append(node.value.strip().splitlines()[0])
    return found


def test_sql_check_catches_multi_line_statements(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'Q = """\n    SELECT id, key\n      FROM conversations\n     WHERE key = ?\n"""\n'
    )
    assert sql_in(sample)


def test_sql_lives_only_in_the_store() -> None:
    for path in BOT.rglob("*.py"):
        if path.parent.name == "store":
            continue
        assert not sql_in(path), f"SQL in {path}: {sql_in(path)}"


def test_modules_stay_small() -> None:
    for path in BOT.rglob("*.py"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 400, f"{path} has {lines} lines"


def import_graph(root: Path = BOT) -> dict[str, set[str]]:
    """Module -> the modules of this tree it imports (lazy and TYPE_CHECKING imports included:
    a circle through a type hint is still a circle for a reader)."""
    paths = {module_name(p, root): p for p in root.rglob("*.py")}
    return {
        name: {
            m
            for imported in imported_modules(path, root)
            for m in with_packages(imported, name)
            if m in paths and m != name
        }
        for name, path in paths.items()
    }


def with_packages(imported: str, importer: str) -> set[str]:
    """`a.b.c` and the packages Python runs first to import it (`a.b`, `a`), except the
    importer's own: those are already running by the time it imports anything."""
    parts = imported.split(".")
    packages = {".".join(parts[:n]) for n in range(1, len(parts))}
    own = {importer.rsplit(".", n)[0] for n in range(importer.count(".") + 1)}
    return {imported} | (packages - own)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


WINGS = ("streaming", "commands", "asks")


def crossings(root: Path = BOT) -> list[str]:
    """Imports from inside one wing of bot/discord into another wing's rooms. A wing may use
    another only through its door (`bot.discord.<wing>` itself, whose __init__ names what it
    lends); the modules at bot/discord's own level may use any wing."""
    modules = {module_name(p, root) for p in root.rglob("*.py")}
    bad = []
    for wing in WINGS:
        for path in (root / "discord" / wing).rglob("*.py"):
            for name in imported_modules(path, root) & modules:
                parts = name.split(".")
                if len(parts) > 3 and parts[2] in WINGS and parts[2] != wing:
                    bad.append(f"{module_name(path, root)} -> {name}")
    return sorted(bad)


def plant(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / "bot" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "bot"


def test_the_circle_check_sees_a_planted_circle(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        {
            "core/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.core.b import B\n",
            "core/b.py": "from bot.core.c import C\n",
            "core/c.py": "def f():\n    from bot.core import a\n",
            "core/d.py": "from bot.core.a import A\n",
        },
    )
    assert circles(import_graph(root)) == [["bot.core.a", "bot.core.b", "bot.core.c"]]


def test_the_circle_check_sees_a_circle_through_a_package_door(tmp_path: Path) -> None:
    # Importing bot.core.pkg.b runs bot/core/pkg/__init__.py first, which imports a back.
    root = plant(
        tmp_path,
        {
            "core/a.py": "from bot.core.pkg.b import B\n",
            "core/pkg/__init__.py": "from bot.core.pkg.c import C\n",
            "core/pkg/b.py": "B = 1\n",
            "core/pkg/c.py": "from bot.core.a import A\n",
        },
    )
    assert circles(import_graph(root)) == [["bot.core.a", "bot.core.pkg", "bot.core.pkg.c"]]


def test_no_import_circles() -> None:
    assert circles(import_graph()) == []


def test_the_wing_check_sees_a_planted_crossing(tmp_path: Path) -> None:
    root = plant(
        tmp_path,
        {
            "discord/commands/x.py": "from bot.discord.streaming.render import NO\n"
            "from bot.discord.streaming import describe\nfrom bot.discord.access import Access\n",
            "discord/streaming/render.py": "NO = 1\n",
            "discord/access.py": "Access = 1\n",
        },
    )
    assert crossings(root) == ["bot.discord.commands.x -> bot.discord.streaming.render"]


def test_wings_use_each_other_only_through_their_doors() -> None:
    assert crossings() == []
