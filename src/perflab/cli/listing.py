"""perflab list: every claim, its topic, whether it can run here (or why not); with
--claims-dir DIR, the claim files of DIR too."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from perflab.observe import host
from perflab.engine import registry
from perflab.cli.common import add_json
from perflab.results.output import writing


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list the claims and whether they can run here")
    p.add_argument("selectors", nargs="*", metavar="TOPIC|CLAIM|FILE.toml|DIR")
    p.add_argument("--claims-dir", action="append", default=[], metavar="DIR",
                   help="also list the claim files (*.toml) of DIR, checked as 'perflab run' checks them")
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    claims = registry.select(args.selectors, claims_dirs=args.claims_dir)
    facts = host.collect()
    rows = []
    for c in claims:
        reason = c.unavailable(facts)
        rows.append({
            "claim": c.id,
            "topic": c.topic,
            "statement": c.statement,
            "runnable": reason is None,
            "reason": reason,
            "kernel": c.kernel,
            "source": c.source,
            "thresholds": c.thresholds,
            "rule": c.rule.describe(),
            "params": [{"name": p.name, "default": p.default, "range": [p.lo, p.hi], "unit": p.unit, "help": p.help} for p in c.params],
        })
    with writing(sys.stdout):  # a full or failing stdout: one line, exit 1
        if args.json:
            for row in rows:
                print(json.dumps(row))
            return 0
        table = Table(title=f"{len(rows)} claims")
        for col in ("claim", "topic", "runnable here", "statement"):
            table.add_column(col)
        for row in rows:
            table.add_row(row["claim"], row["topic"], "yes" if row["runnable"] else f"no: {row['reason']}", row["statement"])
        Console(file=sys.stdout).print(table)
    return 0
