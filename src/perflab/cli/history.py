"""perflab history [CLAIM]: every stored verdict of one claim, oldest first; without a
claim, every run. A verdict decided by an older version of its claim's rule is marked.
A claim file (its path, or its id) also shows its registered versions: a verdict of a
later definition than its first run's is not comparable (userclaims/registration.py)."""

from __future__ import annotations

import json
import os
import sys

from rich.console import Console
from rich.table import Table

from perflab.cli.common import add_db, add_json
from perflab.core.errors import UsageError
from perflab.engine import registry
from perflab.core.safe import safe, safe_tree
from perflab.results.output import writing
from perflab.results.store import Store
from perflab.results.terminal import fmt
from perflab.userclaims import files as claim_files
from perflab.userclaims import registration


def add_parser(sub) -> None:
    p = sub.add_parser("history", help="the verdicts of one claim across runs (no claim: the runs)")
    p.add_argument("claim", nargs="?")
    add_db(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.claim is None:
        return _runs(args)
    cid, current, file_hash = _claim(args.claim)
    with Store(args.db, readonly=True) as store:
        rows = store.history(cid)
        records = store.records(cid)
    if current is None:  # a claim file's id, known only from the database
        if not rows:
            raise UsageError(f"unknown claim or topic, and no stored results: {safe(cid)} (a claim file's history: "
                             "perflab history path/to/claim.toml)")
        current = max(r.rule_version for r in rows)
    versions = registration.versions(records)  # a claim file's registered definitions (else none)
    number = {v.definition_hash: v.number for v in versions}
    per_run = {run_id: number.get(registration.definition_hash(rec)) for run_id, _, rec in records}
    if args.json:
        for row in rows:
            extra = {}
            if versions:
                n = per_run.get(row.run_id)
                extra = {"claim_version": n, "definition_hash": versions[n - 1].definition_hash if n else None,
                         "comparable": n == 1}
            print(json.dumps({**row.to_json(), "current_rule_version": current, **extra}))
        return 0
    if not rows:
        print(f"no stored results for {safe(cid)}", file=sys.stderr)
        return 0
    rows = [r.__class__(**safe_tree({k: getattr(r, k) for k in r.__dataclass_fields__})) for r in rows]
    table = Table(title=f"history of {safe(cid)} (rule version {current})")
    columns = ["run", "started", "budget", "run status", "outcome", "value [CI]", "rule", "host", "claim source"]
    for col in columns + (["claim version"] if versions else []):
        table.add_column(col)
    for r in rows:
        ci = r.ci
        outcome = r.outcome + (f" ({r.reason})" if r.reason else "")
        rule = f"v{r.rule_version}" + (" (older rule)" if r.rule_version < current else "")
        cells = [r.run_id, r.started_at, r.budget, r.status, outcome,
                 fmt(r.value) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else ""),
                 rule, r.host_fingerprint or "?", r.source_hash]
        if versions:
            n = per_run.get(r.run_id)
            cells.append("?" if n is None else f"v{n}" + ("" if n == 1 else " (changed: not comparable)"))
        table.add_row(*cells)
    with writing(sys.stdout):
        Console(file=sys.stdout).print(table)
        if versions:
            _versions(versions, file_hash)
    return 0


def _claim(selector: str) -> tuple[str, int | None, str | None]:
    """The claim's id, its current rule version (None: only the database knows it, a
    claim file's id) and, for a claim file named by path, its definition's hash now."""
    try:
        claims = registry.select([selector])
    except UsageError:
        if claim_files.looks_like_path(selector) or os.path.isdir(selector):
            raise
        return selector, None, None
    if len(claims) == 1 and claims[0].id != selector and claims[0].source.endswith(".toml"):
        (d,) = claim_files.definitions([selector])[selector]
        return d.id, claims[0].rule.version, d.definition_hash
    if len(claims) != 1 or claims[0].id != selector:
        raise UsageError(f"history needs one claim id or claim file, not a topic or a directory: {safe(selector)}")
    return selector, claims[0].rule.version, None


def _versions(versions: list[registration.Version], file_hash: str | None) -> None:
    """A claim file's versions: the registered one, then every change with its words."""
    print(f"claim versions (a claim file's definition, registered by its first run on {versions[0].first_run}):")
    for v in versions:
        state = "registered" if v.number == 1 else registration.not_comparable(versions[0])
        print(safe(f"  v{v.number} {v.definition_hash}: first run {v.first_run} (run {v.first_run_id}), "
                   f"{v.verdicts} verdict(s): {state}"))
        for change in v.changes:
            print(safe(f"      {change}"))
    if file_hash and file_hash not in {v.definition_hash for v in versions}:
        print(f"  the file as it is now ({file_hash}) has not run yet; its first run will be v{len(versions) + 1}: "
              + registration.not_comparable(versions[0]))


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
