"""python -m mi_lib.artifacts build NAME [NAME ...] | build all | list"""

from __future__ import annotations

import argparse
import json

from mi_lib.artifacts import RECIPES, build


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mi_lib.artifacts", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="train and sample the named recipes, write NAME.pt and NAME.json")
    b.add_argument("names", nargs="+", help=f"'all' or any of: {', '.join(RECIPES)}")
    sub.add_parser("list", help="list the recipes")
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for name, rec in RECIPES.items():
            print(name, rec)
        return
    names = list(RECIPES) if args.names == ["all"] else args.names
    for name in names:
        manifest = build(name)
        print(json.dumps({"name": name, **manifest["metrics"], **manifest["built_with"]}))


if __name__ == "__main__":
    main()
