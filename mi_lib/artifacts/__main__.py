"""python -m mi_lib.artifacts build NAME [NAME ...] | build --all | list | verify [NAME ...]

NAME is any artifact of any kind (mi_lib.artifacts.build.KINDS): a toy recipe; 'shapes' (the
Simple Shapes U-Net: hours on 2 CPU cores, minutes on a GPU; pass --device cuda there);
'hands_gapped' or 'hands_continuous' (the hands U-Nets, likewise; 'hands' builds both); a
recursive-training run ('collapse' builds all of them); 'budget_1d_three', the training-budget study
(mi_lib.artifacts.budget); or a toy model at the paper's protocol with its large bank
(mi_lib.artifacts.protocol; 'protocol' builds all of them); or 'shapes_windows', the shapes
bank's Hal over several windows (mi_lib.artifacts.shapes_windows). '--all' builds every artifact,
the quick ones first. Each build resumes from --work-dir; before each one the command prints
how long the shipped manifests say the rest took to build, scaled by the pace so far. A build
into mi_lib/artifacts (the default --out-dir) of an artifact that ships there needs --replace,
which also records its new manifest in manifests.sha256; 'verify' checks every shipped artifact
(mi_lib.artifacts.verify)."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from mi_lib.artifacts.build import KINDS, BuildOptions, kind_of
from mi_lib.artifacts.cli_checks import (
    GROUPS,
    ORDER,  # noqa: F401 (the order of --all, read by the tests)
    check_build,
    report_verify,
    resolve,
)
from mi_lib.artifacts.image_banks import image_model
from mi_lib.artifacts.image_build import with_fields
from mi_lib.artifacts.manifest import ARTIFACT_DIR, record_manifest


def recorded_seconds(name: str, art_dir: Path = ARTIFACT_DIR) -> float:
    """How long the shipped build of `name` took by its manifest (train plus sample seconds,
    or the whole build's), NaN if it records none."""
    path = art_dir / f"{name}.json"
    try:
        built = json.loads(path.read_text()).get("built_with", {})
    except (OSError, ValueError, AttributeError):  # not built, or not a manifest: verify says which
        return math.nan
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


def recipe_fields(items: list[str]) -> dict:
    """--set FIELD=VALUE options as {field: value}, each value read as JSON if it parses (a
    number, a list), else as a string."""
    fields = {}
    for item in items:
        field, eq, value = item.partition("=")
        if not eq or not field:
            raise ValueError(f"--set takes FIELD=VALUE, got {item!r}")
        try:
            fields[field] = json.loads(value)
        except json.JSONDecodeError:
            fields[field] = value
    return fields


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
    b.add_argument("--replace", action="store_true",
                   help="let a build into mi_lib/artifacts replace an artifact that ships there")
    b.add_argument("--minutes", type=float, default=None,
                   help="image models only: a time box; training stops early enough to draw the last bank")
    b.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="image models only: replace a recipe field (a JSON value), e.g. --set steps=40000")
    sub.add_parser("list", help="list the artifacts, by kind")
    v = sub.add_parser("verify", help="check the shipped artifacts: files, manifests and (toy models) metrics")
    v.add_argument("names", nargs="*", help="artifacts or groups to check (default: every shipped one)")
    v.add_argument("--record", action="store_true", help="record the named manifests in manifests.sha256 as they "
                   "are now (after checking their files), for artifacts built by other means than this command")
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for kind, k in KINDS.items():
            print(kind, " ".join(k.names))
        print("groups (each builds every artifact of its kind):", ", ".join(f"{g} ({k})" for g, k in GROUPS.items()))
        return
    try:
        if args.cmd == "verify":
            lines, ok = report_verify(args.names, record=args.record)
            print("\n".join(lines))
            raise SystemExit(0 if ok else 1)
        args.all = args.all or "all" in args.names  # 'build all' reads as 'build --all'
        args.names = [n for n in args.names if n != "all"]
        if args.all == bool(args.names):
            parser.error("build needs NAMEs or --all (not both)")
        names = resolve(args.names, args.all)
        check_build(names, Path(args.out_dir), args.jobs, args.device, args.replace)  # before any long work
        overrides = recipe_fields(args.set)
        boxed = [n for n in names if not KINDS[kind_of(n)].time_box]
        if (args.minutes is not None or overrides) and boxed:
            raise ValueError(f"--minutes and --set apply to the image models only (shapes, hands_gapped, "
                             f"hands_continuous), not to {', '.join(boxed)}")
        for name in set(names) - set(boxed):  # a field unknown to a recipe, or a value it refuses
            with_fields(image_model(name).recipe, overrides)
    except ValueError as exc:
        parser.exit(2, f"{parser.prog} {args.cmd}: error: {exc}\n")
    options = BuildOptions(Path(args.out_dir), Path(args.work_dir), args.device, args.jobs, True, args.minutes,
                           overrides)
    shipped = Path(args.out_dir).resolve() == ARTIFACT_DIR.resolve()
    done: list[tuple[str, float]] = []
    for i, name in enumerate(names):
        print(f"[{i + 1}/{len(names)}] {name}: {time_left(names[i:], done)}", flush=True)
        start = time.time()
        manifest = KINDS[kind_of(name)].build(name, options)
        done.append((name, time.time() - start))
        if shipped:
            record_manifest(name)
        print(json.dumps({"name": name, **manifest["built_with"]}), flush=True)
        print(f"wrote {name}: {Path(args.out_dir) / (name + '.json')} and its files"
              + (f" (recorded in {ARTIFACT_DIR / 'manifests.sha256'})" if shipped else ""), flush=True)


if __name__ == "__main__":
    main()
