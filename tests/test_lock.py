"""The lock files are what gets installed, and they cover every range in pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def pins(lock: str) -> dict[str, tuple[str, str | None]]:
    found: dict[str, tuple[str, str | None]] = {}
    for line in (ROOT / lock).read_text().splitlines():
        match = PIN.match(line)
        if match:
            name, version, marker = match.groups()
            found[canonicalize_name(name)] = (version, marker)
    return found


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_pin_has_a_hash() -> None:
    for lock in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / lock).read_text()
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[-1])
        for block in blocks:
            if "==" in block:
                assert "--hash=sha256:" in block, f"{lock}: no hash for {block.splitlines()[0]}"


def extra(name: str) -> list[Requirement]:
    """An extra's requirements, with `mcpcord[other]` (one extra naming another) expanded."""
    found = []
    for line in project()["optional-dependencies"][name]:
        req = Requirement(line)
        if canonicalize_name(req.name) == canonicalize_name(project()["name"]):
            found += [r for other in sorted(req.extras) for r in extra(other)]
        else:
            found.append(req)
    return found


def test_locks_satisfy_the_ranges() -> None:
    runtime = [Requirement(r) for r in project()["dependencies"]]
    # scripts/lock.sh locks the runtime with the tools and scale extras (the Docker image's).
    shipped = runtime + extra("tools") + extra("scale")
    for lock, reqs in (
        ("requirements.lock", shipped),
        ("requirements-dev.lock", shipped + extra("dev")),
    ):
        pinned = pins(lock)
        for req in reqs:
            name = canonicalize_name(req.name)
            assert name in pinned, f"{req.name} is missing from {lock}: run sh scripts/lock.sh"
            version = pinned[name][0]
            assert req.specifier.contains(version, prereleases=True), (
                f"{lock} pins {req.name}=={version}, outside {req.specifier}: run sh scripts/lock.sh"
            )


def test_installed_packages_are_the_locked_ones() -> None:
    """CI installs requirements-dev.lock: what runs the suite must be exactly what it pins."""
    wrong = []
    for name, (version, marker) in pins("requirements-dev.lock").items():
        if marker and not Requirement(f"x; {marker}").marker.evaluate():  # type: ignore[union-attr]
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name} (not installed)")
            continue
        if canonicalize_name(installed) != canonicalize_name(version) and installed != version:
            wrong.append(f"{name} {installed} != {version}")
    assert not wrong, "installed packages differ from requirements-dev.lock: " + ", ".join(wrong)
