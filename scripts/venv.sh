#!/usr/bin/env bash
# Ensures a virtual environment with emonet installed (editable) and prints its path.
# The venv lives outside the clone, keyed by a hash of the dependency files, so CI and
# repeated set-ups reuse it; it is built from nothing when absent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
extras="${EMONET_EXTRAS:-test}"
# Key: what the install depends on (pyproject.toml up to its first [tool.*] table, so lint and
# test settings do not rebuild the venv) and this script.
key="$( { sed '/^\[tool\./,$d' pyproject.toml; cat scripts/venv.sh; } | sha256sum | cut -c1-16)-${extras//,/_}"
base="${EMONET_VENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/emonet/venvs}"
venv="$base/$key"

find_python() {
  for cand in "${EMONET_PYTHON:-}" python3.12 python3.13 python3; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      echo "$cand"; return 0
    fi
  done
  # pyenv shims need a version selected; .python-version in the repo does that here.
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[2-9]' | sort -rV); do
      echo "env PYENV_VERSION=$v python"; return 0
    done
  fi
  return 1
}

mkdir -p "$base"
exec 9>"$base/.lock-$key"
flock 9   # one builder at a time; others wait and then reuse the result
if [ ! -x "$venv/.ready" ] ; then
  py="$(find_python)" || { echo "error: emonet needs Python >= 3.12 (set EMONET_PYTHON=/path/to/python3.12)" >&2; exit 2; }
  echo "building venv $venv with $py (first run only, a few minutes)" >&2
  rm -rf "$venv.tmp"
  $py -m venv "$venv.tmp"
  "$venv.tmp/bin/python" -m pip install -q --upgrade pip >&2
  "$venv.tmp/bin/python" -m pip install -q -e ".[${extras}]" >&2
  printf '#!/bin/sh\nexit 0\n' > "$venv.tmp/.ready"; chmod +x "$venv.tmp/.ready"
  rm -rf "$venv"; mv "$venv.tmp" "$venv"
  # venv scripts hard-code their interpreter path; rewrite it after the move.
  sed -i "s#$venv.tmp#$venv#g" "$venv"/bin/* 2>/dev/null || true
fi
# The editable install points at whichever clone built the venv; re-point it at this one.
if ! "$venv/bin/python" -c "import emonet, pathlib, sys; sys.exit(0 if pathlib.Path(emonet.__file__).resolve().parent == pathlib.Path('$root/emonet').resolve() else 1)" 2>/dev/null; then
  "$venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e . >&2 || "$venv/bin/python" -m pip install -q --no-deps -e . >&2
fi
ln -sfn "$venv" "$root/.venv"
echo "$venv"
