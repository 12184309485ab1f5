#!/usr/bin/env bash
# Fills bench/wheels/ (git-ignored) with the wheels bench/gpu_check.sh installs on a GPU machine
# that reaches no package registry: emonet's runtime dependencies that such a machine's image
# lacks (its image has Python 3.12 with torch, torchaudio, numpy, typer, rich, pyyaml,
# safetensors, matplotlib, tensorboard and pandas), at constraints.txt's versions, plus setuptools
# to build emonet itself. A few MB; never torch. Take the folder along with the working tree.
# Usage: bash bench/gpu_wheels.sh [PYTHON_VERSION]   (default 3.12, the GPU image's)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${1:-3.12}"
[[ $py =~ ^3\.[0-9]+$ ]] || { echo "gpu_wheels: PYTHON_VERSION must look like 3.12, got '$py'" >&2; exit 2; }
pip=("$root/.venv/bin/python" -m pip)
[[ -x $root/.venv/bin/python ]] || pip=(python3 -m pip)
# the runtime dependencies of emonet the GPU image lacks, and theirs (pyproject.toml, pip show)
names=(zarr numcodecs isal webdataset soundfile donfig google-crc32c msgspec braceexpand cffi pycparser
    typing_extensions packaging setuptools)
pins=()
for n in "${names[@]}"; do
    pin=$(grep -i -E "^${n//[-_]/[-_]}==" "$root/constraints.txt" || true)
    [[ -n $pin ]] || { echo "gpu_wheels: $n has no pin in constraints.txt" >&2; exit 1; }
    pins+=("$pin")
done
dest="$root/bench/wheels"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT INT TERM
"${pip[@]}" download --quiet --no-deps --only-binary=:all: --python-version "$py" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --implementation cp -d "$tmp" "${pins[@]}"
rm -rf "$dest" && mkdir -p "$dest" && mv "$tmp"/*.whl "$dest/"
size=$(du -sm "$dest" | cut -f1)
ls "$dest"
echo "bench/wheels: $(find "$dest" -name "*.whl" | wc -l) wheels, ${size} MiB (at most 64 MiB travel with the tree)"
(( size < 32 )) || { echo "gpu_wheels: ${size} MiB is too close to the 64 MiB carry limit" >&2; exit 1; }
