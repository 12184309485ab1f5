"""The steps of bench/gpu_check.sh (run that script: it checks the machine and sets up emonet).

Every CUDA path of emonet in one run of about six minutes on an H100, each step against the
CPU: torch.cuda facts; `emonet extract --device cuda` vs the CPU's store; `emonet train` in
fp32, bf16 and fp16 (GradScaler); kill -9 and --resume; torchrun (nccl, and two ranks on one
GPU); throughput of the default cnn (fp32/bf16, channels_last/contiguous) and the loader's
data-wait share with 0-8 workers; `emonet evaluate` and `emonet predict` on the GPU vs the CPU.

A failing step is recorded (its error, its log's last lines) and the next one runs: GPU minutes
are scarce, one run should show every problem at once. results.json is rewritten after each
step, so a run cut short keeps what it measured; summary.txt is the short table.

Modes: --device cuda (the real run), --device cpu --size tiny (the same steps on the CPU, tiny:
what the test runs so that a typo never costs GPU minutes), --wire (no step runs: every command
line is parsed by emonet's own CLI parser and the in-process benchmarks take one tiny step).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

TINY_CNN = {"n_blocks": 1, "n_filters": 4}  # the dry run's and the wire check's model
SIZES = {
    # files per task of the demo corpus (3 tasks), train epochs / steps / batch, the epoch after
    # which the resume run is killed, throughput batch / steps, loader steps, predict files
    "full": dict(
        files=300,
        min_s=1.0,
        max_s=5.0,
        epochs=6,
        spe=24,
        bs=32,
        kill_after=3,
        tp_batch=64,
        tp_steps=40,
        tp_warmup=8,
        wait_steps=80,
        workers=[0, 2, 4, 8],
        predict=48,
        tp_model={},  # the default cnn
        uar_tol=0.2,  # |UAR - the CPU run's| on 60 test clips of 4 classes after 6 short epochs
    ),
    "tiny": dict(
        files=24,
        min_s=1.0,
        max_s=3.0,
        epochs=3,
        spe=2,
        bs=8,
        kill_after=1,
        tp_batch=4,
        tp_steps=2,
        tp_warmup=1,
        wait_steps=3,
        workers=[0, 2],
        predict=4,
        tp_model=TINY_CNN,  # the default cnn takes seconds a step on a loaded 2-core CPU
        uar_tol=1.0,  # 8 test clips: any UAR is noise
    ),
}
FRAMES, MELS = 126, 128  # a 4 s window of the default features (16 kHz, hop 512)
TASK = "acted"
# extract: a stored log-mel may differ from the CPU's by one float16 step (two float32 values
# either side of a rounding boundary) plus this much: float32 arithmetic in another FFT and
# another order of sums. On the CPU, float32 log-mels differ from float64 ones by at most
# 1.2e-4 (40 demo clips); near ln(mel + 1e-6) = 0 a float16 step is far finer than that, so a
# bound in float16 steps alone fails there (the first H100 run: 42 steps, 4e-5 at most).
EXTRACT_ATOL = 1e-3
TIMEOUT_S = 240  # one command's limit (a whole run is about ten minutes)


class Check:
    def __init__(self, out: Path, work: Path, device: str, size: str):
        self.out, self.work, self.device, self.s = out, work, device, SIZES[size]
        self.size = size
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.results: dict = {"device": device, "size": size, "steps": {}}
        self.corpus, self.runs = work / "corpus", work / "runs"
        self.store = {"cpu": work / "store-cpu", device: work / f"store-{device}"}

    # ------------------------------------------------------------------ plumbing
    def emonet(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "emonet", *map(str, args)]

    def sh(
        self, name: str, cmd: list[str], env: dict | None = None, check: bool = True, timeout: float = 0
    ) -> subprocess.CompletedProcess:
        """Run one command, its output to logs/NAME.log; raise with the log's tail on failure.
        Past TIMEOUT_S its whole process group is killed (a hung collective must not eat the run)."""
        log = self.logs / f"{name}.log"
        with log.open("a") as f:
            f.write(f"$ {' '.join(cmd)}\n")
            f.flush()
            env = {**os.environ, **(env or {})}
            p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            try:
                code = p.wait(timeout=timeout or TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                f.write(f"gpu_check: killed after {timeout or TIMEOUT_S} s\n")
                code = -9
        if check and code != 0:
            raise RuntimeError(f"exit {code}: {' '.join(map(str, cmd[2:6]))} ...: {tail(log)}")
        return subprocess.CompletedProcess(cmd, code)

    def save(self) -> None:
        (self.out / "results.json").write_text(json.dumps(self.results, indent=1, default=str) + "\n")

    def step(self, name: str, fn) -> None:
        t0 = time.perf_counter()
        print(f"gpu_check: {name} ...", flush=True)
        try:
            figures = fn() or {}
            ok = figures.pop("ok", True)
            rec = {"ok": bool(ok), **figures}
        except Exception as exc:  # a failed step is a result: record it and go on
            (self.logs / f"{name}.traceback").write_text(traceback.format_exc())
            rec = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        rec["seconds"] = round(time.perf_counter() - t0, 1)
        self.results["steps"][name] = rec
        self.save()
        print(f"gpu_check: {name}: {'ok' if rec['ok'] else 'FAILED'} ({rec['seconds']} s)", flush=True)

    def train_args(self, run: str, device: str, precision: str = "fp32", deterministic: bool = False) -> list[str]:
        s = self.s
        return [
            "train",
            "--store",
            self.store[self.device],
            "--tasks",
            TASK,
            "-N",
            "1",
            "-nf",
            "8",
            "-w",
            "2.0",
            "-bs",
            s["bs"],
            "-spe",
            s["spe"],
            "-lr",
            "0.02",
            "-e",
            s["epochs"],
            "-ebp",
            self.runs,
            "--run-name",
            run,
            "--seed",
            "0",
            "--device",
            device,
            "--precision",
            precision,
            *(["--deterministic"] if deterministic else []),
            "-q",
        ]

    # ------------------------------------------------------------------ steps
    def facts(self) -> dict:
        import torch

        f = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda_available": torch.cuda.is_available()}
        try:
            import torchaudio

            f["torchaudio"] = torchaudio.__version__
        except Exception as exc:
            f["torchaudio"] = f"not importable: {exc}"
        if self.device == "cuda":
            p = torch.cuda.get_device_properties(0)
            f.update(
                device_name=p.name,
                memory_gib=round(p.total_memory / 2**30, 1),
                capability=f"{p.major}.{p.minor}",
                multiprocessors=p.multi_processor_count,
                device_count=torch.cuda.device_count(),
                cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version(),
                bf16=torch.cuda.is_bf16_supported(),
                nccl=nccl_version(),
            )
            smi = shutil.which("nvidia-smi")
            if smi:
                q = "name,driver_version,memory.total,power.limit,clocks.max.sm"
                f["nvidia_smi"] = subprocess.run(
                    [smi, f"--query-gpu={q}", "--format=csv,noheader"], capture_output=True, text=True
                ).stdout.strip()
        f["cpu"] = cpu_name()
        f["cpu_count"] = os.cpu_count()
        return f

    def extract(self) -> dict:
        s = self.s
        self.sh(
            "extract",
            self.emonet(
                "demo-data", self.corpus, "-n", s["files"], "--min-seconds", s["min_s"], "--max-seconds", s["max_s"]
            ),
        )
        seconds = {}
        for dev in dict.fromkeys(("cpu", self.device)):
            t0 = time.perf_counter()
            self.sh(
                "extract",
                self.emonet(
                    "extract",
                    "--store",
                    self.store[dev],
                    "--data-path",
                    self.corpus / "data",
                    "-mts",
                    self.corpus / "multi-task-setup",
                    "--tasks",
                    "acted",
                    "arousal",
                    "valence",
                    "--device",
                    dev,
                    "-q",
                ),
            )
            seconds[dev] = round(time.perf_counter() - t0, 1)
        diff = compare_stores(self.store["cpu"], self.store[self.device])
        return {"ok": diff["max_excess_over_1ulp"] <= EXTRACT_ATOL, "seconds_by_device": seconds, **diff}

    def train(self) -> dict:
        out = {}
        d = (
            self.device
        )  # the device's runs are dev-*, the CPU reference ref-cpu-fp32 (the dry mode runs both on the CPU)
        runs = [
            ("ref-cpu-fp32", "cpu", "fp32", False),
            (f"dev-{d}-fp32", d, "fp32", False),
            (f"dev-{d}-fp32-again", d, "fp32", False),
            (f"dev-{d}-fp32-det", d, "fp32", True),
            (f"dev-{d}-fp32-det-again", d, "fp32", True),
            (f"dev-{d}-bf16", d, "bf16", False),
        ]
        if d == "cuda":
            runs.append(("dev-cuda-fp16", "cuda", "fp16", False))  # GradScaler: CUDA only
        for run, dev, prec, det in runs:
            t0 = time.perf_counter()
            self.sh("train", self.emonet(*self.train_args(run, dev, prec, det)))
            out[run] = run_figures(self.runs / run) | {"seconds": round(time.perf_counter() - t0, 1)}
        ref = out["ref-cpu-fp32"]["test_uar"]
        for r in out.values():
            r["test_uar_minus_cpu"] = round(r["test_uar"] - ref, 4)
        again = diff_results(self.runs / f"dev-{d}-fp32", self.runs / f"dev-{d}-fp32-again")
        det = diff_results(self.runs / f"dev-{d}-fp32-det", self.runs / f"dev-{d}-fp32-det-again")
        ok = (
            all(r["losses_finite"] for r in out.values())
            and all(abs(r["test_uar_minus_cpu"]) <= self.s["uar_tol"] for r in out.values())
            and det["identical"]  # --deterministic: the same seed, the same results bit for bit
        )
        return {"ok": ok, "runs": out, "same_run_twice": again, "same_run_twice_deterministic": det}

    def resume(self) -> dict:
        run = "killed"  # with --deterministic: the resumed run must equal the uninterrupted one exactly
        cmd = self.emonet(*self.train_args(run, self.device, deterministic=True))
        log = (self.logs / "resume.log").open("a")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        metrics, killed_at = self.runs / run / "metrics.csv", None
        while p.poll() is None:
            if metrics.exists() and len(metrics.read_text().splitlines()) > self.s["kill_after"]:
                os.kill(p.pid, signal.SIGKILL)
                killed_at = len(metrics.read_text().splitlines()) - 1
                break
            time.sleep(0.01)
        p.wait()
        log.close()
        if killed_at is None:
            ended = f"the run ended (exit {p.returncode}) before epoch {self.s['kill_after']}"
            raise RuntimeError(f"{ended}: {tail(self.logs / 'resume.log')}")
        self.sh("resume", self.emonet("train", "--resume", self.runs / run, "-q"))
        diff = diff_results(self.runs / f"dev-{self.device}-fp32-det", self.runs / run)
        return {"ok": diff["identical"], "killed_after_epoch": killed_at, "vs_uninterrupted": diff}

    def ddp(self) -> dict:
        out = {}
        backend = "nccl" if self.device == "cuda" else "gloo"
        tries = [
            ("1-rank", 1, self.device, {}),
            (f"2-ranks-{backend}", 2, f"{self.device}:0" if self.device == "cuda" else "cpu", {}),
        ]
        if self.device == "cuda":  # nccl refuses two ranks on one GPU: then gloo, with CUDA tensors
            tries.append(("2-ranks-gloo", 2, "cuda:0", {"EMONET_DIST_BACKEND": "gloo"}))
        for name, n, dev, env in tries:
            cmd = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node",
                str(n),
                "-m",
                "emonet",
                *map(str, self.train_args(f"ddp-{name}", dev)),
            ]
            t0 = time.perf_counter()
            p = self.sh("ddp", cmd, env=env, check=False, timeout=150)  # nccl may hang, not fail
            r = {"exit": p.returncode, "seconds": round(time.perf_counter() - t0, 1)}
            if p.returncode == 0:
                r |= run_figures(self.runs / f"ddp-{name}")
            else:
                r["log_tail"] = tail(self.logs / "ddp.log")
                # two ranks on one GPU with nccl: emonet's one line, not NCCL's traceback from every rank
                r["refused_in_one_line"] = "NCCL refuses two ranks on one GPU" in (self.logs / "ddp.log").read_text()
            out[name] = r
        two = [r for k, r in out.items() if k.startswith("2-")]
        clear = all(r["exit"] == 0 or r.get("refused_in_one_line") for r in two)  # a failure says why in one line
        return {"ok": out["1-rank"]["exit"] == 0 and any(r["exit"] == 0 for r in two) and clear, "runs": out}

    def throughput(self) -> dict:
        import torch

        dev, s = torch.device(self.device), self.s
        rows = {}
        with GpuUtil(self.device) as util:
            for fmt in ("contiguous", "channels_last"):
                for prec in ("fp32", "bf16"):
                    step = train_step(dev, fmt, prec, s["tp_batch"], s["tp_model"])
                    x, lengths, y = fake_batch(dev, s["tp_batch"])
                    for _ in range(s["tp_warmup"]):
                        step(x, lengths, y)
                    sync(dev)
                    util.start()
                    t0 = time.perf_counter()
                    for _ in range(s["tp_steps"]):
                        loss = step(x, lengths, y)
                    sync(dev)
                    wall = time.perf_counter() - t0
                    rows[f"{fmt}-{prec}"] = {
                        "samples_per_s": round(s["tp_steps"] * s["tp_batch"] / wall, 1),
                        "gpu_util_pct": util.stop(),
                        "loss_finite": math.isfinite(float(loss)),
                    }
        best = max(rows, key=lambda k: rows[k]["samples_per_s"])
        return {
            "batch": s["tp_batch"],
            "frames": FRAMES,
            "mels": MELS,
            "model": s["tp_model"] or "default cnn",
            "rows": rows,
            "fastest": best,
            "ok": all(r["loss_finite"] for r in rows.values()),
        }

    def data_wait(self) -> dict:
        """The trainer's loader (the store's read path) feeding the default cnn on the device
        at its fastest layout: the share of the wall time spent waiting for the next batch."""
        import torch

        from emonet.training.loader import ScheduledBatches, TaskSource, make_loader
        from emonet.training.streams import StreamSpec

        dev, s = torch.device(self.device), self.s
        fmt, prec = "channels_last", ("bf16" if self.device == "cuda" else "fp32")
        step = train_step(dev, fmt, prec, s["tp_batch"], s["tp_model"])
        rows = {}
        pins = (False, True) if self.device == "cuda" else (False,)  # page-locked batches: CUDA only
        with GpuUtil(self.device) as util:
            for j, pin in ((j, pin) for j in s["workers"] for pin in pins):
                data = ScheduledBatches(
                    [TaskSource(str(self.store[self.device]), StreamSpec(TASK, s["tp_batch"], FRAMES, 0, True))]
                )
                batches = make_loader(data, j, 0, pin_memory=pin)
                for _ in range(s["tp_warmup"]):  # workers started, first batches through
                    ((_, x, lengths, y),) = next(batches)
                    step(x.to(dev, non_blocking=True), lengths.to(dev), y.to(dev))
                sync(dev)
                util.start()
                wait, n, t0 = 0.0, 0, time.perf_counter()
                for _ in range(s["wait_steps"]):
                    w0 = time.perf_counter()
                    ((_, x, lengths, y),) = next(batches)
                    wait += time.perf_counter() - w0
                    n += len(y)
                    step(x.to(dev, non_blocking=True), lengths.to(dev), y.to(dev))
                sync(dev)
                wall = time.perf_counter() - t0
                del batches  # the workers end
                rows[f"j{j}" + ("-pinned" if pin else "")] = {
                    "data_wait_share": round(wait / wall, 3),
                    "samples_per_s": round(n / wall, 1),
                    "gpu_util_pct": util.stop(),
                }
        enough = [j for j in s["workers"] if rows[f"j{j}"]["data_wait_share"] < 0.10]
        return {
            "precision": prec,
            "memory_format": fmt,
            "batch": s["tp_batch"],
            "rows": rows,
            "fewest_workers_busy_over_90pct": enough[0] if enough else None,
        }

    def evaluate_predict(self) -> dict:
        model = self.runs / f"dev-{self.device}-fp32" / "best.safetensors"
        ev, pr = {}, {}
        wavs = sorted((self.corpus / "data").rglob("*.wav"))[: self.s["predict"]]
        for dev in dict.fromkeys(("cpu", self.device)):
            d = self.work / f"evaluate-{dev}"
            self.sh(
                "evaluate",
                self.emonet(
                    "evaluate",
                    "--model",
                    model,
                    "--store",
                    self.store[self.device],
                    "--partition",
                    "test",
                    "-o",
                    d,
                    "--device",
                    dev,
                ),
            )
            ev[dev] = read_csv(d / "predictions.csv")
            f = self.work / f"predict-{dev}.csv"
            self.sh("predict", self.emonet("predict", "--model", model, *wavs, "-o", f, "--device", dev))
            pr[dev] = read_csv(f)
        e, p = compare_predictions(ev["cpu"], ev[self.device]), compare_predictions(pr["cpu"], pr[self.device])
        return {"ok": e["labels_equal"] and p["labels_equal"], "evaluate": e, "predict": p}


# ---------------------------------------------------------------------- helpers
def tail(path: Path, n: int = 6) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return " | ".join(ln.strip() for ln in lines[-n:] if ln.strip())[-1500:]


def nccl_version() -> str:
    import torch

    try:
        v = torch.cuda.nccl.version()
    except Exception as exc:  # a torch built without nccl
        return f"none ({type(exc).__name__})"
    return ".".join(map(str, v)) if isinstance(v, tuple) else str(v)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def fake_batch(dev, batch: int):
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, FRAMES, MELS, generator=g).to(dev)
    lengths = torch.full((batch,), FRAMES, dtype=torch.long).to(dev)
    y = torch.randint(0, 4, (batch,), generator=g).to(dev)
    return x, lengths, y


def train_step(dev, memory_format: str, precision: str, batch: int, model: dict | None = None):
    """One SGD step of the default cnn (4 classes; ``model``: other ModelConfig fields), as the
    trainer takes it (autocast; fp16 would need the GradScaler, so the benchmark runs fp32 and bf16)."""
    import torch
    import torch.nn.functional as F

    from emonet.models import ModelConfig, build_model
    from emonet.utils.devices import autocast

    torch.manual_seed(0)
    model = build_model(ModelConfig(memory_format=memory_format, **(model or {})), {TASK: ["a", "b", "c", "d"]}).to(dev)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(x, lengths, y):
        opt.zero_grad(set_to_none=True)
        with autocast(dev, precision):
            logits = model(x, lengths, TASK)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


class GpuUtil:
    """GPU utilisation (%) sampled by nvidia-smi every 100 ms between start() and stop();
    None on the CPU or without nvidia-smi."""

    def __init__(self, device: str):
        self.smi = shutil.which("nvidia-smi") if device == "cuda" else None
        self.samples: list[float] = []
        self.on = False
        self.proc = None

    def __enter__(self):
        if self.smi:
            cmd = [self.smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0", "-lms", "100"]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            if self.on:
                try:
                    self.samples.append(float(line.strip()))
                except ValueError:
                    pass

    def start(self) -> None:
        self.samples, self.on = [], True

    def stop(self) -> float | None:
        self.on = False
        return round(sum(self.samples) / len(self.samples), 1) if self.samples else None

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()


def compare_stores(a: Path, b: Path) -> dict:
    """Max abs difference of the stored log-mels of two stores of the same corpus, in float16
    units in the last place (1 ulp: float16 rounding of slightly different float32 values)."""
    import numpy as np

    import emonet

    sa, sb = emonet.open_store(a), emonet.open_store(b)
    max_abs, max_ulps, excess, n, differ = 0.0, 0.0, 0.0, 0, 0
    for task in sa.tasks:
        for part in sa.partitions(task):
            pa, pb = sa.partition(task, part), sb.partition(task, part)
            if len(pa) != len(pb):
                raise RuntimeError(f"{task}/{part}: {len(pa)} vs {len(pb)} utterances")
            for i in range(len(pa)):
                xa, xb = pa.logmel(i, dtype=np.float16), pb.logmel(i, dtype=np.float16)
                if xa.shape != xb.shape:
                    raise RuntimeError(f"{task}/{part} #{i}: shapes {xa.shape} vs {xb.shape}")
                d = np.abs(xa.astype(np.float32) - xb.astype(np.float32))
                ulp = np.spacing(np.maximum(np.abs(xa), np.abs(xb))).astype(np.float32)
                max_abs = max(max_abs, float(d.max(initial=0)))
                max_ulps = max(max_ulps, float((d / ulp).max(initial=0)))
                excess = max(excess, float((d - ulp).max(initial=0)))
                n, differ = n + d.size, differ + int((d > 0).sum())
    return {
        "max_abs_diff": max_abs,
        "max_ulps": max_ulps,
        "max_excess_over_1ulp": max(excess, 0.0),  # the largest |a - b| beyond one float16 step
        "values": n,
        "share_differing": round(differ / max(n, 1), 6),
    }


def run_figures(run: Path) -> dict:
    res = json.loads((run / "results.json").read_text())[TASK]
    with (run / "metrics.csv").open() as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    return {
        "epochs": len(losses),
        "losses": [round(v, 4) for v in losses],
        "losses_finite": bool(losses) and all(math.isfinite(v) for v in losses),
        "devel_uar": round(res["devel"]["uar"], 4),
        "test_uar": round(res["test"]["uar"], 4),
    }


def _leaves(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, obj


def diff_results(a: Path, b: Path) -> dict:
    """results.json of two runs: identical, or the largest difference of a number in it."""
    ja, jb = (json.loads((r / "results.json").read_text()) for r in (a, b))
    la, lb = dict(_leaves(ja)), dict(_leaves(jb))
    worst, where = 0.0, None
    for k in la.keys() | lb.keys():
        va, vb = la.get(k), lb.get(k)
        if isinstance(va, int | float) and isinstance(vb, int | float) and not isinstance(va, bool):
            d = abs(float(va) - float(vb))
            if d > worst:
                worst, where = d, k
        elif va != vb:
            worst, where = math.inf, k
    return {"identical": ja == jb, "max_abs_diff": worst, "where": where}


def read_csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def compare_predictions(a: list[dict], b: list[dict]) -> dict:
    """Rows in the same order: the label columns equal, the largest difference of the others."""
    if len(a) != len(b):
        return {"labels_equal": False, "rows": [len(a), len(b)]}
    cols = list(a[0]) if a else []
    labels = [c for c in cols if "pred" in c.lower() or c.lower() in ("label", "class")]
    worst, differing = 0.0, 0
    for ra, rb in zip(a, b, strict=True):
        differing += any(ra[c] != rb[c] for c in labels)
        for c in cols:
            if c in labels:
                continue
            try:
                worst = max(worst, abs(float(ra[c]) - float(rb[c])))
            except (TypeError, ValueError):
                pass
    return {
        "rows": len(a),
        "label_columns": labels,
        "labels_equal": bool(labels) and differing == 0,
        "rows_differing": differing,
        "max_abs_diff_numbers": worst,
    }


def summary(results: dict) -> str:
    """The short text table of results.json."""
    st = results["steps"]
    lines = [f"gpu_check on {results['device']} ({results['size']} sizes)"]
    f = st.get("facts", {})
    lines.append(
        f"device: {f.get('device_name', 'cpu')}, torch {f.get('torch')}, cuda {f.get('cuda')}, "
        f"cudnn {f.get('cudnn')}, cpu: {f.get('cpu')} x{f.get('cpu_count')}"
    )
    lines.append("")
    lines.append(f"{'step':<18} {'ok':<4} {'s':>6}  figures")
    for name, r in st.items():
        if name == "facts":
            continue
        lines.append(f"{name:<18} {'ok' if r['ok'] else 'FAIL':<4} {r['seconds']:>6}  {brief(name, r)}")
    return "\n".join(lines) + "\n"


def brief(name: str, r: dict) -> str:
    if "error" in r:
        return r["error"][:160]
    if name == "extract":
        return (
            f"max abs diff {r['max_abs_diff']:.4g} ({r['max_ulps']:.2g} fp16 ulp), beyond 1 ulp "
            f"{r.get('max_excess_over_1ulp', float('nan')):.2g}, {r['share_differing']:.2%} differ"
        )
    if name == "train":
        return "; ".join(f"{k}: UAR {v['test_uar']:.3f}" for k, v in r["runs"].items()) + (
            f"; same run twice identical: {r['same_run_twice']['identical']}"
            f", with --deterministic: {r.get('same_run_twice_deterministic', {}).get('identical')}"
        )
    if name == "resume":
        return f"killed after epoch {r['killed_after_epoch']}; vs uninterrupted: {r['vs_uninterrupted']}"
    if name == "ddp":
        return "; ".join(f"{k}: exit {v['exit']}" for k, v in r["runs"].items())
    if name == "throughput":
        return "; ".join(f"{k} {v['samples_per_s']}/s util {v['gpu_util_pct']}" for k, v in r["rows"].items())
    if name == "data_wait":
        return "; ".join(f"{k}: wait {v['data_wait_share']:.0%} {v['samples_per_s']}/s" for k, v in r["rows"].items())
    if name == "evaluate_predict":
        return (
            f"evaluate labels equal {r['evaluate']['labels_equal']}, predict labels equal "
            f"{r['predict']['labels_equal']} (max prob diff {r['predict'].get('max_abs_diff_numbers')})"
        )
    return ""


STEPS = ["facts", "extract", "train", "resume", "ddp", "throughput", "data_wait", "evaluate_predict"]


def wire(device: str) -> int:
    """Every command line the run would give, parsed by emonet's own CLI parser (nothing runs),
    and the in-process benchmarks' code through one tiny step on the CPU."""
    import torch
    import typer

    from emonet.cli.app import app
    from emonet.cli.argv import expand_list_options, list_option_names

    work = Path(tempfile.mkdtemp())
    try:
        chk = Check(work / "out", work, device, "tiny")
        command = typer.main.get_command(app)
        lines = [
            ["demo-data", chk.corpus, "-n", 3, "--min-seconds", 1.0, "--max-seconds", 2.0],
            [
                "extract",
                "--store",
                chk.store[device],
                "--data-path",
                chk.corpus / "data",
                "-mts",
                chk.corpus / "multi-task-setup",
                "--tasks",
                "acted",
                "arousal",
                "valence",
                "--device",
                device,
                "-q",
            ],
            chk.train_args("r", device, "fp16"),
            chk.train_args("r", f"{device}:0", "bf16"),
            chk.train_args("r", device, "fp32", deterministic=True),
            ["train", "--resume", chk.runs / "r", "-q"],
            [
                "evaluate",
                "--model",
                chk.runs / "m.safetensors",
                "--store",
                chk.store[device],
                "--partition",
                "test",
                "-o",
                work / "e",
                "--device",
                device,
            ],
            [
                "predict",
                "--model",
                chk.runs / "m.safetensors",
                work / "a.wav",
                "-o",
                work / "p.csv",
                "--device",
                device,
            ],
        ]
        for line in lines:
            args = [str(a) for a in line]
            args = expand_list_options(args, list_option_names(command, args))
            try:
                # the group parses only its own options: parse the subcommand's as invoking it would
                parent = command.make_context("emonet", list(args))
                command.commands[args[0]].make_context(args[0], args[1:], parent=parent)
            except Exception as exc:
                print(
                    f"gpu_check: a step's command line does not parse: emonet {' '.join(args)}: {exc}", file=sys.stderr
                )
                return 1
        cpu = torch.device("cpu")
        for fmt in ("contiguous", "channels_last"):
            for prec in ("fp32", "bf16"):
                loss = train_step(cpu, fmt, prec, 2, TINY_CNN)(*fake_batch(cpu, 2))
                if not math.isfinite(float(loss)):
                    print(f"gpu_check: the throughput step gives a loss of {float(loss)}", file=sys.stderr)
                    return 1
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for results.json, summary.txt and logs/")
    ap.add_argument("--work", type=Path, required=True, help="scratch folder (corpus, stores, runs)")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--size", choices=list(SIZES), default="full")
    ap.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset (facts always runs)")
    ap.add_argument("--wire", action="store_true", help="parse every step's command lines; run nothing")
    a = ap.parse_args()
    if a.wire:
        return wire(a.device)
    steps = [s for s in a.steps.split(",") if s]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        print(f"gpu_check: unknown step(s) {', '.join(unknown)}; the steps: {', '.join(STEPS)}", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    chk = Check(a.out, a.work, a.device, a.size)
    t0 = time.perf_counter()
    for name in ["facts"] + [s for s in STEPS[1:] if s in steps]:
        chk.step(name, getattr(chk, name))
    chk.results["seconds"] = round(time.perf_counter() - t0, 1)
    chk.save()
    text = summary(chk.results)
    (a.out / "summary.txt").write_text(text)
    print(text, end="")
    return 0 if all(r["ok"] for r in chk.results["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
