#!/usr/bin/env bash
# Sets up the environment if needed (see scripts/venv.sh), checks lint and format (ruff),
# checks the layering (import-linter), then runs the test suite on every core (pytest-xdist). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(bash "$root/scripts/venv.sh")"
cd "$root"
"$venv/bin/ruff" check --quiet . || { echo "ruff check failed: fix the lines above (ruff check --fix . fixes many)" >&2; exit 1; }
"$venv/bin/ruff" format --check --quiet . || { echo "ruff format: run 'ruff format .'" >&2; exit 1; }
# The layering (ARCHITECTURE.md, contracts in pyproject.toml): no module imports a layer above it.
if ! layers="$("$venv/bin/lint-imports" --no-cache --no-logo 2>&1)"; then
  echo "$layers" | sed -n '/Broken contracts/,$p' >&2
  echo "lint-imports: an import runs against the layering above (ARCHITECTURE.md); move the code down or the import up" >&2
  exit 1
fi
exec "$venv/bin/python" -m pytest -q -n "${EMONET_TEST_WORKERS:-auto}" "$@"
