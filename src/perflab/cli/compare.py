"""perflab compare A B: what changed from run A to run B (two runs of the database, or
two JSON Lines files, e.g. from two machines). Verdict flips first, then every shared
quantity as a ratio B/A with its interval and outcome (results/compare.py), then the
host facts that differ. ``--json``: one JSON object with all of it."""

from __future__ import annotations

import json
import sys

from perflab.cli import view_args
from perflab.cli.common import add_db
from perflab.core.errors import UsageError
from perflab.core.safe import safe, safe_tree
from perflab.results.output import writing


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare two runs (or two JSON files): verdict flips, ratios B/A, host facts")
    p.add_argument("a", metavar="A", help=view_args.SOURCES_HELP)
    p.add_argument("b", metavar="B", help="the same, compared with A (ratios are B/A)")
    p.add_argument("--all", action="store_true", help="list every quantity, not only those that moved")
    p.add_argument("--json", action="store_true", help="one JSON object: flips, every quantity, host diff")
    add_db(p)
    p.set_defaults(func=run)


def one(ref: str, db):
    from perflab.results import sources

    found = sources.load([ref], db)
    if len(found) != 1:
        ids = ", ".join(s.run_id or "(no id)" for s in found[:4])
        raise UsageError(f"{safe(ref)} holds {len(found)} runs ({ids}): compare needs one run per side "
                         "(import the file and name its runs, or split it)")
    return found[0]


def run(args) -> int:
    from perflab.results import compare as cmp

    a, b = one(args.a, args.db), one(args.b, args.db)
    if a.key == b.key:
        raise UsageError(f"A and B are the same run ({safe(a.run_id or a.label)}): compare two different runs")
    result = cmp.compare(a, b)
    with writing(sys.stdout):
        if args.json:
            print(json.dumps(result.to_json()))
        else:
            render(result, args.all)
    return 0


def render(r, every: bool) -> None:
    """The comparison (results/compare.py: Comparison) on the terminal."""
    from rich.console import Console
    from rich.table import Table

    from perflab.results import compare as cmp
    from perflab.results import sources
    from perflab.results.terminal import fmt

    console = Console(file=sys.stdout, highlight=False, width=max(120, Console(file=sys.stdout).width))

    def say(text: str = "") -> None:
        console.print(safe(text), markup=False)

    say(f"A: {sources.describe(r.a)}")
    say(f"B: {sources.describe(r.b)}")
    if r.same_machine:
        say(f"same machine: moved = {int(cmp.CONF * 100)}% interval outside [{cmp.BAND.lo:.3g}, {cmp.BAND.hi:.3g}] "
            f"(the A/A margin) and samples a rank test tells apart (Holm over all quantities); else within noise")
    else:
        say(f"{cmp.ACROSS_HOSTS}: these two runs are on different machines, so no change is called a regression")
    say()
    say(f"verdict flips: {len(r.flips) or 'none'}")
    if r.flips:
        t = Table(show_edge=False)
        for col in ("claim", "A", "B", "decision in A", "decision in B"):
            t.add_column(col)
        for f in r.flips:
            t.add_row(*safe_tree([f.claim, f.a, f.b, f.a_value, f.b_value]))
        console.print(t)
    counts = r.counts()
    say()
    say(f"quantities compared: {len(r.changes)} (" + ", ".join(f"{n} {k}" for k, n in counts.items()) + ")"
        if r.changes else "quantities compared: none shared")
    listed = cmp.MOVED + (cmp.TOO_FEW,)
    rows = cmp.ordered(r.changes) if every else [c for c in cmp.ordered(r.changes) if c.outcome in listed]
    if rows:
        t = Table(show_edge=False)
        for col in ("claim", "series", "x", "A", "B", "B/A", f"{int(cmp.CONF * 100)}% interval", "outcome"):
            t.add_column(col)
        for c in rows:
            ci = f"[{c.ci[0]:.3g}, {c.ci[1]:.3g}]" + (" *" if c.method == "intervals" else "") if c.ci else "-"
            t.add_row(*safe_tree([c.claim, c.series, "" if c.x is None else str(c.x), fmt(c.a, c.unit),
                                  fmt(c.b, c.unit), fmt(c.ratio), ci, c.outcome + (f" ({c.note})" if c.note else "")]))
        console.print(t)
        if any(c.method == "intervals" for c in rows):
            say("* no raw samples in a record: the interval is that of the two points' CIs, not a bootstrap")
    elif r.changes and not every:
        say("nothing moved (--all lists every quantity)")
    if r.only_a or r.only_b:
        say()
        if r.only_a:
            say(f"only in A: {', '.join(r.only_a)}")
        if r.only_b:
            say(f"only in B: {', '.join(r.only_b)}")
    say()
    say(f"host facts that differ: {len(r.host_diff) or 'none'}")
    for fact, va, vb in r.host_diff:
        say(f"  {fact}: {_fact(va)} -> {_fact(vb)}")


def _fact(value) -> str:
    if isinstance(value, list) and value and isinstance(value[0], dict):  # caches
        return ", ".join(f"L{c.get('level')} {c.get('type', '')} {c.get('size', '')}".replace("  ", " ")
                         for c in value)
    return "unknown" if value is None else str(value)
