"""Fleets in the database: one ``perflab fleet run`` over several hosts (fleet/dispatch.py).

A fleet is a row of ``fleets`` (schema v4, store/schema.py); each host it was given is a
row of ``fleet_hosts`` (its column in the claims x hosts table, how it ended, the facts
its worker reported) and, once anything of it came back, a run of its own in ``runs``:
status ``fleet``, the records' own host, argv ``fleet run FLEET --host NAME --run
SOURCE`` (the source run id being the run id ``perflab run`` gave it on that host, as an
import keeps it: results/sources.py, ``origin``). Records are stored as they arrive, each
in its own transaction, so a fleet stopped half way keeps what came home.

Fleet ids are ``fleet-`` and a run id (api.new_run_id), so they never collide with a run
id or a prefix of one. ``FLEET@HOST`` names the run of one host of a fleet wherever a run
is named (show, report, compare, export).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from perflab.core.errors import EnvironmentRefused, UsageError
from perflab.core.record import Host
from perflab.results.store import liveness

if TYPE_CHECKING:
    from perflab.results.store import Store

PREFIX = "fleet-"
RUN_STATUS = "fleet"  # the status of a host's run in the runs table
ENDED = ("complete", "lost", "timeout", "failed", "interrupted", "refused")


@dataclass
class FleetHost:
    name: str
    position: int
    status: str  # waiting | running | complete | lost | timeout | failed | interrupted | refused
    reason: str | None
    run_id: str | None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class FleetInfo:
    id: str
    started_at: str
    finished_at: str | None
    status: str
    perflab_version: str
    scheduler: str
    budget: str
    seed: int
    claims: list[str]
    argv: list[str]
    hosts: list[FleetHost]

    def host(self, name: str) -> FleetHost | None:
        return next((h for h in self.hosts if h.name == name), None)


def is_fleet_ref(ref: str) -> bool:
    return ref.startswith(PREFIX)


def begin(store: Store, fleet_id: str, started_at: str, version: str, scheduler: str, budget: str, seed: int,
          claims: list[str], argv: list[str], hosts: list[tuple[str, str, str | None, dict]]) -> None:
    """The fleet and its hosts, (name, status, reason, facts) each, in one transaction."""
    me = liveness.this_process()
    store._write([
        ("INSERT INTO fleets (id, started_at, status, perflab_version, scheduler, budget, seed, claims, argv, pid,"
         " pid_start, boot_id, hostname) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
         (fleet_id, started_at, version, scheduler, budget, seed, json.dumps(claims), json.dumps(argv), me.pid,
          me.start, me.boot_id, me.hostname)),
        ("INSERT INTO fleet_hosts (fleet_id, host, position, status, reason, facts) VALUES (?, ?, ?, ?, ?, ?)",
         [(fleet_id, name, i, status, reason, json.dumps(facts)) for i, (name, status, reason, facts)
          in enumerate(hosts)]),
    ])


def begin_host_run(store: Store, fleet_id: str, host: str, run_id: str, source_run: str, started_at: str,
                   version: str, budget: str, seed: int, facts: Host) -> None:
    """The run of one host: stored when its first record (or its loss) comes home."""
    argv = ["fleet", "run", fleet_id, "--host", host] + (["--run", source_run] if source_run else [])
    store._write([
        ("INSERT INTO runs (id, started_at, status, perflab_version, budget, seed, argv, host, host_fingerprint)"
         " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
         (run_id, started_at, RUN_STATUS, version, budget, seed, json.dumps(argv), json.dumps(facts.to_json()),
          facts.fingerprint())),
        ("UPDATE fleet_hosts SET run_id = ? WHERE fleet_id = ? AND host = ?", (run_id, fleet_id, host)),
    ])


def set_host(store: Store, fleet_id: str, host: str, status: str, reason: str | None = None,
             finished_at: str | None = None) -> None:
    """How a host stands (running) or ended; an ended host's run gets its finish time."""
    statements: list[tuple[str, tuple | list]] = [
        ("UPDATE fleet_hosts SET status = ?, reason = ? WHERE fleet_id = ? AND host = ?",
         (status, reason, fleet_id, host))]
    if finished_at and status in ENDED:
        statements.append(("UPDATE runs SET finished_at = ? WHERE id = (SELECT run_id FROM fleet_hosts"
                           " WHERE fleet_id = ? AND host = ?)", (finished_at, fleet_id, host)))
    store._write(statements)


