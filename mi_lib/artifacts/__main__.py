"""python -m mi_lib.artifacts build NAME [NAME ...] | build --all | list

NAME is any artifact of any kind (mi_lib.artifacts.build.KINDS): a toy recipe; 'shapes' (the
Simple Shapes U-Net: hours on 2 CPU cores, minutes on a GPU; pass --device cuda there);
'hands_gapped' or 'hands_continuous' (the hands U-Nets, likewise; 'hands' builds both); a
recursive-training run ('collapse' builds all of them); 'budget_1d_three', the training-budget study
(mi_lib.artifacts.budget); or a toy model at the paper's protocol with its large bank
(mi_lib.artifacts.protocol; 'protocol' builds all of them); or 'shapes_windows', the shapes
bank's Hal over several windows (mi_lib.artifacts.shapes_windows). '--all' builds every artifact,
the quick ones first. Each build resumes from --work-dir; before each one the command prints
how long the shipped manifests say the rest took to build, scaled by the pace so far."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from mi_lib.artifacts.build import KINDS, BuildOptions, kind_of
from mi_lib.artifacts.manifest import ARTIFACT_DIR

ORDER = ("toy", "budget", "protocol", "collapse", "hands", "shapes", "shapes_windows")  # --all: quick kinds first


def recorded_seconds(name: str, art_dir: Path = ARTIFACT_DIR) -> float:
    """How long the shipped build of `name` took by its manifest (train plus sample seconds,
    or the whole build's), NaN if it records none."""
    path = art_dir / f"{name}.json"
    if not path.is_file():
        return math.nan
    built = json.loads(path.read_text()).get("built_with", {})
    if built.get("seconds") is not None:
        return float(built["seconds"])
    parts = [built.get("train_seconds"), built.get("sample_seconds")]
    return float(sum(parts)) if all(p is not None for p in parts) else math.nan


def time_left(remaining: list[str], done: list[tuple[str, float]]) -> str:
    """The recorded seconds of the remaining builds, scaled by this run's pace on the done ones
    (a resumed build is fast, so the pace only ever shortens the estimate)."""
    left = sum(s for n in remaining if not math.isnan(s := recorded_seconds(n)))
    paced = [(secs, rec) for n, secs in done if not math.isnan(rec := recorded_seconds(n))]
    pace = min(1.0, sum(s for s, _ in paced) / max(sum(r for _, r in paced), 1e-9)) if paced else 1.0
    unknown = sum(math.isnan(recorded_seconds(n)) for n in remaining)
    text = f"about {left * pace / 3600:.1f} h left by the shipped manifests"
    return text + (f" (+{unknown} not recorded)" if unknown else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mi_lib.artifacts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the named artifacts: write their files and manifests")
    every = [n for k in KINDS.values() for n in k.names]
    b.add_argument("names", nargs="*", help=f"'toys', 'collapse', 'hands', 'protocol' or any of: {', '.join(every)}")
    b.add_argument("--all", action="store_true", help="build every artifact of every kind, the quick ones first")
    b.add_argument("--device", default="cpu", help="where to train and sample (cpu, cuda, ...)")
    b.add_argument("--work-dir", default=".artifact-work", help="checkpoints of the long runs, for resuming")
    b.add_argument("--out-dir", default=str(ARTIFACT_DIR),
                   help="where the artifacts' files and manifests go (default: mi_lib/artifacts, what ships)")
    b.add_argument("--jobs", type=int, default=1,
                   help="processes (one thread each) that sample the shapes or hands bank on a CPU; same images")
    b.add_argument("--minutes", type=float, default=None,
                   help="image models only: a time box; training stops early enough to draw the last bank")
    b.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="image models only: replace a recipe field (a JSON value), e.g. --set steps=40000")
    sub.add_parser("list", help="list the artifacts, by kind")
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for kind, k in KINDS.items():
            print(kind, " ".join(k.names))
        return
    args.all = args.all or "all" in args.names  # 'build all' reads as 'build --all'
    args.names = [n for n in args.names if n != "all"]
    if args.all == bool(args.names):
        parser.error("build needs NAMEs or --all (not both)")
    aliases = {"toys": KINDS["toy"].names, "collapse": KINDS["collapse"].names, "hands": KINDS["hands"].names,
               "protocol": KINDS["protocol"].names}
    names = ([n for kind in ORDER for n in KINDS[kind].names] if args.all
             else [n for name in args.names for n in aliases.get(name, (name,))])
    for name in names:
        kind_of(name)  # an unknown name fails here, before any long work
    overrides = {}
    for item in args.set:
        field, eq, value = item.partition("=")
        if not eq or not field:
            parser.error(f"--set takes FIELD=VALUE, got {item!r}")
        try:
            overrides[field] = json.loads(value)
        except json.JSONDecodeError:
            overrides[field] = value
    boxed = [n for n in names if not KINDS[kind_of(n)].time_box]
    if (args.minutes is not None or overrides) and boxed:
        parser.error(f"--minutes and --set apply to the image models only (shapes, hands_gapped, hands_continuous), "
                     f"not to {', '.join(boxed)}")
    options = BuildOptions(Path(args.out_dir), Path(args.work_dir), args.device, args.jobs, True, args.minutes,
                           overrides)
    done: list[tuple[str, float]] = []
    for i, name in enumerate(names):
        print(f"[{i + 1}/{len(names)}] {name}: {time_left(names[i:], done)}", flush=True)
        start = time.time()
        manifest = KINDS[kind_of(name)].build(name, options)
        done.append((name, time.time() - start))
        print(json.dumps({"name": name, **manifest["built_with"]}), flush=True)


if __name__ == "__main__":
    main()
