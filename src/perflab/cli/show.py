"""perflab show [RUN]: a stored run again, from the database."""

from __future__ import annotations

import json
import sys

from perflab.cli.common import add_db, add_json
from perflab.core.safe import safe
from perflab.results import terminal
from perflab.results.output import writing
from perflab.results.noise import warn_if_noisy
from perflab.results.store import Store


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="show a stored run (default: the last)")
    p.add_argument("run", nargs="?", default="last", help="'last', a run id or a unique prefix of one")
    p.add_argument("--samples", action="store_true", help="with --json: raw samples and kernel records too")
    add_db(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    with Store(args.db, readonly=True) as store:
        run_id = store.resolve_run(args.run)
        info = store.run_info(run_id)
        verdicts = store.verdicts(run_id, samples=args.json and args.samples)
    with writing(sys.stdout):  # a full or failing stdout: one line, exit 1
        if args.json:
            for v in verdicts:
                print(json.dumps(v.to_json(samples=args.samples)))
            return 0
        print(safe(f"run {run_id}: {info.started_at}, budget {info.budget}, seed {info.seed}, "
                   f"{info.status}, perflab {info.perflab_version}"), file=sys.stderr)
        terminal.render(verdicts, sys.stdout)
    warn_if_noisy(verdicts)
    return 0
