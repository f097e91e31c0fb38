"""perflab history [CLAIM]: every stored verdict of one claim, oldest first; without a
claim, every run. A verdict decided by an older version of its claim's rule is marked."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from perflab.cli.common import add_db, add_json
from perflab.core.errors import UsageError
from perflab.engine import registry
from perflab.core.safe import safe_tree
from perflab.results.output import writing
from perflab.results.store import Store
from perflab.results.terminal import fmt


def add_parser(sub) -> None:
    p = sub.add_parser("history", help="the verdicts of one claim across runs (no claim: the runs)")
    p.add_argument("claim", nargs="?")
    add_db(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.claim is None:
        return _runs(args)
    claims = registry.select([args.claim])
    if len(claims) != 1 or claims[0].id != args.claim:
        raise UsageError(f"history needs one claim id, not a topic: {args.claim}")
    current = claims[0].rule.version
    with Store(args.db, readonly=True) as store:
        rows = store.history(args.claim)
    if args.json:
        for row in rows:
            print(json.dumps({**row.to_json(), "current_rule_version": current}))
        return 0
    if not rows:
        print(f"no stored results for {args.claim}", file=sys.stderr)
        return 0
    rows = [r.__class__(**safe_tree({k: getattr(r, k) for k in r.__dataclass_fields__})) for r in rows]
    table = Table(title=f"history of {args.claim} (rule version {current})")
    for col in ("run", "started", "budget", "run status", "outcome", "value [CI]", "rule", "host", "claim source"):
        table.add_column(col)
    for r in rows:
        ci = r.ci
        outcome = r.outcome + (f" ({r.reason})" if r.reason else "")
        rule = f"v{r.rule_version}" + (" (older rule)" if r.rule_version < current else "")
        table.add_row(r.run_id, r.started_at, r.budget, r.status, outcome,
                      fmt(r.value) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else ""),
                      rule, r.host_fingerprint or "?", r.source_hash)
    with writing(sys.stdout):
        Console(file=sys.stdout).print(table)
    return 0


def _runs(args) -> int:
    with Store(args.db, readonly=True) as store:
        runs = store.runs()
    if args.json:
        for r in runs:
            print(json.dumps({"run_id": r.id, "started_at": r.started_at, "finished_at": r.finished_at,
                              "status": r.status, "budget": r.budget, "seed": r.seed, "claims": r.claims,
                              "host_fingerprint": r.host_fingerprint, "perflab_version": r.perflab_version}))
        return 0
    table = Table(title=f"runs in {args.db or 'the default database'}")
    for col in ("run", "started", "status", "budget", "claims", "host"):
        table.add_column(col)
    for r in runs:
        table.add_row(*safe_tree([r.id, r.started_at, r.status, r.budget, str(r.claims), r.host.hostname or "?"]))
    with writing(sys.stdout):
        Console(file=sys.stdout).print(table)
    return 0
