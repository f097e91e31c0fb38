"""perflab export [RUN...] --format csv|jsonl|openmetrics: stored runs for other tools.

csv: the long form, one row per point (results/export.py, CSV_COLUMNS); jsonl: the
records (``--samples``: with every raw sample and kernel record); openmetrics: a text
exposition for Prometheus, e.g. a file for node_exporter's textfile collector.
"""

from __future__ import annotations

from perflab.cli import view_args
from perflab.cli.common import add_db

FORMATS = ("csv", "jsonl", "openmetrics")  # results/export.py writes each


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="runs as CSV, JSON Lines or OpenMetrics (default: the last run)")
    p.add_argument("runs", nargs="*", default=["last"], metavar="RUN|FILE", help=view_args.SOURCES_HELP)
    p.add_argument("--format", choices=FORMATS, default="csv", help="default: csv")
    p.add_argument("--samples", action="store_true", help="jsonl: every point's raw samples and kernel records")
    view_args.add_output(p, "-", "the export to FILE (default stdout)")
    add_db(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from perflab.results import export

    view_args.check_output(args.output)
    srcs = view_args.load(args.runs, args.db, samples=args.samples and args.format == "jsonl")
    view_args.emit(args.output, export.render(args.format, srcs, samples=args.samples))
    if args.output not in (None, "-"):
        view_args.say(f"perflab: wrote {args.output} ({args.format}, {sum(len(s.verdicts) for s in srcs)} "
                      f"record(s) of {len(srcs)} run(s))")
    return 0
