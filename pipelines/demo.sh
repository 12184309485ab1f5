#!/usr/bin/env bash
# The main job end to end on the built-in demo corpus, from nothing:
# environment -> demo corpus -> feature store -> model (-> training and evaluation as they land).
# Usage: bash pipelines/demo.sh [WORKDIR]      (default: ./demo)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$(bash "$root/scripts/venv.sh")"
emonet="$venv/bin/emonet"
work="${1:-$root/demo}"
mkdir -p "$work"

echo "== 1/3 demo corpus -> $work/corpus"
[ -f "$work/corpus/multi-task-setup/acted/train.csv" ] || "$emonet" demo-data "$work/corpus"

echo "== 2/3 extract log-mel features -> $work/features"
"$emonet" extract --store "$work/features" --data-path "$work/corpus/data" \
  --multi-task-setup "$work/corpus/multi-task-setup" --tasks acted arousal valence

echo "== 3/3 a residual-adapter model for the store's tasks -> $work/model.safetensors"
"$emonet" init-model "$work/model.safetensors" --store "$work/features" --mode adapters --overwrite
