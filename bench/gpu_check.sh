#!/usr/bin/env bash
# Everything a GPU must show, in one prepared run of about six minutes on an H100: torch.cuda
# facts; `emonet extract --device cuda` against the CPU's store; `emonet train` in fp32, bf16 and
# fp16 (GradScaler) against the CPU; kill -9 then --resume; torchrun with nccl (one rank, two
# ranks on one GPU, else gloo); throughput of the default cnn and the loader's data-wait share
# with -j 0/2/4/8; `emonet evaluate` / `emonet predict` on the GPU against the CPU's labels.
# Figures: OUT/results.json, OUT/summary.txt (the short table), OUT/logs/. bench/gpu_check.py
# holds the steps; bench/README.md ("GPU check") what they measure.
#
# Usage: bash bench/gpu_check.sh [OUT]   (OUT: $OUT if set, else the argument, else bench/out/gpu-check)
#   On a machine without CUDA it checks that its steps are wired (every command line parsed by
#   emonet's CLI, the benchmarks' code through one tiny CPU step), says so in one line, exits 0.
#   GPU_CHECK_DEVICE=cpu: every step for real on the CPU with tiny sizes (the dry run: a typo
#   must not cost GPU minutes). GPU_CHECK_STEPS=extract,train,...: a subset.
#   GPU_CHECK_INSTALL=1: install emonet as on a GPU machine even where it is importable.
# On a machine that reaches no package registry (the lent GPU machines: torch and most
# dependencies in the image, not zarr, numcodecs, webdataset, soundfile) it installs the missing
# wheels from bench/wheels/ (fill it here with bench/gpu_wheels.sh; carry it along) and emonet
# itself with pip --no-deps into a temporary folder on PYTHONPATH: no torch, nothing built.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "gpu_check: $*" >&2; exit 1; }

# --- what it relies on, first
py="${GPU_CHECK_PYTHON:-}"
if [[ -z $py ]]; then
    if [[ -x $root/.venv/bin/python ]]; then py="$root/.venv/bin/python"; else py=python3; fi
fi
command -v "$py" > /dev/null || die "no $py (set GPU_CHECK_PYTHON)"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 12))' || die "$py is Python $("$py" -V 2>&1); emonet needs >= 3.12"
missing=$("$py" -c '
import importlib.util as u
print(" ".join(m for m in ("torch", "torchaudio", "numpy", "typer", "rich", "yaml", "safetensors", "matplotlib", "pandas", "tensorboard") if u.find_spec(m) is None))')
[[ -z $missing ]] || die "$py lacks $missing (these come with the machine's image, never from bench/wheels)"
cuda=$("$py" -c 'import torch; print(int(torch.cuda.is_available()))') || die "$py cannot import torch"
device="${GPU_CHECK_DEVICE:-cuda}"
case $device in
    cuda | cpu) ;;
    *) die "GPU_CHECK_DEVICE must be cuda or cpu, got '$device'" ;;
esac
out="${OUT:-${1:-$root/bench/out/gpu-check}}"
mkdir -p "$out" 2> /dev/null || die "cannot make the output folder $out"
out="$(cd "$out" && pwd)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$tmp"  # not the repository root, whose emonet/ would shadow the installed one (python -m, -c)

# --- emonet and the dependencies the image lacks
deps_ok() { "$py" -c 'import emonet, zarr, numcodecs, webdataset, soundfile, sys; sys.exit(not emonet.__file__.startswith(sys.argv[1]))' "$1" 2> /dev/null; }
if [[ ${GPU_CHECK_INSTALL:-0} == 1 ]] || ! deps_ok "$root/emonet"; then
    wheels="$root/bench/wheels"
    compgen -G "$wheels/*.whl" > /dev/null || die "no wheels in bench/wheels (run bash bench/gpu_wheels.sh on a machine with PyPI, carry bench/wheels)"
    site="$tmp/site"
    mkdir "$tmp/src" && cp -r "$root/pyproject.toml" "$root/README.md" "$root/emonet" "$tmp/src/"
    if "$py" -m pip --version > /dev/null 2>&1; then
        "$py" -m pip install --quiet --no-index --no-deps --disable-pip-version-check --target "$site" "$wheels"/*.whl \
            > "$tmp/pip.log" 2>&1 || die "installing bench/wheels failed: $(tail -n 1 "$tmp/pip.log")"
        PYTHONPATH="$site" "$py" -m pip install --quiet --no-index --no-deps --no-build-isolation \
            --disable-pip-version-check --target "$site" "$tmp/src" > "$tmp/pip.log" 2>&1 \
            || die "installing emonet failed: $(tail -n 1 "$tmp/pip.log")"
    else  # no pip in the image: a wheel is a zip to unpack, emonet a folder to copy
        for w in "$wheels"/*.whl; do "$py" -m zipfile -e "$w" "$site" || die "cannot unpack $w"; done
        cp -r "$tmp/src/emonet" "$site/"
    fi
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    if ! deps_ok "$site/emonet"; then
        why=$("$py" -c 'import emonet, zarr, numcodecs, webdataset, soundfile; print(emonet.__file__)' 2>&1 | tail -n 1)
        die "emonet and its dependencies do not import from $site: $why (an editable emonet in $py wins: set GPU_CHECK_PYTHON)"
    fi
fi

if [[ $device == cuda && $cuda != 1 ]]; then
    "$py" "$root/bench/gpu_check.py" --wire --device cuda --out "$out" --work "$tmp" \
        || die "its steps are not wired (above); nothing was measured"
    echo "gpu_check: no CUDA device here (torch $("$py" -c 'import torch; print(torch.__version__)')); its steps are wired (command lines parsed, benchmark code run on the CPU); nothing measured"
    exit 0
fi
size=full
[[ $device == cpu ]] && size=tiny
steps=()
[[ -n ${GPU_CHECK_STEPS:-} ]] && steps=(--steps "$GPU_CHECK_STEPS")
"$py" "$root/bench/gpu_check.py" --device "$device" --size "$size" --out "$out" --work "$tmp/work" "${steps[@]}"