def finish(store: Store, fleet_id: str, finished_at: str, status: str) -> None:
    store._write([("UPDATE fleets SET finished_at = ?, status = ? WHERE id = ?", (finished_at, status, fleet_id))])


def _abandoned(store: Store) -> set[str]:
    here = liveness.this_process()
    rows = store._query("SELECT id, pid, pid_start, boot_id, hostname FROM fleets WHERE status = 'running'")
    return {f for f, pid, start, boot, host in rows if liveness.gone(pid, start, boot, host, here)}


def mark_abandoned(store: Store) -> None:
    """A fleet left 'running' by a client that is gone (kill -9) is 'abandoned', as a run is."""
    gone = _abandoned(store)
    if gone:
        store._write([("UPDATE fleets SET status = 'abandoned' WHERE status = 'running' AND id = ?",
                       [(f,) for f in sorted(gone)])])


def resolve(store: Store, ref: str) -> str:
    """``fleet-last``, a fleet id, or an unambiguous prefix of one (``fleet-2026``)."""
    if ref == PREFIX + "last":
        rows = store._query("SELECT id FROM fleets ORDER BY started_at DESC, rowid DESC LIMIT 1")
        if not rows:
            raise EnvironmentRefused(f"no fleets in {store.path} yet: try 'perflab fleet run'")
        return rows[0][0]
    rows = store._query("SELECT id FROM fleets WHERE substr(id, 1, length(?)) = ?", (ref, ref))
    if len(rows) != 1:
        raise UsageError(f"{'no' if not rows else 'more than one'} fleet matches {ref!r} in {store.path}")
    return rows[0][0]


def info(store: Store, fleet_id: str) -> FleetInfo:
    rows = store._query("SELECT id, started_at, finished_at, status, perflab_version, scheduler, budget, seed, claims,"
                        " argv FROM fleets WHERE id = ?", (fleet_id,))
    if not rows:
        raise UsageError(f"no fleet {fleet_id!r} in {store.path}")
    fid, started, finished, status, version, scheduler, budget, seed, claims, argv = rows[0]
    if status == "running" and store.readonly and fid in _abandoned(store):
        status = "abandoned"
    hosts = [FleetHost(name, pos, hstatus, reason, run_id, store._json(facts or "{}", f"host {name}'s facts") or {})
             for name, pos, hstatus, reason, run_id, facts in store._query(
                 "SELECT host, position, status, reason, run_id, facts FROM fleet_hosts WHERE fleet_id = ?"
                 " ORDER BY position", (fleet_id,))]
    return FleetInfo(fid, started, finished, status, version, scheduler, budget, seed,
                     store._json(claims, f"fleet {fid}'s claims"), store._json(argv, f"fleet {fid}'s argv"), hosts)


def fleets(store: Store) -> list[str]:
    """Every fleet id, oldest first."""
    return [r[0] for r in store._query("SELECT id FROM fleets ORDER BY started_at, rowid")]


def host_run(store: Store, ref: str) -> str:
    """The run id of ``FLEET@HOST``."""
    fleet_ref, _, host = ref.partition("@")
    fleet = info(store, resolve(store, fleet_ref))
    found = fleet.host(host)
    if found is None:
        names = ", ".join(h.name for h in fleet.hosts)
        raise UsageError(f"fleet {fleet.id} has no host {host!r} (its hosts: {names})")
    if found.run_id is None:
        raise UsageError(f"host {host} of fleet {fleet.id} has no run: it {found.status}"
                         + (f" ({found.reason})" if found.reason else ""))
    return found.run_id
