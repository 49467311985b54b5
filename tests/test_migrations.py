"""Shipped migrations are never edited: databases that ran one must not differ from new ones."""

from __future__ import annotations

import hashlib

from bot.store.migrations import MIGRATIONS, Migration

# The sha256 of every shipped migration's statements, in order. A database records a migration by
# its name only, so an edited one would never run again where it already ran: fix the schema with a
# new migration instead. Adding a migration: append its line here (the failure prints it).
SHIPPED = {
    "m001_conversations": "776eb58a93fdfb126c4029f188b0e2edca97cee4e7058564354a48cf8b2ef025",
    "m002_approvals": "9da75fe95d8b92a46ea9baa48f790e199d9bf9c7cfd621313eecc5b722ed9b11",
    "m003_tool_grants": "ce61f89b5db360f2f3a6ecfff7103e68098912bc9fc3db67c0f67d3df883cd55",
    "m004_usage": "3ccc99107c27f59845617b446e1a244e712ad88d22c64e4ba4ed3b1edcd50ed6",
    "m005_approval_edits_and_reasons": (
        "4db80ed0845d609be05ed3e0d7b91921aaa3c55c54a9695da9ca21ea9293d2f9"
    ),
    "m006_usage_details": "9db268216a31195fae12873ba70efd418c1b7317af136358ee1560e6e45de22f",
    "m007_usage_channel_and_cost": (
        "18473db1d9a7641f854534cd7245d8edb8b2f3eec4cf739b709404803dd9dce5"
    ),
    "m008_channel_prompts": "c5e085e33db16674b1a7649d15814044ce7443a05241b03fd9cd705135ecf1f1",
    "m009_install_secrets": "06ce2223b4ee57c6579e3ca280e759d67bd569bbfad0c2863c995bb86091ee2d",
    "m010_user_data": "de4bf1c5558d1b3e163ef16a88707acc634528868940d0b9507e3e7ae2efe402",
    "m011_cache_writes": "463d2f1f140f8c1d8e39346a35119f3d918edf95b4583078467d696283a620cf",
    "m012_open_questions": "caf1ebcf97a0632160afcf67f748aca0ba6e3023a6e9bdb5c2d2e4b70075b3d4",
    "m013_cut_questions": "aa5ff20f365efe5e5e9efcc27b0cbbb5967ab8e8d2d8f43e2399426faf7c303b",
    "m014_handled_messages": "ed429d0e95b47b964db15b503523b6a698490be5c4a4b39309fa6357636ec69c",
    "m015_cut_reply_parts": "70ac38ed96d91f0701007f724fdc58b2fde27649f67a84704549d87082432b70",
    "m016_approval_resumes": "31ccce7bb0b09e23b42420467c13cc21be6ea1423ce11b44a7e969fd3b639389",
}


def checksum(migration: Migration) -> str:
    return hashlib.sha256("\0".join(migration.statements).encode()).hexdigest()


def test_shipped_migrations_are_never_edited_renamed_or_reordered() -> None:
    names = [m.name for m in MIGRATIONS]
    assert len(set(names)) == len(names), f"two migrations share a name: {names}"
    shipped = list(SHIPPED)
    # Still there, under the same names and in the same order, with new ones only after them.
    assert names[: len(shipped)] == shipped, (
        "a shipped migration was renamed, removed or moved; append a new one instead"
    )
    for migration in MIGRATIONS[: len(shipped)]:
        assert checksum(migration) == SHIPPED[migration.name], (
            f"shipped migration {migration.name} was edited: databases that already ran it "
            "would silently differ from new ones. Undo the edit and append a new migration."
        )
    unrecorded = [f'    "{m.name}": "{checksum(m)}",' for m in MIGRATIONS[len(shipped) :]]
    assert not unrecorded, (
        "new migrations: once shipped they may never change; add them to SHIPPED in "
        "tests/test_migrations.py:\n" + "\n".join(unrecorded)
    )
