"""Arguments a person edits or audits: broken schemas, keys that cannot forge a line, keyed digests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bot.core.arguments import check_arguments, digest
from bot.store.sqlite import Store

FORGED = "\n🔐 `files.delete_all` asked by <@3>: **deny** by <@999> · args: x"


def test_a_schema_whose_ref_does_not_resolve_leaves_the_judging_to_the_tool() -> None:
    for schema in (
        {"$ref": "#/$defs/missing"},
        {"type": "object", "properties": {"x": {"$ref": "https://example.invalid/s.json"}}},
    ):
        assert check_arguments('{"x": 1}', schema) == ({"x": 1}, None)
    # A sound schema still judges.
    _, problem = check_arguments('{"x": "one"}', {"properties": {"x": {"type": "integer"}}})
    assert problem is not None and problem.startswith("x:")


def test_argument_keys_cannot_forge_a_line_markdown_or_a_mention() -> None:
    secret = b"s" * 32
    for key in (FORGED, "a\u2028🔐 forged", "a\rb\x85c", "`code` and ``` fence"):
        shown = digest({key: 1, "b": 2}, secret)
        assert len(shown.splitlines()) == 1, shown
        # The keys sit in one code span (no markdown, no mention inside it), with no backtick
        # of their own to end it early.
        keys, _, tail = shown.rpartition(" · ")
        assert keys.startswith("`") and keys.endswith("`") and keys.count("`") == 2, shown
        assert tail.startswith("hmac ") and "`" not in tail
    long = digest({"k" * 5000: 1, **{f"key{i}": i for i in range(100)}}, secret)
    assert len(long) < 200


async def test_argument_digests_need_this_installs_secret(tmp_path: Path) -> None:
    async with Store.open(tmp_path / "one.db") as one:
        secret = one.install_secret()
    async with Store.open(tmp_path / "one.db") as reopened:
        assert reopened.install_secret() == secret  # kept in the database: backups carry it
    async with Store.open(tmp_path / "two.db") as two:
        other = two.install_secret()
    assert len(secret) == 32 and secret != other
    pin = {"pin": "4821"}
    shown = digest(pin, secret)
    assert digest(pin, secret) == shown  # stable within one install
    assert digest(pin, other) != shown  # another install says something else
    fingerprint = shown.rsplit(" ", 1)[1]
    guesses = [{"pin": f"{n:04d}"} for n in range(10_000)]

    def canonical(arguments: dict) -> bytes:
        return json.dumps(arguments, sort_keys=True, ensure_ascii=False).encode()

    # Whoever reads the audit line but not the database cannot try every PIN against it...
    unkeyed = {hashlib.sha256(canonical(g)).hexdigest()[:12] for g in guesses}
    assert fingerprint not in unkeyed
    assert not [g for g in guesses if digest(g, other).endswith(fingerprint)]
    # ... while the same search with the secret finds exactly the value.
    assert [g for g in guesses if digest(g, secret).endswith(fingerprint)] == [pin]
