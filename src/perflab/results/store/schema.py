"""The database schema as forward-only migrations (PRAGMA user_version = applied count).

Append a migration to change the schema; never edit a released one. A migration is SQL,
or a Python function of the connection for what SQL cannot do (rewriting stored records).
A database whose user_version is above len(MIGRATIONS) was written by a newer perflab
and is refused. ``APPLICATION_ID`` marks a file as perflab's (sqlite.org/fileformat2.html,
"Application ID"); a file carrying another is never touched.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Callable, Union

from perflab.core.record import SCHEMA_VERSION as RECORD_VERSION
from perflab.core.record import upgrade_v1

APPLICATION_ID = 0x70666C62  # "pflb"


def _records_to_v2(conn: sqlite3.Connection) -> None:
    """v3: every stored record becomes record version 2: ``schema_version``, the rule
    version that decided it (1: there was no other), and the raw samples of each point
    with their rounds, taken from the samples table (which always kept them)."""
    rows = conn.execute("SELECT rowid, run_id, claim, record FROM results").fetchall()
    for rowid, run_id, claim, text in rows:
        try:
            rec = json.loads(text)
        except ValueError:
            continue  # left as it is; reading it says what is wrong
        if not isinstance(rec, dict) or rec.get("schema_version", 1) != 1:
            continue
        rec = upgrade_v1(rec)
        values: dict[tuple[str, str], list[tuple[float, int]]] = {}
        for series, x, value, rnd in conn.execute(
                "SELECT series, x, value, round FROM samples WHERE run_id = ? AND claim = ? ORDER BY rowid",
                (run_id, claim)):
            values.setdefault((series, x), []).append((value, rnd))
        for s in rec.get("series") or []:
            for p in s.get("points") or []:
                got = values.get((s.get("name"), json.dumps(p.get("x"))))
                if got is not None and len(got) == p.get("n"):
                    p["samples"] = [v for v, _ in got]
                    p["rounds"] = [r for _, r in got]
        conn.execute("UPDATE results SET record = ?, schema_version = ?, rule_version = 1 WHERE rowid = ?",
                     (json.dumps(rec), RECORD_VERSION, rowid))


Migration = Union[str, Callable[[sqlite3.Connection], None]]

MIGRATIONS: list[Migration | tuple[Migration, ...]] = [
    # v1: runs, one result per claim per run, raw samples.
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,            -- running | complete | interrupted | failed | abandoned
        perflab_version TEXT NOT NULL,
        budget TEXT NOT NULL,
        seed INTEGER NOT NULL,
        argv TEXT NOT NULL,              -- JSON list
        host TEXT NOT NULL               -- JSON object (host.collect)
    );
    CREATE TABLE results (
        run_id TEXT NOT NULL REFERENCES runs(id),
        claim TEXT NOT NULL,
        outcome TEXT NOT NULL,
        summary TEXT NOT NULL,
        source_hash TEXT NOT NULL,
        duration_s REAL NOT NULL,
        record TEXT NOT NULL,            -- JSON object: the --json line of this verdict
        PRIMARY KEY (run_id, claim)
    );
    CREATE TABLE samples (
        run_id TEXT NOT NULL,
        claim TEXT NOT NULL,
        series TEXT NOT NULL,
        x TEXT,                          -- JSON value (null for single-point series)
        round INTEGER NOT NULL,
        value REAL NOT NULL,
        record TEXT NOT NULL,            -- the kernel's JSON record, verbatim
        FOREIGN KEY (run_id, claim) REFERENCES results(run_id, claim)
    );
    """,
    # v2: the host fingerprint as a column (comparison across machines), and indexes
    # for `history` and sample look-ups.
    """
    ALTER TABLE runs ADD COLUMN host_fingerprint TEXT;
    CREATE INDEX results_by_claim ON results (claim, run_id);
    CREATE INDEX samples_by_result ON samples (run_id, claim);
    """,
    # v3: the typed, versioned record. Runs know the process that runs them (pid, its
    # start time in clock ticks since boot, the boot id), so one whose process is gone is
    # marked 'abandoned' by the next command; results know the record and rule versions
    # and the inconclusive reason; samples know the CPU they were pinned to.
    (
        """
        ALTER TABLE runs ADD COLUMN pid INTEGER;
        ALTER TABLE runs ADD COLUMN pid_start INTEGER;
        ALTER TABLE runs ADD COLUMN boot_id TEXT;
        ALTER TABLE results ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE results ADD COLUMN rule_version INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE results ADD COLUMN reason TEXT;
        ALTER TABLE samples ADD COLUMN cpu INTEGER;
        """,
        _records_to_v2,
    ),
    # v4: fleets (perflab fleet run, store/fleets.py). A fleet is one command that ran the
    # same claims on several hosts (Dask workers); each host's run is a run of its own
    # (status 'fleet'), linked to its fleet by fleet_hosts, which also keeps how that host
    # ended (complete, lost, timeout...) and its facts as the worker reported them. Runs,
    # results and samples are unchanged: a database of v3 reads the same under v4.
    """
    CREATE TABLE fleets (
        id TEXT PRIMARY KEY,             -- fleet-<UTC %Y%m%dT%H%M%S>-<hex>
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,            -- running | complete | interrupted | failed | abandoned
        perflab_version TEXT NOT NULL,
        scheduler TEXT NOT NULL,         -- the Dask scheduler's address
        budget TEXT NOT NULL,
        seed INTEGER NOT NULL,
        claims TEXT NOT NULL,            -- JSON list of the claim ids every host was given
        argv TEXT NOT NULL,              -- JSON list
        pid INTEGER,                     -- the client's process (store/liveness.py)
        pid_start INTEGER,
        boot_id TEXT,
        hostname TEXT
    );
    CREATE TABLE fleet_hosts (
        fleet_id TEXT NOT NULL REFERENCES fleets(id),
        host TEXT NOT NULL,              -- the Dask worker's name
        position INTEGER NOT NULL,       -- the host's column in the claims x hosts table
        run_id TEXT REFERENCES runs(id), -- null while (or when) nothing came back
        status TEXT NOT NULL,            -- waiting | running | complete | lost | timeout | failed | interrupted | refused
        reason TEXT,                     -- in words, for every status but complete
        facts TEXT,                      -- JSON: what the worker reported of itself (fleet/probe.py)
        PRIMARY KEY (fleet_id, host)
    );
    CREATE INDEX fleet_hosts_by_run ON fleet_hosts (run_id);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
