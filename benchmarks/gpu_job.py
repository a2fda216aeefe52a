"""The GPU job: what a borrowed GPU's few minutes are for, in one command.

    python benchmarks/gpu_job.py OUT [--minutes 9] [--device cuda]
    make gpu-job OUT=/path/to/folder MINUTES=9

In `minutes` (wall clock, everything included) it runs, with every process's CPU threads
limited (OMP_NUM_THREADS):

1. the image models' builds (mi_lib.artifacts.image_build: Simple Shapes, hands gapped and
   continuous), one process each, which render their training data at once and then wait;
2. the device benchmark alone on the device (benchmarks/bench_toy.py: the authors' toy code and
   mi_lib side by side, 1,000,000 draws with Hal, the U-Net's training steps);
3. then the builds train, each in the time left (their time box), with banks at 5k, 10k, 20k
   and 40k steps, while the CUDA tests run (pytest -m cuda);
4. each model's artifact is packed into OUT/NAME.tar (weights, bank, manifest), and OUT gets
   job.log (every part's output) and summary.json (one line per part, also printed last).

`--tiny` runs the same parts at toy sizes (a smoke test on a CPU: tests/test_gpu_job.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("shapes", "hands_gapped", "hands_continuous")
GPU = {"steps": 40_000, "n_samples": 4_000, "sample_chunk": 1_000}
TINY = {"steps": 8, "n_samples": 8, "sample_chunk": 4, "sample_steps": 10, "n_data": 64, "base": 8,
        "batch_size": 8}
PACK_SECONDS = 20  # kept at the end for packing and the summary


def threads_env(n: int) -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n), PYTHONUNBUFFERED="1",
                TQDM_DISABLE="1", PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")


def worker(args: argparse.Namespace) -> None:
    """One image build: render the data, wait for the gate file, build in the time left."""
    import torch

    from mi_lib.artifacts.image_banks import image_model
    from mi_lib.artifacts.image_build import build_image, with_fields

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    torch.backends.cudnn.benchmark = True  # fixed shapes (batch 64, chunks of 1,000): let cuDNN pick its kernels
    sizes = TINY if args.tiny else GPU
    snapshots = (2, 4, 8) if args.tiny else (5_000, 10_000, 20_000, 40_000)
    rec = image_model(args.worker).recipe
    rec = with_fields(rec, {k: v for k, v in sizes.items() if hasattr(rec, k)})
    data = rec.data()
    print(f"{args.worker}: data {tuple(data.shape)} ready at {time.time() - args.t0:.0f} s", flush=True)
    while not Path(args.gate).exists():
        if time.time() > args.end:
            raise SystemExit(f"{args.worker}: the gate never opened")
        time.sleep(0.2)
    minutes = (args.end - time.time()) / 60
    work = Path(args.work) / args.worker
    manifest = build_image(args.worker, work / "out", work / "work", rec, args.device, minutes, snapshots=snapshots,
                           progress=False, data=data, save_every=2 if args.tiny else 250)
    print("RESULT " + json.dumps({"name": args.worker, "budget": manifest["budget"],
                                  "built_with": manifest["built_with"],
                                  "snapshots": manifest["metrics"]["snapshots"]}), flush=True)


def run_part(cmd: list[str], log: Path, timeout: float, threads: int) -> tuple[int, float]:
    """Run cmd with its output in `log`; (exit status, seconds); 124 if it ran past timeout."""
    t0 = time.time()
    with open(log, "w") as f:
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=threads_env(threads), cwd=ROOT,
                                timeout=max(1.0, timeout)).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    return rc, time.time() - t0


def bench_summary(text: str) -> str:
    keep = ("speed-up", "1,000,000 draws", "U-Net training", "train  ", "sample ")
    return " | ".join(line.strip() for line in text.splitlines() if any(k in line for k in keep))


def pack(name: str, work: Path, out: Path) -> str:
    """OUT/NAME.tar of the build's artifact files; a line saying what it holds."""
    files = sorted((work / name / "out").glob(f"{name}*")) if (work / name / "out").is_dir() else []
    if not files:
        return "no artifact"
    tmp = out / f".{name}.tar.tmp"
    with tarfile.open(tmp, "w") as tar:
        for f in files:
            tar.add(f, arcname=f.name)
    tmp.replace(out / f"{name}.tar")
    return f"{name}.tar: {', '.join(f.name for f in files)} ({(out / f'{name}.tar').stat().st_size / 2**20:.1f} MiB)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", nargs="?", help="the output folder (created)")
    p.add_argument("--minutes", type=float, default=9.0, help="the whole job's wall-clock budget (default 9)")
    p.add_argument("--device", default="cuda", help="where to run (default cuda; cpu with --tiny for a smoke test)")
    p.add_argument("--tiny", action="store_true", help="toy sizes: the job end to end in a minute or two on a CPU")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--gate", help=argparse.SUPPRESS)
    p.add_argument("--end", type=float, help=argparse.SUPPRESS)
    p.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    if not args.out:
        p.error("OUT (the output folder) is required")
    if not args.minutes > 0:
        p.error(f"--minutes must be positive, got {args.minutes}")
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {args.device}: this torch ({torch.__version__}) sees no CUDA device")
    t0 = time.time()
    end = t0 + 60 * args.minutes - PACK_SECONDS
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu-job-"))
    gate = work / "go"
    logs = {n: work / f"{n}.log" for n in (*NAMES, "bench", "tests")}
    workers = {}
    for name in NAMES:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--work", str(work), "--gate",
               str(gate), "--end", str(end), "--t0", str(t0), "--device", args.device] + (["--tiny"] if args.tiny
                                                                                          else [])
        workers[name] = subprocess.Popen(cmd, stdout=open(logs[name], "w"), stderr=subprocess.STDOUT,
                                         env=threads_env(2), cwd=ROOT)
    summary: dict[str, str] = {}
    if torch.cuda.is_available() and args.device.startswith("cuda"):
        props = torch.cuda.get_device_properties(args.device)
        summary["device"] = f"{props.name}, {props.total_memory / 2**30:.0f} GiB, torch {torch.__version__}"
    # At toy sizes the baseline is mi_lib's plain path (no authors' folder): the job's plumbing is the test.
    tiny = ["--quick", "--batch", "1000", "--n", "50", "--T", "50", "--authors", str(work / "none")]
    sizes = tiny if args.tiny else ["--n", "200000", "--train-steps", "200", "--million", "--unet"]
    bench = [sys.executable, "benchmarks/bench_toy.py", "--device", args.device, *sizes]
    rc, secs = run_part(bench, logs["bench"], min(180.0, (end - time.time()) / (2 if args.tiny else 3)), threads=4)
    summary["bench"] = f"rc {rc}, {secs:.0f} s: " + bench_summary(logs["bench"].read_text())
    gate.touch()
    tests = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "cuda", "tests/test_cuda.py"]
    rc, secs = run_part(tests, logs["tests"], min(240.0, end - time.time()), threads=2)
    tail = [line for line in logs["tests"].read_text().splitlines() if line.strip()][-1:]
    summary["tests"] = f"rc {rc}, {secs:.0f} s: {tail[0] if tail else ''}"
    for name, proc in workers.items():
        try:
            proc.wait(timeout=max(1.0, end + PACK_SECONDS / 2 - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
        text = logs[name].read_text()
        result = [line[7:] for line in text.splitlines() if line.startswith("RESULT ")]
        if result:
            r = json.loads(result[-1])
            last = r["snapshots"][-1]
            summary[name] = (f"rc {proc.returncode}: {r['budget']['steps']} steps ({r['budget']['stopped_by']}), "
                             f"train {r['built_with']['train_seconds']} s, sample {r['built_with']['sample_seconds']}"
                             f" s; last bank {last['labels']}, AUROC {last['auroc']}; {pack(name, work, out)}")
        else:
            summary[name] = f"rc {proc.returncode}: no result; {pack(name, work, out)}; " + " / ".join(
                text.strip().splitlines()[-3:])
    with open(out / "job.log", "w") as f:
        for name, log in logs.items():
            f.write(f"===== {name} =====\n{log.read_text() if log.exists() else ''}\n")
    (out / "summary.json").write_text(json.dumps({"seconds": round(time.time() - t0, 1), **summary}, indent=1))
    for name, line in summary.items():
        print(f"{name}: {line}")
    print(f"gpu job: {time.time() - t0:.0f} s, files in {out}")


if __name__ == "__main__":
    main()
