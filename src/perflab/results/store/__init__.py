"""Results database: SQLite (stdlib), WAL, versioned schema (store/schema.py).

Default path ``$XDG_DATA_HOME/perflab/perflab.db`` (``~/.local/share`` when unset or
relative, as the XDG Base Directory spec says), overridden by ``--db PATH`` or
``PERFLAB_DB``. Each verdict is committed as soon as its claim finishes, so an
interrupted run keeps what it measured. A run records the process that runs it; the
next command that opens the database marks a run whose process is gone ``abandoned``
(a read-only open shows it so without writing it).

Python API: ``perflab.store.open(path).runs()``, ``.verdicts(run_id)``, ``.history(claim)``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from perflab.core.errors import EnvironmentRefused, UsageError
from perflab.core.record import Host, RecordError, Sample, Verdict
from perflab.results.store import fleets, importing, liveness
from perflab.results.store.database import open_readonly, open_writable
from perflab.results.store.schema import SCHEMA_VERSION

__all__ = ["Store", "RunInfo", "HistoryRow", "open", "default_path", "SCHEMA_VERSION"]


def default_path() -> Path:
    if os.environ.get("PERFLAB_DB"):
        return Path(os.environ["PERFLAB_DB"])
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "perflab" / "perflab.db"


@dataclass
class RunInfo:
    id: str
    started_at: str
    finished_at: str | None
    status: str  # running | complete | interrupted | failed | abandoned | imported | fleet
    perflab_version: str
    budget: str
    seed: int
    argv: list[str]
    host: Host
    host_fingerprint: str | None = None
    claims: int = 0


@dataclass
class HistoryRow:
    run_id: str
    started_at: str
    status: str
    outcome: str
    reason: str | None
    summary: str
    source_hash: str
    host_fingerprint: str | None
    budget: str
    value: float | None
    ci: list[float] | None
    quantity: str | None
    rule_version: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "extra"} | self.extra


RUN_COLUMNS = "id, started_at, finished_at, status, perflab_version, budget, seed, argv, host, host_fingerprint"


class Store:
    """``readonly``: for the commands that only read (show, history). They never create a
    database, and work on one they may read but not write."""

    def __init__(self, path: Path | str | None = None, readonly: bool = False):
        if path is not None and not str(path).strip():
            raise UsageError("--db needs a path (it was empty)")
        self.path = Path(path) if path is not None else default_path()
        self.readonly = readonly
        self.conn = open_readonly(self.path) if readonly else open_writable(self.path)
        if not readonly:
            try:
                self._mark_abandoned()
                fleets.mark_abandoned(self)
            except BaseException:
                self.conn.close()
                raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- errors ------------------------------------------------------------------------

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise EnvironmentRefused(f"cannot read database {self.path}: {exc}") from None

    def _write(self, statements: list[tuple[str, tuple | list]], many: bool = False) -> None:
        try:
            with self.conn:
                self.conn.execute("BEGIN")
                for sql, args in statements:
                    (self.conn.executemany if isinstance(args, list) else self.conn.execute)(sql, args)
        except sqlite3.Error as exc:
            raise EnvironmentRefused(f"cannot write to database {self.path}: {exc}") from None

    def _json(self, text: str, what: str) -> Any:
        try:
            return json.loads(text)
        except (TypeError, ValueError) as exc:
            raise EnvironmentRefused(f"database {self.path}: {what} is not valid JSON ({exc})") from None

    # ---- runs --------------------------------------------------------------------------

    def begin_run(self, run_id: str, started_at: str, version: str, budget: str, seed: int,
                  argv: list[str], host: Host) -> None:
        me = liveness.this_process()
        self._write([(
            "INSERT INTO runs (id, started_at, status, perflab_version, budget, seed, argv, host, host_fingerprint,"
            " pid, pid_start, boot_id) VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, started_at, version, budget, seed, json.dumps(argv), json.dumps(host.to_json()),
             host.fingerprint(), me.pid, me.start, me.boot_id),
        )])

    def finish_run(self, run_id: str, finished_at: str, status: str) -> None:
        """status: complete, interrupted (a signal or a closed output stopped it) or failed
        (the environment refused something mid-run, e.g. a full disk)."""
        self._write([("UPDATE runs SET finished_at = ?, status = ? WHERE id = ?", (finished_at, status, run_id))])

    def _abandoned_ids(self) -> set[str]:
        rows = self._query("SELECT id, pid, pid_start, boot_id, host FROM runs WHERE status = 'running'")
        here = liveness.this_process()
        out = set()
        for run_id, pid, start, boot_id, host in rows:
            try:
                hostname = json.loads(host).get("hostname")
            except (TypeError, ValueError, AttributeError):
                hostname = None
            if liveness.gone(pid, start, boot_id, hostname, here):
                out.add(run_id)
        return out

    def _mark_abandoned(self) -> None:
        gone = self._abandoned_ids()
        if gone:
            self._write([("UPDATE runs SET status = 'abandoned' WHERE status = 'running' AND id = ?",
                          [(r,) for r in sorted(gone)])])

    def resolve_run(self, ref: str) -> str:
        """'last', a run id, an unambiguous prefix of one, or FLEET@HOST (the run of one
        host of a fleet, store/fleets.py)."""
        if fleets.is_fleet_ref(ref) and "@" in ref:
            return fleets.host_run(self, ref)
        if fleets.is_fleet_ref(ref):
            raise UsageError(f"{ref!r} names a fleet, not a run: name one of its hosts' runs as {ref}@HOST")
        if ref == "last":
            rows = self._query("SELECT id FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1")
            if not rows:
                raise EnvironmentRefused(f"no runs in {self.path} yet: try 'perflab run'")
            return rows[0][0]
        if not ref:
            raise UsageError("an empty run id: give 'last', a run id or a prefix of one")
        # a literal prefix (not LIKE, where % and _ are wildcards)
        rows = self._query("SELECT id FROM runs WHERE substr(id, 1, length(?)) = ?", (ref, ref))
        if len(rows) != 1:
            raise UsageError(f"{'no' if not rows else 'more than one'} run matches {ref!r} in {self.path}")
        return rows[0][0]

    def _run_info(self, row: tuple, abandoned: set[str], claims: int = 0) -> RunInfo:
        run_id, started, finished, status, version, budget, seed, argv, host, fp = row
        if status == "running" and run_id in abandoned:
            status = "abandoned"
        return RunInfo(run_id, started, finished, status, version, budget, seed,
                       self._json(argv, f"run {run_id}'s argv"),
                       Host.from_json(self._json(host, f"run {run_id}'s host")), fp, claims)

    def run_info(self, run_id: str) -> RunInfo:
        rows = self._query(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise UsageError(f"no run {run_id!r} in {self.path}")
        count = self._query("SELECT count(*) FROM results WHERE run_id = ?", (run_id,))[0][0]
        return self._run_info(rows[0], self._abandoned_ids() if self.readonly else set(), count)

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        counts = dict(self._query("SELECT run_id, count(*) FROM results GROUP BY run_id"))
        abandoned = self._abandoned_ids() if self.readonly else set()
        return [self._run_info(r, abandoned, counts.get(r[0], 0))
                for r in self._query(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at, rowid")]

    # ---- verdicts ----------------------------------------------------------------------

    def save_verdict(self, run_id: str, v: Verdict) -> None:
        """One verdict and its raw samples, in one transaction. The record keeps each
        point's samples; the kernel records go to the samples table."""
        self._write(self.verdict_statements(run_id, v))

    def verdict_statements(self, run_id: str, v: Verdict) -> list[tuple[str, tuple | list]]:
        """The statements that store one verdict (save_verdict, import_verdicts)."""
        rec = v.to_json(samples=False)
        rec["series"] = [s.to_json(samples=True) for s in v.series]
        rec["run_id"] = run_id
        return [
            ("INSERT INTO results (run_id, claim, outcome, summary, source_hash, duration_s, record, schema_version,"
             " rule_version, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
             (run_id, v.claim, v.outcome.value, v.summary, v.source_hash, round(v.duration_s, 3), json.dumps(rec),
              v.schema_version, v.decision.rule_version if v.decision else 1, v.reason.value if v.reason else None)),
            ("INSERT INTO samples (run_id, claim, series, x, round, value, record, cpu) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
             [(run_id, v.claim, s.series, json.dumps(s.x), s.round, s.value, json.dumps(s.record), s.cpu)
              for s in v.samples]),
        ]

    def replace_verdict(self, run_id: str, v: Verdict) -> None:
        """A claim measured again in the same run (its A/A failed the first time): the new
        verdict and samples take the place of the first attempt's, in one transaction."""
        self._write([("DELETE FROM samples WHERE run_id = ? AND claim = ?", (run_id, v.claim)),
                     ("DELETE FROM results WHERE run_id = ? AND claim = ?", (run_id, v.claim)),
                     *self.verdict_statements(run_id, v)])

    # ---- records from elsewhere (store/importing.py) -------------------------------------

    def import_verdicts(self, verdicts: list[Verdict], source: str = "") -> str:
        """Store one run's records made elsewhere (``perflab run --json --samples`` on
        another machine) as a run of their own, keeping their host, all or nothing;
        returns the new run id (or that of the copy already stored)."""
        return importing.import_verdicts(self, verdicts, source)

    def import_runs(self, runs: list[list[Verdict]], source: str = "") -> list[str]:
        """Several runs' records (a file may hold several), all stored or none."""
        return importing.import_runs(self, runs, source)

    def stored_copy(self, verdicts: list[Verdict]) -> str | None:
        """The id under which this run's records are already stored here, if they are."""
        return importing.stored_copy(self, verdicts)

    # ---- fleets (store/fleets.py) --------------------------------------------------------

    def resolve_fleet(self, ref: str) -> str:
        """'fleet-last', a fleet id, or an unambiguous prefix of one."""
        return fleets.resolve(self, ref)

    def fleet(self, fleet_id: str) -> fleets.FleetInfo:
        """The fleet, its hosts in their order, each with its run id (None while nothing came back)."""
        return fleets.info(self, fleet_id)

    def fleet_ids(self) -> list[str]:
        return fleets.fleets(self)

    def _verdict(self, run_id: str, claim: str, text: str) -> Verdict:
        try:
            return Verdict.from_json(self._json(text, f"the record of {claim} in run {run_id}"))
        except RecordError as exc:
            raise EnvironmentRefused(f"database {self.path}: the record of {claim} in run {run_id}: {exc}") from None

    def verdicts(self, run_id: str, samples: bool = False) -> list[Verdict]:
        """The run's verdicts in the order they were decided; ``samples`` adds the kernel
        records (the points always carry their raw values)."""
        out = [self._verdict(run_id, claim, text) for claim, text in
               self._query("SELECT claim, record FROM results WHERE run_id = ? ORDER BY rowid", (run_id,))]
        if samples:
            for v in out:
                v.samples = self.samples(run_id, v.claim)
        return out

    def samples(self, run_id: str, claim: str) -> list[Sample]:
        rows = self._query("SELECT series, x, round, value, record, cpu FROM samples WHERE run_id = ? AND claim = ?"
                           " ORDER BY rowid", (run_id, claim))
        return [Sample(s, self._json(x, "a sample's x"), r, v, self._json(rec, "a kernel record"), cpu)
                for s, x, r, v, rec, cpu in rows]

    def history(self, claim: str) -> list[HistoryRow]:
        rows = self._query(
            "SELECT r.run_id, u.started_at, u.status, r.outcome, r.reason, r.summary, r.source_hash,"
            " u.host_fingerprint, u.budget, r.rule_version, r.record"
            " FROM results r JOIN runs u ON u.id = r.run_id WHERE r.claim = ? ORDER BY u.started_at, r.rowid",
            (claim,))
        abandoned = self._abandoned_ids() if self.readonly else set()
        out = []
        for run_id, started, status, outcome, reason, summary, shash, fp, budget, rule_version, record in rows:
            dec = (self._json(record, f"the record of {claim} in run {run_id}") or {}).get("decision") or {}
            out.append(HistoryRow(run_id, started, "abandoned" if run_id in abandoned else status, outcome, reason,
                                  summary, shash, fp, budget, dec.get("value"), dec.get("ci"), dec.get("quantity"),
                                  rule_version))
        return out

    def records(self, claim: str) -> list[tuple[str, str, dict[str, Any]]]:
        """Every stored record of one claim as (run id, the run's start, record), oldest
        first: what ``history`` reads a claim file's registered versions from."""
        rows = self._query("SELECT r.run_id, u.started_at, r.record FROM results r JOIN runs u ON u.id = r.run_id"
                           " WHERE r.claim = ? ORDER BY u.started_at, r.rowid", (claim,))
        return [(run_id, started, self._json(text, f"the record of {claim} in run {run_id}"))
                for run_id, started, text in rows]

    def __iter__(self) -> Iterator[RunInfo]:
        return iter(self.runs())


def open(path: Path | str | None = None, readonly: bool = True) -> Store:  # noqa: A001 - perflab.store.open
    """The database at ``path`` (default: the one ``perflab run`` uses), for reading."""
    return Store(path, readonly=readonly)
