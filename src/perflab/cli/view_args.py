"""What report, compare and export share: the runs or files they read, and where their
output goes (a file written whole or not at all, or stdout)."""

from __future__ import annotations

import sys

from perflab.core.safe import safe
from perflab.results.output import check_target, write_file, writing

SOURCES_HELP = ("'last', a run id or a unique prefix of one (in --db), or a JSON Lines file of records "
                "('-': standard input)")


def add_output(parser, default: str | None, where: str) -> None:
    """-o FILE; ``where`` says what is written and where it goes by default."""
    parser.add_argument("-o", "--output", metavar="FILE", default=default,
                        help=f"write {where}; '-': stdout. FILE is replaced whole, never written through a symlink")


def load(refs: list[str], db, samples: bool = False) -> list:
    """The sources (results/sources.py), each run once (a run named twice is shown once)."""
    from perflab.results import sources  # imported when used: perflab starts with little memory

    out: dict[tuple[str, str], sources.Source] = {}
    for src in sources.load(refs, db, samples=samples):
        out.setdefault(src.key, src)
    return list(out.values())


def check_output(path: str | None) -> None:
    """Refuse an output path that cannot be written before any work is done."""
    if path not in (None, "-"):
        check_target(path)


def emit(path: str | None, text: str) -> None:
    """The whole text to stdout, or to the file (results/output.py: write_file)."""
    if path in (None, "-"):
        with writing(sys.stdout):
            sys.stdout.write(text)
        return
    write_file(path, text)


def say(line: str) -> None:
    print(safe(line), file=sys.stderr)
