"""mi_lib.sandbox: what a sandboxed command can see, write and leave behind."""

import sys
import time
from pathlib import Path

import pytest

import mi_lib
from mi_lib.sandbox import Limits, run_sandboxed

MARK = "mi-sandbox-test-marker"
# A folder the sandbox always sees (read-only), wherever the clone lives: /tmp is the sandbox's own.
OUTSIDE = Path(mi_lib.__file__).resolve().parent / "written-from-a-sandbox.txt"


def run(tmp_path: Path, code: str, limits: Limits | None = None, hidden=(), writable=None):
    (tmp_path / "logs").mkdir(exist_ok=True)
    log = tmp_path / "logs" / "log"
    outcome = run_sandboxed([sys.executable, "-u", "-c", code, MARK], limits or Limits(60), writable or {},
                            list(hidden), {"PATH": "/usr/bin:/bin"}, "/", log)
    return outcome.returncode, log.read_text()


def test_only_the_named_folders_are_writable_and_hidden_ones_are_empty(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "answers.txt").write_text("42")
    (tmp_path / "sheet.csv").write_text("a,b\n")
    code = (f"import os\nopen('/tmp/inside/ok', 'w').write('x')\nprint(os.listdir({str(tmp_path / 'secret')!r}))\n"
            f"print(open({str(tmp_path / 'sheet.csv')!r}).read() == '')\n"
            f"open({str(OUTSIDE)!r}, 'w')")
    code_, log = run(tmp_path, code, hidden=[tmp_path / "secret", tmp_path / "sheet.csv"],
                     writable={tmp_path / "mine": "/tmp/inside"})
    assert code_ == 1 and log.splitlines()[:2] == ["[]", "True"] and "Read-only file system" in log
    assert (tmp_path / "mine" / "ok").read_text() == "x" and not OUTSIDE.exists()
    assert (tmp_path / "secret" / "answers.txt").read_text() == "42"


def marked() -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if MARK.encode() in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            pass
    return found


def test_nothing_it_started_outlives_it(tmp_path):
    code = ("import subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {MARK!r}], start_new_session=True,"
            " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)")
    assert run(tmp_path, code)[0] == 0
    assert marked() == []


def test_the_deadline_ends_it_and_memory_is_capped(tmp_path):
    start = time.monotonic()
    assert run(tmp_path, "import time; time.sleep(60)", Limits(2))[0] is None
    assert time.monotonic() - start < 10 and marked() == []
    code, log = run(tmp_path, "x = bytearray(3 << 30)", Limits(60, memory=1 << 30))
    assert code == 1 and "MemoryError" in log


def test_no_network_and_no_other_processes(tmp_path):
    code = ("import os, socket\nprint(sorted(p for p in os.listdir('/proc') if p.isdigit()))\n"
            "socket.create_connection(('1.1.1.1', 53), timeout=2)")
    code_, log = run(tmp_path, code)
    assert code_ == 1 and log.splitlines()[0] in ("['1', '2']", "['1', '2', '3']")
    assert "Network is unreachable" in log or "OSError" in log


def test_limits_are_checked():
    with pytest.raises(ValueError, match="seconds"):
        Limits(0)
