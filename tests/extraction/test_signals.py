"""Ctrl-C (SIGINT to the whole process group, workers included) and SIGTERM end an
extraction with 130 / 143 and the resume message; re-running resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from emonet.store import open_store
from tests.helpers import DEMO_TASKS, SLOW_CLI

pytestmark = pytest.mark.slow  # signals to extraction subprocesses


def _blocks_done(store) -> int:
    done = 0
    for f in (store / ".staging").glob("*/*/progress.json"):
        try:
            done += json.loads(f.read_text())["blocks_done"]
        except (ValueError, KeyError, OSError):
            pass
    return done


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_ends_with_its_status_and_the_resume_message(tmp_path, demo_corpus, sig, code):
    store = tmp_path / "s"
    args = [
        "extract",
        "-s",
        str(store),
        "-dp",
        str(demo_corpus / "data"),
        "-mts",
        str(demo_corpus / "multi-task-setup"),
    ]
    args += ["--tasks", *DEMO_TASKS, "--frames-per-shard", "32", "--workers", "2", "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    t0 = time.monotonic()
    while _blocks_done(store) < 3 and time.monotonic() - t0 < 60 and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # as a terminal's Ctrl-C: the whole process group
    else:
        os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    err = err.decode().strip()
    assert len(err.splitlines()) == 1 and "re-run the same command to resume" in err, err
    assert "Traceback" not in err
    rerun = subprocess.run([sys.executable, "-m", "emonet", *args], capture_output=True, text=True)
    assert rerun.returncode == 0 and "resumed" in rerun.stdout, rerun.stderr
    assert open_store(store).tasks == DEMO_TASKS
