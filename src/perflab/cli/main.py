"""Entry point: argparse, typed errors caught once, exit codes.

0 = the run completed (whatever the verdicts), 1 = could not run (the environment said
no, or stdout was closed under it), 2 = usage error (argparse's convention), 130 =
interrupted (SIGINT, SIGTERM, SIGQUIT, or SIGHUP when the terminal goes away).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from perflab.core.errors import PerflabError
from perflab.core.safe import safe

# Each subcommand's module under perflab.cli (its add_parser registers the name), in the
# order --help lists them.
COMMANDS = {"list": "listing", "run": "run", "show": "show", "history": "history", "rejudge": "rejudge",
            "inspect": "inspect", "trace": "trace", "schema": "schema", "report": "report",
            "compare": "compare", "export": "export", "import": "imports", "fleet": "fleet"}


def _commands(argv: list[str] | None = None) -> tuple:
    """The subcommand modules (rich, sqlite3...), imported here so that entry() can
    report an import that fails (ulimit -v) in one line. When the command line starts
    with a subcommand's name only that one is imported: `perflab inspect PID` needs none
    of the others' imports (the claims, the store, rich: ~0.2 s of start-up);
    --help, --version or a mistyped name import them all."""
    argv = sys.argv[1:] if argv is None else argv
    names = [argv[0]] if argv and argv[0] in COMMANDS else list(COMMANDS)
    return tuple(importlib.import_module(f"perflab.cli.{COMMANDS[n]}") for n in names)


class _Version(argparse.Action):
    """--version, with the version read (importlib.metadata, ~50 ms) only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from perflab import __version__

        parser._print_message(f"perflab {__version__}\n", sys.stdout)  # where argparse's own goes
        parser.exit()


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, not a usage dump
        self.exit(2, f"perflab: error: {safe(message)} (see '{self.prog} --help')\n")  # it may quote argv


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv` (default: every subcommand; see _commands)."""
    parser = Parser(prog="perflab", description="Put beliefs about the Linux kernel to a measured test.")
    parser.add_argument("--version", action=_Version, help="show program's version number and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in _commands(argv if argv is not None else []):
        module.add_parser(sub)
    return parser


def _terminate(signum, frame):
    raise KeyboardInterrupt


def _on_stop_signals() -> None:
    """SIGTERM, SIGHUP and SIGQUIT unwind like Ctrl-C, so every cleanup (kernel process
    groups, the trace cgroup, the run's status) runs; their default action would end
    Python at once (SIGQUIT's with a core dump, signal(7)). A signal already ignored
    (nohup(1) ignores SIGHUP) stays ignored."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _terminate)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    _on_stop_signals()
    try:
        return args.func(args)
    except PerflabError as exc:
        _say(f"perflab: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _say("perflab: interrupted")
        return 130
    except MemoryError:  # an address-space limit (ulimit -v) met after start-up, e.g. loading claims
        _say("perflab: not enough memory (MemoryError; ulimit -v too small?)")
        return 1
    except ImportError as exc:
        # The same limit met while mapping a shared library that a command imports as it
        # runs (the claims, for `run` and `list`): only the named command's module is
        # imported at start-up (_commands), so this is no longer met in entry()
        _say(f"perflab: cannot load what this command needs: {safe(str(exc))}")
        return 1
    except BrokenPipeError:
        # the reader went away (| head): stop, say so, and keep Python's exit-time flush
        # of stdout from failing again (docs.python.org, signal: "Note on SIGPIPE")
        _to_devnull(sys.stdout)
        _say("perflab: output closed (broken pipe); stopped")
        return 1


def _to_devnull(stream) -> None:
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    except (OSError, ValueError):
        pass


def _say(line: str) -> None:
    """The last line, on stderr, which may itself be gone (a closed pipe, a hung-up terminal)."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        _to_devnull(sys.stderr)


def entry() -> None:
    try:
        from perflab.results.output import standard_fds

        standard_fds()  # started with 2>&-: /dev/null there, not the next file perflab opens
        _commands()
    except MemoryError:  # an address-space limit (ulimit -v) too small to load perflab
        _say("perflab: not enough memory to start (MemoryError while loading; ulimit -v too small?)")
        sys.exit(1)
    except ImportError as exc:  # the same limit, met while mapping a shared library
        _say(f"perflab: cannot start: {safe(str(exc))}")
        sys.exit(1)
    sys.exit(main())
