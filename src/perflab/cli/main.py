"""Entry point: argparse, typed errors caught once, exit codes.

0 = the run completed (whatever the verdicts), 1 = could not run (the environment said
no), 2 = usage error (argparse's convention), 130 = interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys

from perflab import __version__
from perflab.cli import history, inspect, listing, run, show, trace
from perflab.errors import PerflabError

COMMANDS = (listing, run, show, history, inspect, trace)


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, not a usage dump
        self.exit(2, f"perflab: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="perflab", description="Put beliefs about the Linux kernel to a measured test.")
    parser.add_argument("--version", action="version", version=f"perflab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except PerflabError as exc:
        print(f"perflab: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("perflab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def entry() -> None:
    sys.exit(main())
