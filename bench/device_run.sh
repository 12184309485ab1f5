#!/usr/bin/env bash
# One call of a lent GPU machine (bench/README.md, "GPU check"): bench/gpu_check.sh's steps on all
# CPUs but two, and at the same time the CPU training step in fp32 and bf16 (bench_speed.py compare,
# 2 threads) on two CPUs of distinct cores: the host of the lent GPUs is an AMX Xeon, a bf16-native
# CPU (issue 20). Everything lands in $OUT as at most 8 files (the device tool's limit): cpu.txt
# (flags, topology), cpu_bf16.txt, results.json, summary.txt, run.log, logs.tgz, refreshed every 10 s
# so a call cut short returns what it had. Run from the repository root with bench/wheels carried.
# GPU_CHECK_STEPS (default extract,train,resume,ddp,data_wait), GC_LIMIT (s, default 380).
set -u
: "${OUT:?OUT must name the folder to return}"
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --disable-pip-version-check --target /tmp/site bench/wheels/*.whl > /dev/null 2>&1
export PYTHONPATH=/tmp/site:$PWD
grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E 'avx512|amx|avx2' | tr '\n' ' ' > $OUT/cpu.txt
grep -m1 'model name' /proc/cpuinfo >> $OUT/cpu.txt; grep -m1 -E '^model\s' /proc/cpuinfo >> $OUT/cpu.txt
lscpu -p=CPU,CORE,SOCKET | grep -v '^#' > /tmp/topo.txt
read C R < <(python3 - <<'PY'
rows = [tuple(map(int, l.split(",")[:2])) for l in open("/tmp/topo.txt")]
cores = list(dict.fromkeys(c for _, c in rows))[:2]
first = [next(cpu for cpu, c in rows if c == k) for k in cores]
rest = [cpu for cpu, c in rows if c not in cores]
print(",".join(map(str, first)), ",".join(map(str, rest)))
PY
)
echo "bench cpus $C (cores distinct), gpu_check cpus $R" >> $OUT/cpu.txt; cat /tmp/topo.txt | tr '\n' ' ' >> $OUT/cpu.txt
root=$PWD
(cd /tmp && timeout -s KILL 390 taskset -c $C python3 $root/bench/bench_speed.py compare --variants mallopt+t2,mallopt+bf16+t2 --batch ${BENCH_BATCH:-64} --padded --rounds 3 --steps 2 --warmup 1 > $OUT/cpu_bf16.txt 2>&1) &
bpid=$!
G=/tmp/gc; mkdir -p $G
(while sleep 10; do tar czf $OUT/logs.tgz -C $G logs 2> /dev/null; cp $G/results.json $G/summary.txt $OUT/ 2> /dev/null; done) &
GPU_CHECK_STEPS=${GPU_CHECK_STEPS:-extract,train,resume,ddp,data_wait} timeout -s KILL ${GC_LIMIT:-380} ${R:+taskset -c $R} env OUT=$G bash bench/gpu_check.sh $G 2>&1 | tee $OUT/run.log
tar czf $OUT/logs.tgz -C $G logs; cp $G/results.json $G/summary.txt $OUT/
wait $bpid; cat $OUT/cpu_bf16.txt | tail -6
