"""Runs one notebook inside the grading sandbox (mi_lib.sandbox) and reports how the run went.

mi_lib.grading starts it as ``python -I grading_runner.py NOTEBOOK REPORT TIMEOUT`` inside the
sandbox. It runs every code cell in one fresh kernel, in order, letting cells raise, within
TIMEOUT seconds for the whole notebook, and keeps no output but errors (a printing flood costs
no memory; its bytes are counted). REPORT gets {"stopped": why the run ended early or "",
"errors": [[cell index, "ErrorName: first line"], ...], "printed": bytes of output, "peak_mb":
the runner's own peak memory, which holds whatever output it keeps}.

It imports nothing from mi_lib (python -I: not even the folder it sits in), and the grader
reads its report as untrusted data: the notebook's code shares this sandbox and could rewrite it.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

PRINTED = frozenset({"stream", "display_data", "execute_result", "update_display_data"})


class _QuietClient(NotebookClient):
    """An nbclient client that keeps a cell's errors and drops (but counts) everything it prints."""

    printed = 0

    def process_message(self, msg: dict, cell: nbformat.NotebookNode, cell_index: int):
        """Count and drop printed output; let nbclient handle the rest (status, errors, ...)."""
        if msg["msg_type"] in PRINTED:
            self.printed += len(str(msg.get("content", "")))
            return None
        return super().process_message(msg, cell, cell_index)


def first_error(cell: nbformat.NotebookNode) -> str | None:
    """'ErrorName: first line of the message' of the error `cell` raised, or None."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            first = str(out.get("evalue") or "").strip().splitlines()
            return f"{out.get('ename')}: {first[0] if first else ''}".rstrip(": ")[:300]
    return None


def run(path: str, timeout: float) -> dict:
    """Run notebook `path` in its folder; the report (see the module's docstring)."""
    nb = nbformat.read(path, as_version=4)
    client = _QuietClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3", shutdown_kernel="immediate",
                         resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
    report, start = {"stopped": "", "errors": [], "printed": 0}, time.monotonic()
    try:
        with client.setup_kernel(stderr=subprocess.DEVNULL):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                client.timeout = max(1, round(timeout - (time.monotonic() - start)))
                try:
                    client.execute_cell(cell, index)
                except CellTimeoutError:
                    report["stopped"] = f"timed out after {timeout:g} s, in cell {index}"
                    break
                except DeadKernelError:
                    report["stopped"] = f"the kernel died in cell {index}"
                    break
                if (error := first_error(cell)) is not None:
                    report["errors"].append([index, error])
    except Exception as exc:  # a kernel that cannot start or breaks down
        report["stopped"] = report["stopped"] or f"could not run: {type(exc).__name__}: {exc}".splitlines()[0][:300]
    report["printed"] = client.printed
    report["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def main() -> None:
    path, report_path, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    report = run(path, timeout)
    tmp = report_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f)
    os.replace(tmp, report_path)


if __name__ == "__main__":
    main()
