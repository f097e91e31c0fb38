"""Records made elsewhere, stored as a run of their own (``perflab import``, the fleet).

A record carries everything a run needs to be shown, compared and decided again: its
host, its points with their raw samples and, from ``perflab run --json --samples``, the
kernel records. Importing stores one source run's records as one new run of this
database, in one transaction (all of them or none), with status ``imported`` and the
command that reproduces the import as its argv (``import FILE --run ID``). The run's
host is the records' own, never this machine's; its start time is the one the source
run id carries (``api.new_run_id``), else the time of the import.

Importing the same run twice stores it once: a run already here (the same source run id
on the same host fingerprint, imported or measured here) is returned as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import shlex
from typing import TYPE_CHECKING

from perflab.core.errors import BadInput, EnvironmentRefused
from perflab.core.record import Verdict

if TYPE_CHECKING:
    from perflab.results.store import Store

STATUS = "imported"
_RUN_ID = re.compile(r"^(\d{8}T\d{6})-[0-9a-f]+$")  # api.new_run_id: UTC %Y%m%dT%H%M%S-<hex>


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def started_at(source_run: str) -> str | None:
    """The UTC start time a perflab run id carries, ISO 8601 as the runs table keeps it."""
    m = _RUN_ID.match(source_run)
    if not m:
        return None
    try:
        when = dt.datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None
    return when.isoformat(timespec="seconds")


def plan_of(rerun: str) -> tuple[str, int]:
    """Budget and seed of the source run, read from a record's rerun command (cli/run.py
    prints ``--seed N --budget NAME`` in every one); ``unknown`` and 0 when absent."""
    try:
        words = shlex.split(rerun)
    except ValueError:
        words = []
    budget, seed = "unknown", 0
    for flag, value in zip(words, words[1:]):
        if flag == "--budget":
            budget = value
        elif flag == "--seed" and value.isdigit() and int(value) < 2**63:
            seed = int(value)
    return budget, seed


def check_one_run(verdicts: list[Verdict], source: str) -> str:
    """The source run id the records share; BadInput if they are none, of several runs,
    or hold a claim twice (a run has one verdict per claim)."""
    if not verdicts:
        raise BadInput(f"{source}: no records to import")
    runs = sorted({v.run_id for v in verdicts})
    if len(runs) != 1:
        raise BadInput(f"{source}: records of {len(runs)} runs ({', '.join(runs[:3])}...) given as one run")
    seen: set[str] = set()
    for v in verdicts:
        if v.claim in seen:
            raise BadInput(f"{source}: run {runs[0] or '(no id)'} holds claim {v.claim} twice")
        seen.add(v.claim)
    return runs[0]


def stored_copy(store: Store, verdicts: list[Verdict]) -> str | None:
    """The id of this run if it is already in ``store``: measured here under its own id,
    or imported before (argv ``import FILE --run ID``), on the same host fingerprint."""
    source_run = verdicts[0].run_id if verdicts else ""
    if not source_run:
        return None
    fingerprint = verdicts[0].host.fingerprint()
    rows = store._query("SELECT id, argv, host_fingerprint FROM runs WHERE id = ? OR status = ?",
                        (source_run, STATUS))
    for run_id, argv, fp in rows:
        if fp != fingerprint:
            continue
        if run_id == source_run:
            return run_id
        try:
            words = json.loads(argv)
        except (TypeError, ValueError):
            continue
        if isinstance(words, list) and words[-2:] == ["--run", source_run]:
            return run_id
    return None


def import_verdicts(store: Store, verdicts: list[Verdict], source: str = "") -> str:
    """Store one source run's records as a new run; returns its id (or the id of the copy
    already stored). Raises BadInput for records that are not one run, EnvironmentRefused
    when the database refuses (then nothing is written)."""
    return import_runs(store, [verdicts], source)[0]


def import_runs(store: Store, runs: list[list[Verdict]], source: str = "") -> list[str]:
    """Several source runs (a file may hold several), each as a run of its own, in one
    transaction: all of them are stored or none. Returns the run ids, in order."""
    if store.readonly:
        raise EnvironmentRefused(f"database {store.path} is open read-only: cannot import into it")
    for verdicts in runs:
        check_one_run(verdicts, source or "import")
    if len({v[0].run_id for v in runs}) != len(runs):
        raise BadInput(f"{source or 'import'}: one run given twice")
    now = _now()
    ids: list[str] = []
    statements: list[tuple[str, tuple | list]] = []
    for verdicts in runs:
        existing = stored_copy(store, verdicts)
        if existing:
            ids.append(existing)
            continue
        run_id = new_id(store, now, ids)
        ids.append(run_id)
        statements += _run_statements(store, run_id, verdicts, source, now)
    if statements:
        store._write(statements)
    return ids


def new_id(store: Store, now: dt.datetime, taken: list[str]) -> str:
    """A run id as api.new_run_id makes them, neither in ``taken`` nor in the database."""
    while True:
        run_id = now.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(2)
        if run_id not in taken and not store._query("SELECT 1 FROM runs WHERE id = ?", (run_id,)):
            return run_id


def _run_statements(store: Store, run_id: str, verdicts: list[Verdict], source: str,
                    now: dt.datetime) -> list[tuple[str, tuple | list]]:
    source_run = verdicts[0].run_id
    first = verdicts[0]
    budget, seed = plan_of(first.rerun)
    argv = ["import", source or "-"] + (["--run", source_run] if source_run else [])
    finished = now.isoformat(timespec="seconds")
    statements: list[tuple[str, tuple | list]] = [(
        "INSERT INTO runs (id, started_at, finished_at, status, perflab_version, budget, seed, argv, host,"
        " host_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, started_at(source_run) or finished, finished, STATUS, first.perflab_version or "unknown", budget,
         seed, json.dumps(argv), json.dumps(first.host.to_json()), first.host.fingerprint()),
    )]
    for v in verdicts:
        statements += store.verdict_statements(run_id, v)
    return statements
