"""The experiment folder of one run, and atomic writes into it.

    EXPERIMENTS/<date>-<time>-<tasks>[-n]/
        config.yaml         the fully resolved TrainConfig (``emonet train --resume`` reads it)
        state.pt            resume state: every object the trainer registers (training/state.py)
        best.safetensors    best weights so far (self-describing checkpoint)
        last.safetensors    weights after the last finished epoch
        data.json           the data the run started on (feature hash, label maps, partition hashes)
        metrics.csv         one row per epoch and task
        results.json        task -> partition -> metrics (written at the end)
        tensorboard/        TensorBoard events
        plots/              learning curves and one confusion matrix per task
        .lock               held by the process that writes the run (a second one is refused)

Every file is written to a temporary name, fsynced and renamed, so a kill or a full disk
mid-write leaves the previous version readable; temporary files of killed writers are
removed when the run is next opened. results.json is written last: a run folder that has it
is finished.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import math
import re
import shutil
import time
from pathlib import Path

import torch
import yaml

from emonet.errors import ConfigError, TrainingError
from emonet.utils.fs import (
    FilesystemError,
    atomic_write_bytes,
    describe_os_error,
    filesystem_errors,
    remove_stale_temp_files,
)

CONFIG = "config.yaml"
STATE = "state.pt"
BEST = "best.safetensors"
LAST = "last.safetensors"
METRICS = "metrics.csv"
RESULTS = "results.json"
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
METRIC_FIELDS = ("epoch", "stage", "task", "lr", "loss", "devel_loss", "devel_uar", "devel_accuracy", "devel_macro_f1")


def check_run_name(name: str | None) -> None:
    """A run name is one plain folder name: never a path, so nothing is written outside -ebp."""
    if name is not None and not RUN_NAME.fullmatch(name):
        raise ConfigError(
            f"--run-name {name!r}: use 1 to 100 letters, digits, '_', '-' and '.', starting with a letter or digit "
            "(a folder name, not a path)"
        )


def create_run_dir(experiments: str | Path, tasks: list[str], name: str | None = None) -> Path:
    """A new, empty run folder under ``experiments``; never one that exists (two runs started
    in the same second get ``-2``, ``-3``, ... through an exclusive mkdir)."""
    base = Path(experiments)
    if base.exists() and not base.is_dir():
        raise ConfigError(f"-ebp {base}: is a file, not a folder; give a folder for the experiments")
    check_run_name(name)
    hint = "give -ebp/--experiment-base-path a writable folder with free space"
    with filesystem_errors(base, hint=hint):
        try:
            base.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ConfigError(f"-ebp {base}: a part of the path is a file; give a folder for the experiments") from None
    stem = name or f"{time.strftime('%Y%m%d-%H%M%S')}-{'-'.join(tasks)[:60]}"
    for k in range(1, 10000):
        path = base / (stem if k == 1 else f"{stem}-{k}")
        with filesystem_errors(path, hint=hint):
            try:
                path.mkdir()
            except FileExistsError:
                continue
        return path
    raise TrainingError(f"-ebp {base}: could not find a free run folder name for {stem}")


def new_run(experiments: str | Path, tasks: list[str], name: str | None, writes) -> tuple[Path, object]:
    """Create, lock and fill a new run folder: ``writes(run)`` writes its first files. If any
    of that fails (a full disk, a signal), the folder is removed again: no half-made run is left.

    Returns:
        (the run folder, its lock: keep it open while the run writes)."""
    run = create_run_dir(experiments, tasks, name)
    try:
        lock = lock_run(run)
        with filesystem_errors(run, hint="free space or give -ebp/--experiment-base-path another folder"):
            writes(run)
    except BaseException:
        shutil.rmtree(run, ignore_errors=True)
        raise
    return run, lock


def open_run(run: Path):
    """Lock an existing run folder for ``--resume`` and remove the temporary files that killed
    writers left in it. Returns the lock (keep it open while the run writes)."""
    run = Path(run)
    if not run.is_dir():
        raise ConfigError(f"--resume {run}: no such run folder; give the folder of a run started by emonet train")
    with filesystem_errors(run, hint="--resume needs the run folder on a writable file system with free space"):
        lock = lock_run(run)
        for folder in (run, run / "plots"):
            remove_stale_temp_files(folder)
    return lock


def finished(run: Path) -> bool:
    """Whether the run ended (its results.json, written last, is there)."""
    return (Path(run) / RESULTS).is_file()


def lock_run(run: Path):
    """Hold the run folder for this process (an exclusive lock on ``run/.lock``, released when
    the process ends): a second ``emonet train --resume`` of the same run is refused."""
    import fcntl

    fh = open(Path(run) / ".lock", "a")  # noqa: SIM115 (kept open: the lock lives with it)
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise TrainingError(
            f"{run}: another emonet train is running in this run folder (it holds {run}/.lock); "
            "wait for it to end, then --resume it if it did not finish"
        ) from None
    return fh


def write_config(run: Path, config_dict: dict) -> None:
    """Write the run's config.yaml (atomically) from ``TrainConfig.to_dict()``."""
    text = "# emonet train: the fully resolved config of this run (emonet train --resume reads it)\n"
    atomic_write_bytes(run / CONFIG, (text + yaml.safe_dump(config_dict, sort_keys=False)).encode())


def read_config(run: Path) -> dict:
    """The run's config.yaml as a dict (TrainConfig.from_dict reads it)."""
    path = Path(run) / CONFIG
    if not path.is_file():
        raise ConfigError(f"--resume {run}: no {CONFIG} there; give the folder of a run started by emonet train")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: unreadable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a training config")
    return data


_STATE_MAGIC = b"EMONET-STATE-1\n"


def save_state(run: Path, state: dict) -> None:
    """The resume state: a magic line, the sha256 of the payload, then ``torch.save`` bytes."""
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    atomic_write_bytes(run / STATE, _STATE_MAGIC + hashlib.sha256(payload).digest() + payload)


def load_state(run: Path) -> dict | None:
    """The run's resume state, or None when it finished no epoch yet."""
    path = Path(run) / STATE
    if not path.is_file():
        return None
    data = path.read_bytes()
    head, digest, payload = (
        data[: len(_STATE_MAGIC)],
        data[len(_STATE_MAGIC) : len(_STATE_MAGIC) + 32],
        data[len(_STATE_MAGIC) + 32 :],
    )
    if head != _STATE_MAGIC or hashlib.sha256(payload).digest() != digest:
        raise TrainingError(f"{path}: corrupt resume state (checksum mismatch); start a new run")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrainingError(f"{path}: unreadable resume state ({type(exc).__name__}); start a new run") from None


def write_metrics(run: Path, rows: list[dict]) -> None:
    """Rewrite metrics.csv (atomically) from the run's history rows."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _finite_or_blank(row.get(k, "")) for k in METRIC_FIELDS})
    atomic_write_bytes(run / METRICS, buf.getvalue().encode())


def _finite_or_blank(value):
    """NaN and infinities never reach metrics.csv: an undefined value is an empty cell."""
    return "" if isinstance(value, float) and not math.isfinite(value) else value


@contextlib.contextmanager
def writing(run: Path, name: str):
    """A failed write of the run file ``name`` (a full disk) is one line with the filesystem
    errors' exit code; the previous version of the file stays readable."""
    try:
        yield
    except FilesystemError:
        raise
    except OSError as exc:
        raise FilesystemError(
            f"{Path(run) / name}: writing failed ({describe_os_error(OSError(exc.errno, exc.strerror))}); "
            f"the previous version stays "
            f"readable. Free space, then continue with: emonet train --resume {run}"
        ) from None
