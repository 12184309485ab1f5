#!/usr/bin/env bash
# The docker image built and run on this machine, by hand: builds docker/Dockerfile with podman
# on a locally made base (Docker Hub need not be reachable; Debian's archive and PyPI must be),
# runs the container as its non-root user with /data, /stores and /experiments mounted from
# temporary host folders, runs the demo pipeline's steps inside it (demo corpus, extract,
# multi-task train, evaluate, predict on a wav written on the host), checks that the files
# landed in the host folders owned by the image's user, and prints the image size and the time
# of each step. Minutes long (the image holds torch with its CUDA libraries) and needs root.
#
# Usage: bash docker/smoke.sh
#   SMOKE_BASE=IMAGE        build on this base instead (e.g. python:3.12-slim where a registry is
#                           reachable); default: a Debian 13 (trixie) minbase root made with
#                           debootstrap and `podman import`ed as localhost/emonet-smoke-base:trixie
#                           (python3.13 + python3-venv from Debian's archive), made once and reused
#   SMOKE_REBUILD_BASE=1    make that base again
#   SMOKE_CLEAN=1           remove the built image (and the made base) at the end
# Needs: root, podman, runc, debootstrap (apt-get install -y podman buildah runc debootstrap).
# Containers run with runc (crun refuses some VMs' cgroup layout) and, unless CONTAINERS_CONF is
# set, a containers.conf with `default_ulimits = []`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "smoke: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (podman builds and runs rootful containers here)"
for tool in podman runc python3; do
    command -v "$tool" > /dev/null || die "$tool not found (apt-get install -y podman buildah runc debootstrap)"
done
base_made=localhost/emonet-smoke-base:trixie
image=localhost/emonet:smoke
base="${SMOKE_BASE:-$base_made}"

tmp="$(mktemp -d /tmp/emonet-smoke.XXXXXX)"
cleanup() {
    rm -rf "$tmp"
    if [[ ${SMOKE_CLEAN:-0} == 1 ]]; then
        podman rmi -f "$image" > /dev/null 2>&1 || true
        [[ -n ${SMOKE_BASE:-} ]] || podman rmi -f "$base_made" > /dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z ${CONTAINERS_CONF:-} ]]; then
    printf '[containers]\ndefault_ulimits = []\n' > "$tmp/containers.conf"
    export CONTAINERS_CONF="$tmp/containers.conf"
fi
pm() { nice podman --runtime runc "$@"; }  # every step niced: the machine is shared

declare -a names=() secs=()
timed() {  # timed NAME COMMAND...: run it, remember its wall time
    local name="$1" t0 t1
    shift
    echo "== $name"
    t0=$(date +%s.%N)
    "$@"
    t1=$(date +%s.%N)
    names+=("$name")
    secs+=("$(python3 -c "print(f'{$t1 - $t0:.1f}')")")
    echo "   ${secs[-1]} s"
}

make_base() {
    command -v debootstrap > /dev/null || die "debootstrap not found (apt-get install -y debootstrap)"
    nice debootstrap --variant=minbase --include=python3,python3-venv,passwd \
        trixie "$tmp/rootfs" http://deb.debian.org/debian > "$tmp/debootstrap.log" 2>&1 \
        || die "debootstrap failed: $(tail -n 1 "$tmp/debootstrap.log")"
    rm -rf "$tmp/rootfs/var/cache/apt/archives/"*.deb "$tmp/rootfs/var/lib/apt/lists/"*
    tar -C "$tmp/rootfs" -c . | pm import --change 'CMD ["/bin/bash"]' - "$base_made" > /dev/null
    rm -rf "$tmp/rootfs"
}
if [[ $base == "$base_made" ]]; then
    if [[ ${SMOKE_REBUILD_BASE:-0} == 1 ]] || ! pm image exists "$base_made"; then
        timed "base: debootstrap trixie + podman import" make_base
    else
        echo "== base: $base_made (made earlier; SMOKE_REBUILD_BASE=1 makes it again)"
    fi
fi
echo "   base python: $(pm run --rm --network none --entrypoint python3 "$base" --version)"

