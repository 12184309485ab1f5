"""Start-up settings for CPU training speed: glibc keeps large buffers instead of faulting them in."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Allocates, fills and frees a 64 MiB buffer (above glibc's largest mmap threshold) 4 times and
# prints the minor page faults of the last 3 rounds.
PROBE = """
import ctypes, json, resource, sys
from emonet.utils.allocator import keep_large_buffers
applied = keep_large_buffers() if sys.argv[1] == "1" else False
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
n, faults = 64 << 20, []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    p = libc.malloc(n)
    ctypes.memset(p, 1, n)
    libc.free(p)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": applied, "faults": sum(faults[1:])}))
"""


def _probe(apply: bool, **env: str) -> dict:
    drop = ("MALLOC_", "EMONET_MALLOC", "GLIBC_TUNABLES")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    full_env.update(env)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "1" if apply else "0"], capture_output=True, text=True, env=full_env, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_large_buffers_are_reused_without_page_faults():
    default, tuned = _probe(False), _probe(True)
    assert tuned["applied"] is True
    pages = 3 * (64 << 20) // 4096
    assert default["faults"] > pages // 2  # glibc's default: every 64 MiB buffer is mmapped and faulted in again
    assert tuned["faults"] < pages // 20  # kept in the heap: reused without faults


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_allocator_tuning_can_be_turned_off_and_yields_to_user_settings():
    assert _probe(True, EMONET_MALLOC="default")["applied"] is False
    assert _probe(True, MALLOC_TRIM_THRESHOLD_="131072")["applied"] is False
    assert _probe(True, GLIBC_TUNABLES="glibc.malloc.mmap_threshold=131072")["applied"] is False
