"""perflab rejudge [RUN...] [--all] [--file F.jsonl]: stored verdicts decided again under
the current rules, the recorded and the new verdict side by side with their rule
versions (engine/rejudge.py). Nothing is written: the database only read."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from perflab.cli.common import add_db, add_json
from perflab.core.errors import EnvironmentRefused, UsageError
from perflab.core.record import RecordError, Verdict, read_lines
from perflab.core.safe import safe_tree
from perflab.engine import registry
from perflab.engine.rejudge import Rejudged, rejudge
from perflab.results.output import writing
from perflab.results.store import Store


def add_parser(sub) -> None:
    p = sub.add_parser("rejudge", help="decide stored verdicts again under the current rules")
    p.add_argument("runs", nargs="*", metavar="RUN", help="run ids or unique prefixes (default: the last run)")
    p.add_argument("--all", action="store_true", help="every run in the database")
    p.add_argument("--file", action="append", default=[], metavar="F.jsonl",
                   help="JSON lines of records (run --json [--samples], e.g. from another machine); repeatable")
    add_db(p)
    add_json(p)
    p.set_defaults(func=run)


def _from_files(paths: list[str]) -> list[Verdict]:
    out = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                out += read_lines(f, path)
        except OSError as exc:
            raise EnvironmentRefused(f"cannot read {path}: {exc.strerror or exc}") from None
        except RecordError as exc:
            raise UsageError(str(exc)) from None
    return out


def _from_store(args) -> list[Verdict]:
    with Store(args.db, readonly=True) as store:
        ids = [r.id for r in store.runs()] if args.all else [store.resolve_run(ref) for ref in args.runs or ["last"]]
        return [v for run_id in ids for v in store.verdicts(run_id)]


def run(args) -> int:
    if args.file and (args.runs or args.all):
        raise UsageError("give run ids (or --all), or --file, not both")
    verdicts = _from_files(args.file) if args.file else _from_store(args)
    results = rejudge(verdicts, {c.id: c for c in registry.all_claims()})
    with writing(sys.stdout):
        if args.json:
            for r in results:
                rec = r.new.to_json(samples=False)
                rec["rejudged"] = {"old_outcome": r.old.outcome.value, "old_reason": r.old.reason.value
                                   if r.old.reason else None, "old_rule_version": _version(r.old),
                                   "rule_version": _version(r.new), "basis": r.basis, "note": r.note}
                print(json.dumps(rec))
            return 0
        _table(results)
    return 0


def _version(v: Verdict) -> int | None:
    return v.decision.rule_version if v.decision else None


def _outcome(v: Verdict) -> str:
    return v.outcome.value + (f" ({v.reason.value})" if v.reason else "")


def _table(results: list[Rejudged]) -> None:
    table = Table(title=f"{len(results)} verdicts decided again ({sum(r.changed for r in results)} changed)")
    for col in ("run", "claim", "recorded", "rule", "now", "rule", "from", "note"):
        table.add_column(col)
    for r in results:
        mark = "[bold]" if r.changed else ""
        old_v, new_v = _version(r.old), _version(r.new)
        row = [r.old.run_id[:15], r.old.claim, _outcome(r.old), f"v{old_v}" if old_v else "-", _outcome(r.new),
               f"v{new_v}" if new_v else "-", r.basis, r.note]
        row = safe_tree(row)
        table.add_row(*[(mark + cell.replace("[", "\\[")) if i == 4 else cell.replace("[", "\\[")
                        for i, cell in enumerate(row)])
    Console(file=sys.stdout, width=200).print(table)
