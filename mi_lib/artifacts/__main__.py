"""python -m mi_lib.artifacts build NAME [NAME ...] | build all | list

NAME is any artifact of any kind (mi_lib.artifacts.build.KINDS): a toy recipe; 'shapes' (the
Simple Shapes U-Net: hours on 2 CPU cores, minutes on a GPU; pass --device cuda there);
'hands_gapped' or 'hands_continuous' (the hands U-Nets, likewise; 'hands' builds both); or a
recursive-training run ('collapse' builds both); or 'budget_1d_three', the training-budget study
(mi_lib.artifacts.budget: hours on 2 CPU cores). 'all' builds the toy recipes only."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mi_lib.artifacts.build import KINDS, kind_of
from mi_lib.artifacts.manifest import ARTIFACT_DIR


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mi_lib.artifacts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the named artifacts: write their files and manifests")
    every = [n for k in KINDS.values() for n in k.names]
    b.add_argument("names", nargs="+", help=f"'all', 'collapse' or any of: {', '.join(every)}")
    b.add_argument("--device", default="cpu", help="where to train the shapes U-Net and the collapse runs")
    b.add_argument("--work-dir", default=".artifact-work", help="checkpoints of the long runs, for resuming")
    b.add_argument("--out-dir", default=str(ARTIFACT_DIR),
                   help="where the artifacts' files and manifests go (default: mi_lib/artifacts, what ships)")
    b.add_argument("--jobs", type=int, default=1,
                   help="processes (one thread each) that sample the shapes or hands bank on a CPU; same images")
    sub.add_parser("list", help="list the artifacts, by kind")
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for kind, k in KINDS.items():
            print(kind, " ".join(k.names))
        return
    aliases = {"all": KINDS["toy"].names, "collapse": KINDS["collapse"].names, "hands": KINDS["hands"].names}
    names = [n for name in args.names for n in aliases.get(name, (name,))]
    for name in names:
        manifest = KINDS[kind_of(name)].build(name, Path(args.out_dir), work_dir=args.work_dir, device=args.device,
                                              jobs=args.jobs)
        print(json.dumps({"name": name, **manifest["built_with"]}))


if __name__ == "__main__":
    main()
