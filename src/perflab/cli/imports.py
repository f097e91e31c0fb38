"""perflab import FILE: records made on another machine, stored as runs of their own.

The file holds JSON Lines records (``perflab run --json --samples`` there; without
``--samples`` the points keep their median, CI and n but no raw values). Each source run
in it becomes one run here, status ``imported``, with its own host; the new run ids are
printed on stdout, one a line, so that ``id=$(perflab import r.jsonl)`` works. The whole
file is read and checked before anything is written, and every run of it is stored in
one transaction: a bad line leaves the database as it was.
"""

from __future__ import annotations

import json
import sys

from perflab.cli.common import add_db, add_json
from perflab.core.errors import UsageError
from perflab.core.safe import safe
from perflab.results.output import writing


def add_parser(sub) -> None:
    p = sub.add_parser("import", help="store records from another machine (JSON Lines) as runs of their own")
    p.add_argument("file", metavar="FILE", help="JSON Lines of records ('-': standard input)")
    p.add_argument("--run", metavar="ID", help="only the records of this source run")
    add_db(p)
    add_json(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from perflab.results import sources
    from perflab.results.store import Store

    found = sources.from_file(args.file)
    if args.run is not None:
        found = [s for s in found if s.run_id == args.run]
        if not found:
            raise UsageError(f"no records of run {safe(args.run)} in {safe(args.file)}")
    label = "-" if args.file == "-" else args.file
    with Store(args.db) as store:
        before = {s.run_id: store.stored_copy(s.verdicts) for s in found}
        ids = store.import_runs([s.verdicts for s in found], source=label)
        path = store.path
    with writing(sys.stdout):
        for src, run_id in zip(found, ids):
            new = before[src.run_id] is None
            if args.json:
                print(json.dumps({"run_id": run_id, "source_run": src.run_id, "records": len(src.verdicts),
                                  "host": src.host.hostname, "host_fingerprint": src.host.fingerprint(),
                                  "new": new}))
            else:
                print(run_id)
            what = "imported as" if new else "already stored as"
            print(safe(f"perflab: {src.label} ({len(src.verdicts)} records, host {src.host.hostname or '?'}, "
                       f"{src.host.cpu_model or '?'}) {what} run {run_id} in {path}"), file=sys.stderr)
    return 0
