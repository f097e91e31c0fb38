"""perflab show [RUN | FLEET]: a stored run again, from the database; or a fleet
(store/fleets.py) as one table, claims x hosts (results/fleet_view.py)."""

from __future__ import annotations

import json
import sys

from perflab.cli.common import add_db, add_json
from perflab.core.safe import safe
from perflab.results import terminal
from perflab.results.output import writing
from perflab.results.noise import warn_if_noisy
from perflab.results.store import Store
from perflab.results.store.fleets import is_fleet_ref


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="show a stored run (default: the last)")
    p.add_argument("run", nargs="?", default="last",
                   help="'last', a run id or a unique prefix of one; a fleet id ('fleet-...', 'fleet-last'); FLEET@HOST")
    p.add_argument("--samples", action="store_true", help="with --json: raw samples and kernel records too")
    p.add_argument("-v", "--verbose", action="store_true", help="a fleet: each cell with its decision's value [CI]")
    add_db(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if is_fleet_ref(args.run) and "@" not in args.run:
        return fleet(args)
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


def fleet(args) -> int:
    """The claims x hosts table; --json: every host's records, each with ``fleet``: {id, host}."""
    from perflab.results import fleet_view

    view = fleet_view.load(args.run, args.db)
    with writing(sys.stdout):
        if args.json:
            for h in view.hosts:
                src = view.sources.get(h.name)
                if src is None:
                    continue
                verdicts = src.verdicts
                if args.samples:
                    with Store(args.db, readonly=True) as store:
                        verdicts = store.verdicts(src.run_id, samples=True)
                for v in verdicts:
                    print(json.dumps({**v.to_json(samples=args.samples), "fleet": {"id": view.info.id, "host": h.name}}))
            return 0
        print(safe(fleet_view.heading(view)), file=sys.stderr)
        fleet_view.render(view, sys.stdout, verbose=args.verbose)
    return 0
