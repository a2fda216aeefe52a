"""Stress run for the mixture-scores chapter's slider cell (issue 24's CI stall).

Executes book/mixture_scores.ipynb RUNS times with nbclient, PARALLEL at a time, each in its own
process and kernel with one thread (OMP_NUM_THREADS=1), and reports each run's wall time and
its slowest cell. A run stalls if a cell runs into --stall seconds, nbclient's time-out (a
stalled slider cell waits it out and then returns: nbclient raises nothing). With --widgets off
(MI_WIDGETS=0, what the Makefile's builds and tests set) the slider cell draws one figure; with
--widgets on it builds the live widget, as a reader's notebook does. Not a pytest test (minutes
of CPU); run it by hand:

    .venv/bin/python tests/stress_widgets.py --runs 20 --parallel 2 --widgets off
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BOOK = Path(__file__).resolve().parents[1] / "book"
EXECUTE = """import json, sys, time, nbclient, nbformat
from nbclient.exceptions import CellTimeoutError
nb = nbformat.read(sys.argv[1], as_version=4)
client = nbclient.NotebookClient(nb, timeout=float(sys.argv[2]), kernel_name="python3", allow_errors=True,
                                 resources={"metadata": {"path": sys.argv[3]}})
times, stalled = [], None
with client.setup_kernel():
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        start = time.monotonic()
        try:
            client.execute_cell(cell, i)
        except CellTimeoutError:
            stalled = i
        times.append((i, time.monotonic() - start, "t_slider(" in cell.source))
        if stalled is not None:
            break
print("RESULT" + json.dumps({"cells": times, "stalled": stalled}))
"""


def one_run(index: int, widgets: bool, timeout: float) -> dict:
    """Execute the chapter once in a fresh process: its wall time, slowest cell and the slider cell's time."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "MI_WIDGETS": "1" if widgets else "0"}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", EXECUTE, str(BOOK / "mixture_scores.ipynb"), str(timeout), str(BOOK)],
                          capture_output=True, text=True, env=env)
    wall = time.monotonic() - start
    result = json.loads(done.stdout.split("RESULT", 1)[1]) if "RESULT" in done.stdout else {"cells": [], "stalled": -1}
    slider = [t for _, t, is_slider in result["cells"] if is_slider]
    slowest = max(result["cells"], key=lambda c: c[1], default=(None, 0.0, False))
    return {"run": index, "wall_s": round(wall, 1), "slowest_cell": slowest[0], "slowest_s": round(slowest[1], 1),
            "slider_s": round(slider[0], 2) if slider else None, "stalled_in_cell": result["stalled"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--widgets", choices=["on", "off"], default="off")
    parser.add_argument("--stall", type=float, default=120.0, help="seconds after which a cell counts as stalled")
    args = parser.parse_args()
    start = time.monotonic()
    with ThreadPoolExecutor(args.parallel) as pool:
        runs = list(pool.map(lambda i: one_run(i, args.widgets == "on", args.stall), range(args.runs)))
    for r in runs:
        print(json.dumps(r), flush=True)
    walls = [r["wall_s"] for r in runs]
    sliders = [r["slider_s"] for r in runs if r["slider_s"] is not None]
    stalls = [r for r in runs if r["stalled_in_cell"] is not None or r["slowest_s"] >= 0.95 * args.stall]
    print(json.dumps({"runs": args.runs, "parallel": args.parallel, "widgets": args.widgets,
                      "total_s": round(time.monotonic() - start, 1), "stalls": len(stalls),
                      "wall_s": {"median": statistics.median(walls), "max": max(walls)},
                      "slider_s": {"median": statistics.median(sliders), "max": max(sliders)} if sliders else None}))
    sys.exit(1 if stalls else 0)


if __name__ == "__main__":
    main()
