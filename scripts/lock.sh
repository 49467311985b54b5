#!/usr/bin/env sh
# Refresh the lock files from pyproject.toml's ranges (needs uv: `pip install uv`).
# requirements.lock: what the bot runs with (Docker); requirements-dev.lock: that plus the tests (CI).
set -eu
cd "$(dirname "$0")/.."
common="--universal --python-version 3.11 --generate-hashes --quiet"
# shellcheck disable=SC2086
uv pip compile pyproject.toml --extra tools --extra scale $common -o requirements.lock
# shellcheck disable=SC2086
uv pip compile pyproject.toml --extra tools --extra scale --extra dev $common -o requirements-dev.lock
