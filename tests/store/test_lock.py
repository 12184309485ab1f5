"""Writers take an OS lock on the store: a second writer waits (and says so), then adds
its own tasks; readers are never blocked; the kernel drops the lock of a killed writer."""

import fcntl
import os
import signal
import subprocess
import sys
import time

import pytest

from emonet.store import open_store
from emonet.store.lock import StoreLock
from tests.helpers import make_task

pytestmark = pytest.mark.slow  # concurrent writer processes

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _extract(store, data, csv, task):
    return subprocess.Popen(
        [sys.executable, "-m", "emonet", "extract", "-s", str(store), "-dp", str(data), "-t", task, "-tr", str(csv)]
        + ["-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_second_writer_waits_for_the_first_and_both_tasks_end_up_in_the_store(tmp_path):
    data, a = make_task(tmp_path, name="a", partitions=("train",))
    _, b = make_task(tmp_path, name="b", partitions=("train",))
    store = tmp_path / "s"
    store.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store / ".lock"), "60"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    procs = [_extract(store, data, a["train"], "a"), _extract(store, data, b["train"], "b")]
    for p in procs:  # each says that it waits, and does
        assert "another emonet extract is writing into this store; waiting" in p.stderr.readline()
    time.sleep(0.5)
    assert all(p.poll() is None for p in procs)
    holder.kill()
    holder.wait()
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    s = open_store(store)
    assert s.tasks == ["a", "b"] and len(s.partition("a", "train")) == 8 and len(s.partition("b", "train")) == 8


def test_readers_are_not_blocked_and_a_killed_holder_releases_the_lock(tmp_path):
    data, a = make_task(tmp_path, name="a", partitions=("train",))
    store = tmp_path / "s"
    p = _extract(store, data, a["train"], "a")
    assert p.wait(60) == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store / ".lock"), "60"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    assert len(list(open_store(store).partition("a", "train"))) == 8  # reading while a writer holds the lock
    fd = os.open(store / ".lock", os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            raise AssertionError("the lock should be held")
        except BlockingIOError:
            pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        with StoreLock(store, timeout=5):  # released by the kernel
            pass
    finally:
        os.close(fd)


def test_a_writer_removes_temp_files_that_killed_writers_left(tmp_path):
    """`kill -9` mid-write leaves `.NAME.tmp-PID` files; the next writer removes those of dead
    processes (root, task and partition folders) and keeps a running process's."""
    store = tmp_path / "s"
    (store / "t" / "train").mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its PID is no longer running
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [store / f".config.yaml.tmp-{dead.pid}", store / "t" / "train" / f".zarr.json.tmp-{dead.pid}"]
        kept = store / "t" / f".zarr.json.tmp-{live.pid}"
        for path in [*stale, kept]:
            path.write_text("partial")
        with StoreLock(store):
            pass
        assert not any(p.exists() for p in stale) and kept.exists()
    finally:
        live.kill()
        live.wait()
