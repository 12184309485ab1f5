#!/usr/bin/env bash
# Ensures this clone's virtual environment (.venv, with this clone's emonet installed editable)
# and prints its path.
#
# Two layers, so that set-up is fast and every clone runs its own code:
# - the dependencies (torch, zarr, ... everything pyproject.toml asks for, but not emonet) live
#   in one venv outside the clone, keyed by a hash of the dependency files and shared by all
#   clones: built once (a few minutes), then reused by CI and every other clone;
# - .venv in the clone is a small venv of its own whose site-packages reaches the shared one
#   through a .pth file, with this clone's emonet installed editable (a few seconds). A clone
#   never re-points another clone's install, and deleting a clone breaks nothing else.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
extras="${EMONET_EXTRAS:-test}"
# Key: what the install depends on (pyproject.toml up to its first [tool.*] table, so lint and
# test settings do not rebuild the venv), the constraints file and this script.
key="$( { sed '/^\[tool\./,$d' pyproject.toml; cat constraints.txt scripts/venv.sh; } | sha256sum | cut -c1-16)-${extras//,/_}"
base="${EMONET_VENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/emonet/venvs}"
deps="$base/$key"
local_venv="$root/.venv"

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

# The requirement strings of pyproject.toml's dependencies and the chosen extras, one a line.
requirements() {
  "$1" - "$extras" <<'EOF'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
reqs = list(project["dependencies"])
for extra in filter(None, sys.argv[1].split(",")):
    reqs += project["optional-dependencies"][extra]
print("\n".join(reqs + ["setuptools>=77"]))  # the editable install then builds without network
EOF
}

build_deps() {
  py="$(find_python)" || { echo "error: emonet needs Python >= 3.12 (set EMONET_PYTHON=/path/to/python3.12)" >&2; exit 2; }
  echo "building the dependency venv $deps with $py (first run only, a few minutes)" >&2
  rm -rf "$deps.tmp"
  $py -m venv "$deps.tmp"
  "$deps.tmp/bin/python" -m pip install -q --upgrade pip >&2
  requirements "$deps.tmp/bin/python" > "$deps.tmp/requirements.txt"
  "$deps.tmp/bin/python" -m pip install -q -r "$deps.tmp/requirements.txt" -c constraints.txt >&2
  printf '#!/bin/sh\nexit 0\n' > "$deps.tmp/.ready"; chmod +x "$deps.tmp/.ready"
  rm -rf "$deps"; mv "$deps.tmp" "$deps"
  # venv scripts hard-code their interpreter path; rewrite it after the move.
  sed -i "s#$deps.tmp#$deps#g" "$deps"/bin/* 2>/dev/null || true
}

build_local() {
  echo "linking $local_venv to the dependency venv and installing this clone's emonet" >&2
  rm -rf "$local_venv" "$local_venv.tmp"
  "$deps/bin/python" -m venv --without-pip "$local_venv.tmp"
  site="$("$local_venv.tmp/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
  deps_site="$("$deps/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
  # addsitedir also runs the shared site-packages' own .pth files.
  echo "import site; site.addsitedir('$deps_site')" > "$site/_emonet_deps.pth"
  echo "$key" > "$local_venv.tmp/.deps-key"
  mv "$local_venv.tmp" "$local_venv"
  "$local_venv/bin/python" -m pip install -q --no-deps --no-build-isolation --no-index -e . >&2
  # The dependencies' commands (ruff, torchrun, tensorboard, ...), run by this venv's python so
  # that they see this clone's emonet.
  for script in "$deps"/bin/*; do
    name="$(basename "$script")"
    [ -e "$local_venv/bin/$name" ] && continue
    case "$name" in activate* | Activate* | python* | pip*) continue ;; esac
    if head -c 2 "$script" | grep -q '#!'; then
      sed "1s#^\#!.*#\#!$local_venv/bin/python#" "$script" > "$local_venv/bin/$name"
      chmod +x "$local_venv/bin/$name"
    else
      ln -s "$script" "$local_venv/bin/$name"  # a native binary (ruff)
    fi
  done
}

mkdir -p "$base"
exec 9>"$base/.lock-$key"
flock 9   # one builder at a time; others wait and then reuse the result
[ -x "$deps/.ready" ] || build_deps
exec 9>&-
[ -L "$local_venv" ] && rm -f "$local_venv"   # an older layout linked .venv to the shared venv
exec 8>"$root/.venv.lock"
flock 8   # two set-ups of one clone at once: one builds, the other reuses
if [ "$(cat "$local_venv/.deps-key" 2>/dev/null)" != "$key" ] \
  || ! "$local_venv/bin/python" -c "import emonet, pathlib, sys; sys.exit(0 if pathlib.Path(emonet.__file__).resolve().parent == pathlib.Path('$root/emonet').resolve() else 1)" 2>/dev/null; then
  build_local
fi
echo "$local_venv"
