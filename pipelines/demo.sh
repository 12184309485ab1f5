#!/usr/bin/env bash
# The main job end to end on the built-in demo corpus, from nothing: the environment, then
# pipelines/demo.yaml (demo corpus -> feature store -> multi-task training -> adapters for a
# held-back task -> evaluation), ending with the results table.
# Usage: bash pipelines/demo.sh [WORKDIR]      (default: ./demo; a re-run skips what is up to date)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(bash "$root/scripts/venv.sh")"
exec "$venv/bin/emonet" run "$root/pipelines/demo.yaml" --workdir "${1:-$root/demo}"
