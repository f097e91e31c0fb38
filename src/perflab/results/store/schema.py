"""The database schema as forward-only migrations (PRAGMA user_version = applied count).

Append a migration to change the schema; never edit a released one. A database whose
user_version is above len(MIGRATIONS) was written by a newer perflab and is refused.
"""

MIGRATIONS: list[str] = [
    # v1: runs, one result per claim per run, raw samples.
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,            -- running | complete | interrupted
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
]

SCHEMA_VERSION = len(MIGRATIONS)
