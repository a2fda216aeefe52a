"""python -m mi_lib.artifacts build NAME [NAME ...] | build all | list

NAME is a toy recipe or 'shapes' (the Simple Shapes U-Net: hours on 2 CPU cores, minutes on a
GPU; pass --device cuda there), or 'collapse' (the recursive-training runs collapse_2d and
collapse_digits, also buildable one by one). 'all' builds the toy recipes only."""

from __future__ import annotations

import argparse
import json

from mi_lib.artifacts import ARTIFACT_DIR, RECIPES, build
from mi_lib.artifacts import collapse as collapse_artifact
from mi_lib.artifacts import shapes as shapes_artifact


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mi_lib.artifacts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="train and sample the named recipes, write their files and manifests")
    b.add_argument("names", nargs="+", help=f"'all' or any of: {', '.join(RECIPES)}, {shapes_artifact.NAME}, "
                   f"collapse, {', '.join(collapse_artifact.NAMES)}")
    b.add_argument("--device", default="cpu", help="where to train the shapes U-Net (default cpu)")
    b.add_argument("--work-dir", default=".artifact-work", help="checkpoints of the shapes run, for resuming")
    b.add_argument("--jobs", type=int, default=1,
                   help="processes (one thread each) that sample the shapes bank on a CPU; same images (default 1)")
    sub.add_parser("list", help="list the recipes")
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for name, rec in RECIPES.items():
            print(name, rec)
        print(shapes_artifact.NAME, shapes_artifact.RECIPE)
        for name, rec in collapse_artifact.RECIPES.items():
            print(name, rec)
        return
    names = list(RECIPES) if args.names == ["all"] else args.names
    names = [n for name in names for n in (collapse_artifact.NAMES if name == "collapse" else [name])]
    for name in names:
        if name in collapse_artifact.NAMES:
            manifest = collapse_artifact.build(name, ARTIFACT_DIR, args.work_dir, device=args.device)
            print(json.dumps({"name": name, "bytes": manifest["bytes"], **manifest["built_with"]}))
            continue
        if name == shapes_artifact.NAME:
            manifest = shapes_artifact.build(ARTIFACT_DIR, args.work_dir, device=args.device, jobs=args.jobs)
        else:
            manifest = build(name)
        print(json.dumps({"name": name, **manifest["metrics"], **manifest["built_with"]}))


if __name__ == "__main__":
    main()
