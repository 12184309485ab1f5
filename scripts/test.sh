#!/usr/bin/env bash
# Sets up the environment if needed (see scripts/venv.sh), then runs the test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(bash "$root/scripts/venv.sh")"
cd "$root"
exec "$venv/bin/python" -m pytest -q "$@"
