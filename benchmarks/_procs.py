"""What the benchmark scripts share: memory readings of the current process, and running a
variant in a child process of its own so that its peak memory is its own."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys


def rss_kib() -> int:
    """The process's resident memory now (Linux, KiB)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def peak_kib() -> int:
    """The process's peak resident memory so far (ru_maxrss: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_child(script: str, args: list[str], env: dict[str, str]) -> dict:
    """Run `python script args...` with `env` added to the environment, and return the JSON
    object on the last line of its output."""
    res = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, check=True,
                         env=dict(os.environ, **env))
    return json.loads(res.stdout.strip().splitlines()[-1])
