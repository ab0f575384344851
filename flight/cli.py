"""`lander`: the one command line of the product.

Flight subcommands import only flight code; ground subcommands import ground/ (numpy)
lazily, so the flight computer never loads what it does not need.
"""

from __future__ import annotations

import argparse
import sys

from flight import __version__


def _cmd_version(args: argparse.Namespace) -> int:
    from flight._altfilter import lib

    print(f"lander {__version__} (altitude filter kernel: {lib.ALT_NX} states, "
          f"{lib.ALT_MAX_SENSORS} range sensors)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ground import filter_demo

    return filter_demo.main(seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lander",
        description="Lunar lander flight software: altitude filter, flight executive, simulator.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_cmd_version)
    p = sub.add_parser("demo", help="replay the M1 cliff through every altitude-trust policy")
    p.add_argument("--seed", type=int, default=1, help="noise seed (default 1)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
