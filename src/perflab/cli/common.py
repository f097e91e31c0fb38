"""Options several subcommands share."""

from __future__ import annotations

import argparse


def add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH", help="results database (default: $PERFLAB_DB or $XDG_DATA_HOME/perflab/perflab.db)")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="JSON Lines on stdout, one object per claim")
