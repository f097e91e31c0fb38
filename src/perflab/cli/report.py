"""perflab report [RUN...] -o report.html: runs as a page with plots (results/report/).

HTML (default): one self-contained file. ``--format md``: Markdown with its PNG plots in
a folder beside it (``report.md`` -> ``report-plots/``), for pasting into an issue. The
output path is checked before any work; the page is written whole or not at all.
"""

from __future__ import annotations

from typing import Callable

from perflab.cli import view_args
from perflab.cli.common import add_db
from perflab.core.errors import UsageError
from perflab.results.store.fleets import is_fleet_ref


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="a report with plots: HTML (default) or Markdown (default: the last run)")
    p.add_argument("runs", nargs="*", default=["last"], metavar="RUN|FILE",
                   help=view_args.SOURCES_HELP + "; or one fleet ('fleet-...', 'fleet-last'): claims x hosts")
    p.add_argument("--format", choices=("html", "md"), default="html", help="html (default) or md (PNG plots beside)")
    view_args.add_output(p, None, "the report to FILE (default report.html, or report.md with --format md)")
    add_db(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from perflab.results import report
    from perflab.results.report import files

    out = args.output or ("report.md" if args.format == "md" else "report.html")
    if args.format == "md" and out == "-":
        raise UsageError("--format md writes PNG files beside the page: give -o FILE.md, not stdout")
    if args.format == "md":
        files.check(out)
    else:
        view_args.check_output(out)
    fleets = [r for r in args.runs if is_fleet_ref(r) and "@" not in r]
    if fleets:
        if len(args.runs) != 1:
            raise UsageError(f"a fleet is reported alone: give {fleets[0]} and nothing else (or FLEET@HOST for a run)")
        return fleet(args, out)
    srcs = view_args.load(args.runs, args.db)
    claims = sum(len(s.verdicts) for s in srcs)
    size, plots = written(args.format, out, lambda: report.html_page(srcs),
                          lambda folder: report.markdown_page(srcs, folder))
    if out != "-":
        view_args.say(f"perflab: wrote {out}: {claims} claim(s) of {len(srcs)} run(s), {plots} plot(s), "
                      f"{size / 1024:.0f} KiB")
    return 0


def fleet(args, out: str) -> int:
    """A fleet's page (results/report/fleet_page.py): the claims x hosts table and, per
    claim, every host's curves on one plot."""
    from perflab.results import fleet_view
    from perflab.results.report import fleet_page

    view = fleet_view.load(args.runs[0], args.db)
    size, plots = written(args.format, out, lambda: fleet_page.html_page(view),
                          lambda folder: fleet_page.markdown_page(view, folder))
    if out != "-":
        view_args.say(f"perflab: wrote {out}: fleet {view.info.id}, {len(view.claims)} claim(s) x "
                      f"{len(view.hosts)} host(s), {plots} plot(s), {size / 1024:.0f} KiB")
    return 0


def written(fmt: str, out: str, html: Callable[[], str],
            markdown: Callable[[str], tuple[str, dict[str, bytes]]]) -> tuple[int, int]:
    """Writes the page (HTML, or Markdown with its PNGs in the folder beside it) and
    returns its size in bytes, plots included, and its number of plots."""
    from perflab.results.report import files

    if fmt == "html":
        text = html()
        view_args.emit(out, text)
        return len(text.encode()), text.count("<svg ")
    folder = files.plots_folder(out)
    text, pngs = markdown(folder.name)
    files.write_with_plots(out, text, folder, pngs)
    return len(text.encode()) + sum(len(b) for b in pngs.values()), len(pngs)
