#!/usr/bin/env bash
# Sets up the environment if needed (see scripts/venv.sh), checks lint and format (ruff),
# then runs the test suite on every core (pytest-xdist). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(bash "$root/scripts/venv.sh")"
cd "$root"
"$venv/bin/ruff" check --quiet . || { echo "ruff check failed: fix the lines above (ruff check --fix . fixes many)" >&2; exit 1; }
"$venv/bin/ruff" format --check --quiet . || { echo "ruff format: run 'ruff format .'" >&2; exit 1; }
exec "$venv/bin/python" -m pytest -q -n "${EMONET_TEST_WORKERS:-auto}" "$@"
