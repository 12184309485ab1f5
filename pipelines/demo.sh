#!/usr/bin/env bash
# The main job end to end on the built-in demo corpus, from nothing:
# environment -> demo corpus -> feature store (-> training and evaluation as they land).
# Usage: bash pipelines/demo.sh [WORKDIR]      (default: ./demo)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(bash "$root/scripts/venv.sh")"
emonet="$venv/bin/emonet"
work="${1:-$root/demo}"
mkdir -p "$work"

echo "== 1/2 demo corpus -> $work/corpus"
[ -f "$work/corpus/multi-task-setup/acted/train.csv" ] || "$emonet" demo-data "$work/corpus"

echo "== 2/2 extract log-mel features -> $work/features"
"$emonet" extract --store "$work/features" --data-path "$work/corpus/data" \
  --multi-task-setup "$work/corpus/multi-task-setup" --tasks acted arousal valence

"$emonet" info "$work/features"