# pip in the build trusts the host's CA bundle (a network whose proxy re-signs TLS; not baked in)
ca="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
trust=()
[[ -f $ca ]] && trust=(--volume "$ca:/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt)
timed "build docker/Dockerfile (BASE=$base)" \
    pm build --network host "${trust[@]}" --build-arg "BASE=$base" -f "$root/docker/Dockerfile" -t "$image" "$root"
size=$(pm image inspect --format '{{.Size}}' "$image")
uid=$(pm run --rm --network none --entrypoint id "$image" -u)
[[ $uid != 0 ]] || die "the image runs as root"

# host folders, owned by the image's user as on a server; a wav made on the host, read-only
for d in data stores experiments; do mkdir "$tmp/$d" && chown "$uid:$uid" "$tmp/$d"; done
mkdir "$tmp/clips"
python3 - "$tmp/clips/host.wav" << 'EOF'
import math, struct, sys, wave
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1), w.setsampwidth(2), w.setframerate(22050)  # not 16 kHz: predict resamples
    w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 220 * i / 22050))) for i in range(44100)))
EOF
chmod -R a+rX "$tmp/clips"
run_with() {  # run_with ENTRYPOINT ARGS...: no network; loader workers need more than 64 MB of /dev/shm
    local entry="$1"
    shift
    pm run --rm --network none --shm-size=1g -v "$tmp/data:/data" -v "$tmp/stores:/stores" \
        -v "$tmp/experiments:/experiments" -v "$tmp/clips:/clips:ro" --entrypoint "$entry" "$image" "$@"
}
run() { run_with emonet "$@"; }

# the steps of pipelines/demo.yaml, with the three volumes: corpus -> store -> multi-task model -> test scores;
# then torchrun (the image's multi-node entrypoint, here 2 CPU ranks) and predict on the host's wav
timed "demo-data" run demo-data /data/corpus
timed "extract" run extract --store /stores/demo --data-path /data/corpus/data \
    --multi-task-setup /data/corpus/multi-task-setup --tasks acted arousal valence --quiet
timed "train (multi-task, 4 epochs)" run train --store /stores/demo --tasks acted arousal --mode adapters \
    -N 1 -nf 8 -w 2.0 -bs 32 -spe 12 -lr 0.02 -e 4 -ebp /experiments --run-name multi-task --quiet
timed "evaluate" run evaluate --model /experiments/multi-task/best.safetensors --store /stores/demo --partition test
timed "torchrun, 2 ranks (gloo), 1 loader worker each" run_with torchrun --standalone --nproc_per_node 2 -m emonet \
    train --store /stores/demo --tasks valence -N 1 -nf 8 -w 2.0 -bs 16 -spe 6 -e 2 -ebp /experiments \
    --run-name ddp --device cpu -j 1 --quiet
timed "predict (host wav)" run predict --model /experiments/multi-task/best.safetensors /clips/host.wav \
    --output /experiments/host-predictions.csv

for f in data/corpus/multi-task-setup stores/demo experiments/multi-task/best.safetensors \
    experiments/multi-task/evaluate-test/results.json experiments/ddp/results.json experiments/host-predictions.csv; do
    [[ -e $tmp/$f ]] || die "missing on the host: $f"
done
grep -q host.wav "$tmp/experiments/host-predictions.csv" || die "host-predictions.csv does not name host.wav"
foreign=$(find "$tmp/data" "$tmp/stores" "$tmp/experiments" ! -uid "$uid" | head -n 3)
[[ -z $foreign ]] || die "files not owned by uid $uid: $foreign"
count=$(find "$tmp/data" "$tmp/stores" "$tmp/experiments" -type f | wc -l)

echo
echo "image $image on $base: $(python3 -c "print(f'{$size / 1e9:.2f} GB')") ($size bytes)"
echo "files written in the host folders: $count, all owned by uid $uid"
echo "predictions for the host wav:"
sed 's/^/    /' "$tmp/experiments/host-predictions.csv"
echo "cpu: $(grep -m 1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| step | seconds |\n| --- | ---: |\n'
for i in "${!names[@]}"; do printf '| %s | %s |\n' "${names[$i]}" "${secs[$i]}"; done
echo "smoke: ok"
