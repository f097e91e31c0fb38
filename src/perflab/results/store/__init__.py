"""Results database: SQLite (stdlib), WAL, versioned schema (store/schema.py).

Default path ``$XDG_DATA_HOME/perflab/perflab.db`` (``~/.local/share`` when unset),
overridden by ``--db PATH`` or ``PERFLAB_DB``. Each verdict is committed as soon as its
claim finishes, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from perflab.core.errors import EnvironmentRefused, UsageError
from perflab.results.store.schema import MIGRATIONS, SCHEMA_VERSION


def default_path() -> Path:
    if os.environ.get("PERFLAB_DB"):
        return Path(os.environ["PERFLAB_DB"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "perflab" / "perflab.db"


def _user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, path: Path | str = "database") -> int:
    """Bring the schema up to date; refuse a database from a newer perflab."""
    version = _user_version(conn)
    if version > SCHEMA_VERSION:
        raise EnvironmentRefused(
            f"{path} has schema version {version}, newer than this perflab's {SCHEMA_VERSION}: "
            "upgrade perflab, or use another database with --db"
        )
    for number in range(version, SCHEMA_VERSION):
        with conn:  # one transaction per migration
            conn.executescript(f"BEGIN; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; COMMIT;")
    return SCHEMA_VERSION


class Store:
    """``readonly``: for the commands that only read (show, history). They never create a
    database, and work on one they may read but not write. (SQLite may still create the
    -wal and -shm files beside an existing WAL database, owned as the database is.)"""

    def __init__(self, path: Path | str | None = None, readonly: bool = False):
        if path is not None and not str(path).strip():
            raise UsageError("--db needs a path (it was empty)")
        self.path = Path(path) if path is not None else default_path()
        try:
            if readonly:
                self.conn = self._open_readonly()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(self.path, isolation_level=None)
                try:
                    self.conn.execute("PRAGMA foreign_keys=ON")
                    migrate(self.conn, self.path)
                    # WAL only once the file is known to be ours: a foreign SQLite file
                    # that migrate() refused keeps its journal mode
                    self.conn.execute("PRAGMA journal_mode=WAL")
                except BaseException:
                    self.conn.close()
                    raise
        except (OSError, sqlite3.Error) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise EnvironmentRefused(f"cannot use database {self.path}: {reason}") from None

    def _uri(self, query: str) -> str:
        return f"{self.path.resolve().as_uri()}?{query}"  # sqlite.org/uri.html

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise EnvironmentRefused(f"no database at {self.path}: nothing stored there yet ('perflab run' creates it)")
        if self.path.is_dir():
            raise EnvironmentRefused(f"cannot use database {self.path}: it is a directory")
        conn = None
        try:
            try:
                conn = sqlite3.connect(self._uri("mode=ro"), uri=True, isolation_level=None)
                version = _user_version(conn)
            except sqlite3.OperationalError as exc:
                if conn is not None:
                    conn.close()
                    conn = None
                # A WAL database is read through its -shm index, which a reader that may
                # not write the directory cannot create (sqlite.org/wal.html, "Read-Only
                # Databases"). With no pending -wal the file itself is complete: read it
                # as immutable. With one, immutable would silently show older data.
                wal = Path(f"{self.path}-wal")
                pending = wal.exists() and wal.stat().st_size > 0
                if pending:
                    raise EnvironmentRefused(
                        f"cannot read database {self.path} ({exc}): its -wal holds changes not yet in the file, "
                        "which this user cannot read without writing beside it (open it once as its owner)") from None
                conn = sqlite3.connect(self._uri("mode=ro&immutable=1"), uri=True, isolation_level=None)
                version = _user_version(conn)
            if version == 0:
                raise EnvironmentRefused(f"{self.path} is not a perflab database (it has no perflab schema)")
            if version > SCHEMA_VERSION:
                migrate(conn, self.path)  # raises: written by a newer perflab
            if version < SCHEMA_VERSION:
                conn.close()
                conn = None
                try:  # an older perflab database is brought up to date, as a run would do
                    conn = sqlite3.connect(self.path, isolation_level=None)
                    migrate(conn, self.path)
                except sqlite3.Error as exc:
                    raise EnvironmentRefused(f"{self.path} has schema version {version} and must be migrated to "
                                             f"{SCHEMA_VERSION}, but cannot be written: {exc}") from None
            return conn
        except BaseException:
            if conn is not None:
                conn.close()
            raise

    def close(self) -> None:
        self.conn.close()

    def _write(self, sql: str, args: tuple) -> None:
        try:
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.execute(sql, args)
        except sqlite3.Error as exc:
            raise EnvironmentRefused(f"cannot write to database {self.path}: {exc}") from None

    def begin_run(self, run_id: str, started_at: str, version: str, budget: str, seed: int,
                  argv: list[str], host: dict[str, Any], fingerprint: str) -> None:
        self._write(
            "INSERT INTO runs (id, started_at, status, perflab_version, budget, seed, argv, host, host_fingerprint)"
            " VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?)",
            (run_id, started_at, version, budget, seed, json.dumps(argv), json.dumps(host), fingerprint),
        )

    def save_result(self, run_id: str, record: dict[str, Any], samples: list[dict[str, Any]]) -> None:
        try:
            with self.conn:
                self.conn.execute("BEGIN")
                self.conn.execute(
                    "INSERT INTO results (run_id, claim, outcome, summary, source_hash, duration_s, record)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, record["claim"], record["outcome"], record["summary"], record["source_hash"],
                     record["duration_s"], json.dumps(record)),
                )
                self.conn.executemany(
                    "INSERT INTO samples (run_id, claim, series, x, round, value, record) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(run_id, record["claim"], s["series"], json.dumps(s["x"]), s["round"], s["value"],
                      json.dumps(s["record"])) for s in samples],
                )
        except sqlite3.Error as exc:
            raise EnvironmentRefused(f"cannot write to database {self.path}: {exc}") from None

    def finish_run(self, run_id: str, finished_at: str, status: str) -> None:
        """status: complete, interrupted (a signal or a closed output stopped it) or failed
        (the environment refused something mid-run, e.g. a full disk); 'running' stays
        only if perflab was killed outright."""
        self._write("UPDATE runs SET finished_at = ?, status = ? WHERE id = ?", (finished_at, status, run_id))

    def resolve_run(self, ref: str) -> str:
        """'last', a run id, or an unambiguous prefix of one."""
        if ref == "last":
            row = self.conn.execute("SELECT id FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1").fetchone()
            if not row:
                raise EnvironmentRefused(f"no runs in {self.path} yet: try 'perflab run'")
            return row[0]
        if not ref:
            raise UsageError("an empty run id: give 'last', a run id or a prefix of one")
        # a literal prefix (not LIKE, where % and _ are wildcards)
        rows = self.conn.execute("SELECT id FROM runs WHERE substr(id, 1, length(?)) = ?", (ref, ref)).fetchall()
        if len(rows) != 1:
            raise UsageError(f"{'no' if not rows else 'more than one'} run matches {ref!r} in {self.path}")
        return rows[0][0]

    def run_info(self, run_id: str) -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT id, started_at, finished_at, status, perflab_version, budget, seed, argv, host FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        keys = ("id", "started_at", "finished_at", "status", "perflab_version", "budget", "seed", "argv", "host")
        info = dict(zip(keys, row))
        info["argv"], info["host"] = json.loads(info["argv"]), json.loads(info["host"])
        return info

    def results(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT record FROM results WHERE run_id = ? ORDER BY rowid", (run_id,))
        return [json.loads(r[0]) for r in rows]

    def samples(self, run_id: str, claim: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT series, x, round, value, record FROM samples WHERE run_id = ? AND claim = ? ORDER BY rowid",
            (run_id, claim),
        )
        return [{"series": s, "x": json.loads(x), "round": r, "value": v, "record": json.loads(rec)}
                for s, x, r, v, rec in rows]

    def history(self, claim: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT r.run_id, u.started_at, r.outcome, r.summary, r.source_hash, u.host_fingerprint, u.budget, r.record"
            " FROM results r JOIN runs u ON u.id = r.run_id WHERE r.claim = ? ORDER BY u.started_at, r.rowid",
            (claim,),
        )
        out = []
        for run_id, started, outcome, summary, shash, fp, budget, record in rows:
            rec = json.loads(record)
            dec = rec.get("decision") or {}
            out.append({"run_id": run_id, "started_at": started, "outcome": outcome, "summary": summary,
                        "source_hash": shash, "host_fingerprint": fp, "budget": budget,
                        "value": dec.get("value"), "ci": dec.get("ci"), "quantity": dec.get("quantity")})
        return out
