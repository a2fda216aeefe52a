"""A sandbox for code we do not trust (students' notebooks): bubblewrap, with limits.

The command runs under Debian's bubblewrap (``bwrap``), chosen over a second user account
because it needs no account set up on the grading machine and gives, in one unprivileged
command: a read-only view of the whole file system with only the folders we name writable,
folders hidden (other students' work, the grade sheet, the solutions), its own PID namespace
(whatever the command starts, detached or not, is killed when it ends), no network, no
capabilities, and a user that owns nothing outside. On top of that, prlimit (util-linux) caps
each process's memory (address space) and the size of any file it writes, and the grader kills
the sandbox's process group at the deadline. Not covered: the number of processes (a fork bomb
runs until the deadline) and the total disk written; cgroups would be needed for those.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mi_lib.checks import check_positive


@dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use: wall-clock seconds, bytes of address space per process,
    bytes per file written and bytes of its private /tmp."""

    seconds: float
    memory: int = 8 << 30
    file_size: int = 256 << 20
    tmp_size: int = 512 << 20

    def __post_init__(self) -> None:
        for name in ("seconds", "memory", "file_size", "tmp_size"):
            check_positive(name, getattr(self, name))


@dataclass(frozen=True)
class Outcome:
    """How a sandboxed run ended: its exit status (128 + N: its command was killed by signal N;
    None: the sandbox was killed at the deadline)."""

    returncode: int | None


def tools() -> tuple[str, str]:
    """The paths of bwrap and prlimit; a RuntimeError that says how to install them if missing."""
    found = shutil.which("bwrap"), shutil.which("prlimit")
    if not all(found):
        raise RuntimeError("grading runs each notebook under bubblewrap and prlimit; install them first "
                           "(Debian: apt-get install bubblewrap util-linux)")
    return found  # type: ignore[return-value]


def probe(folder: Path) -> None:
    """Start an empty sandbox once; a RuntimeError with bwrap's own words if it cannot start here
    (no unprivileged user namespaces, or a container that forbids them)."""
    log = Path(folder) / "probe.log"
    if run_sandboxed(["/bin/true"], Limits(60), {}, [], {}, "/", log).returncode != 0:
        said = log.read_text(errors="replace").strip().splitlines()
        raise RuntimeError("bubblewrap cannot start its sandbox on this machine"
                           + (f" ({said[-1]})" if said else "") + "; grading needs it to create user namespaces")


def runtime_under_tmp() -> list[Path]:
    """What the sandboxed Python needs that lives under /tmp (a virtual environment or a clone
    made there, as CI may): Python's prefixes and mi_lib's source folder, read-only."""
    import mi_lib

    paths = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    paths |= {Path(sys.executable).resolve().parents[1], Path(mi_lib.__file__).resolve().parent}
    tmp = Path("/tmp").resolve()
    return sorted(p for p in paths if p.is_relative_to(tmp) and p != tmp and p.exists())


def bwrap_args(writable: Mapping[Path, str], hidden: Sequence[Path], env: Mapping[str, str], cwd: str,
               empty: Path, tmp_size: int) -> list[str]:
    """bwrap's options: / read-only, fresh /dev, /proc and /tmp, the `hidden` folders covered by
    the empty read-only folder `empty` (files by the empty file `empty`.txt), each host folder of `writable` bound
    read-write at its path inside, no network, new user, PID and session, capabilities dropped,
    and the environment cleared to `env`."""
    args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--size", str(tmp_size), "--tmpfs", "/tmp"]
    for path in runtime_under_tmp():  # the fresh /tmp would cover them; the hidden folders cover them again below
        args += ["--ro-bind", str(path), str(path)]
    for path in hidden:
        if path.is_dir():
            args += ["--ro-bind", str(empty), str(path)]
        elif path.exists():
            args += ["--ro-bind", str(empty.with_suffix(".txt")), str(path)]
    for host, inside in writable.items():
        args += ["--bind", str(host), inside]
    args += ["--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns",
             "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--chdir", cwd, "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


def _child_pid(status_fd: int) -> int | None:
    """The PID (outside) of the sandbox's init, from what bwrap wrote to its --json-status-fd."""
    try:
        text = os.read(status_fd, 4096).decode()
        return int(json.loads(text.split("\n", 1)[0])["child-pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _wait(pid: int, deadline: float, status_fd: int) -> int | None:
    """Wait for bwrap (process `pid`) until `deadline` (time.monotonic). At the deadline, kill
    the sandbox's init, which ends every process in its namespace before bwrap exits (or, failing
    that, bwrap's process group). Returns bwrap's exit status, or None if it was killed."""
    status, late = None, False
    while status is None:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = raw
        elif time.monotonic() > deadline and not late:
            late, child = True, _child_pid(status_fd)
            os.kill(child, signal.SIGKILL) if child else os.killpg(pid, signal.SIGKILL)
            deadline += 10  # bwrap reaps its init, then exits
        elif time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
        else:
            time.sleep(0.05)
    return None if late else os.waitstatus_to_exitcode(status)


def run_sandboxed(argv: Sequence[str], limits: Limits, writable: Mapping[Path, str], hidden: Sequence[Path],
                  env: Mapping[str, str], cwd: str, log: Path) -> Outcome:
    """Run `argv` in the sandbox (see bwrap_args) under `limits`, its stdout and stderr to the
    file `log` (capped at limits.file_size), and wait for it. Whatever it started has ended
    when this returns: the sandbox's PID namespace ends with it."""
    import subprocess

    bwrap, prlimit = tools()
    empty = log.parent / "empty"
    empty.mkdir(exist_ok=True)
    empty.with_suffix(".txt").touch()
    status_r, status_w = os.pipe()
    cmd = [prlimit, f"--as={limits.memory}", f"--fsize={limits.file_size}", "--core=0", "--", bwrap,
           "--json-status-fd", str(status_w), *bwrap_args(writable, hidden, env, cwd, empty, limits.tmp_size),
           "--", *argv]
    try:
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                    pass_fds=(status_w,))
        os.close(status_w)
        try:
            code = _wait(proc.pid, time.monotonic() + limits.seconds, status_r)
        except BaseException:  # interrupted: end the sandbox before passing it on
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    finally:
        os.close(status_r)
    proc.returncode = -1 if code is None else code  # reaped by _wait; Popen must not wait again
    return Outcome(code)
