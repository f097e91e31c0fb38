"""perflab history CLAIM: every stored verdict of one claim, oldest first."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from perflab.engine import registry
from perflab.cli.common import add_db, add_json
from perflab.core.errors import UsageError
from perflab.results.terminal import fmt
from perflab.results.store import Store


def add_parser(sub) -> None:
    p = sub.add_parser("history", help="the verdicts of one claim across runs")
    p.add_argument("claim")
    add_db(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    claims = registry.select([args.claim])
    if len(claims) != 1 or claims[0].id != args.claim:
        raise UsageError(f"history needs one claim id, not a topic: {args.claim}")
    rows = Store(args.db, readonly=True).history(args.claim)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    if not rows:
        print(f"no stored results for {args.claim}", file=sys.stderr)
        return 0
    table = Table(title=f"history of {args.claim}")
    for col in ("run", "started", "budget", "outcome", "value [CI]", "host", "claim source"):
        table.add_column(col)
    for r in rows:
        ci = r["ci"]
        table.add_row(r["run_id"], r["started_at"], r["budget"], r["outcome"],
                      fmt(r["value"]) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else ""),
                      r["host_fingerprint"] or "?", r["source_hash"])
    Console(file=sys.stdout).print(table)
    return 0
