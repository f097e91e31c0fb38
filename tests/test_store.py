"""The results database: migrations, refusal of newer schemas, round trips, bad paths."""

from __future__ import annotations

import hashlib
import os
import json
import sqlite3

import pytest

from perflab.core.errors import EnvironmentRefused, UsageError
from perflab.results.store import Store, default_path
from perflab.results.store.schema import MIGRATIONS, SCHEMA_VERSION

from perflab.core.record import Decision, Host, Outcome, Point, Reason, Sample, Series, Verdict

HOST = Host(hostname="h", cpu_model="x")


def verdict(claim="io.poll-linear", outcome=Outcome.SUPPORTED, value=1.02):
    return Verdict(claim=claim, outcome=outcome, summary="s", source_hash="abc", duration_s=1.5,
                   reason=Reason.NOISY if outcome is Outcome.INCONCLUSIVE else None,
                   decision=Decision(outcome, "q", value, (0.98, 1.07), {"supported": "x", "refuted": "y"}),
                   series=[Series("poll", "watched_fds", "ns", points=[Point(10, 512.0, (500.0, 520.0), 1, [512.0])])],
                   samples=[Sample("poll", 10, 0, 512.0, {"per_op_ns": [512.0]}, cpu=1)], host=HOST)


def _store_run(store, run_id="r1", started="2026-11-26T00:00:00+00:00"):
    store.begin_run(run_id, started, "0.1.0", "quick", 7, ["run", "io"], HOST)
    store.save_verdict(run_id, verdict())
    store.finish_run(run_id, started, "complete")


def test_round_trip(db):
    s = Store(db)
    _store_run(s)
    assert s.resolve_run("last") == "r1" and s.resolve_run("r") == "r1"
    (v,) = s.verdicts("r1")
    assert v.claim == "io.poll-linear" and v.decision.value == 1.02 and v.run_id == "r1"
    assert v.series[0].points[0].samples == [512.0]  # the raw samples always stay in the database
    assert s.samples("r1", "io.poll-linear") == verdict().samples
    assert s.verdicts("r1", samples=True)[0].samples == verdict().samples
    info = s.run_info("r1")
    assert info.seed == 7 and info.status == "complete" and info.host.hostname == "h" and info.claims == 1
    h = s.history("io.poll-linear")
    assert h[0].value == 1.02 and h[0].host_fingerprint == HOST.fingerprint() and h[0].rule_version == 1
    assert [r.id for r in s.runs()] == ["r1"]
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


V1_RECORD = {"claim": "io.poll-linear", "outcome": "supported", "summary": "s", "source_hash": "abc",
             "duration_s": 1.5, "decision": {"quantity": "q", "value": 1.02, "ci": [0.98, 1.07], "thresholds": {},
                                             "outcome": "supported", "reason": ""},
             "series": [{"name": "poll", "x": "watched_fds", "unit": "ns", "role": "evidence",
                         "points": [{"x": 10, "median": 512.0, "ci": [512.0, 512.0], "n": 1}]}],
             "controls": {}, "evidence": {}, "host": {}}


def test_migrates_a_v1_database_forward_keeping_its_data(db):
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.execute("INSERT INTO runs VALUES ('old', '2025-01-01', NULL, 'complete', '0.0.1', 'quick', 1, '[]', '{}')")
    conn.execute("INSERT INTO results VALUES ('old', 'io.poll-linear', 'refuted', 'x', 'h', 1.0, ?)",
                 (json.dumps(V1_RECORD),))
    conn.execute("INSERT INTO samples VALUES ('old', 'io.poll-linear', 'poll', '10', 0, 512.0, '{}')")
    conn.commit()
    conn.close()
    s = Store(db)
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    (v,) = s.verdicts("old")
    assert v.schema_version == 2 and v.decision.rule_version == 1
    assert v.series[0].points[0].samples == [512.0]  # record version 2: raw samples from the samples table
    cols = [r[1] for r in s.conn.execute("PRAGMA table_info(runs)")]
    assert {"host_fingerprint", "pid", "pid_start", "boot_id"} <= set(cols)
    _store_run(s)  # the migrated database takes new runs
    assert [h.run_id for h in s.history("io.poll-linear")] == ["old", "r1"]


def test_the_recorded_amd_database_migrates_and_reads(amd_db):
    """The database a real run left (record version 1, schema 2) migrates; every record
    then reads as version 2 with the raw samples of every point."""
    s = Store(amd_db)
    (run,) = s.runs()
    verdicts = s.verdicts(run.id)
    assert len(verdicts) == 33
    sampled = {(c, s) for c, s in s.conn.execute("SELECT DISTINCT claim, series FROM samples")}
    points = [p for v in verdicts for se in v.series if (v.claim, se.name) in sampled for p in se.points]
    assert len(points) > 150 and all(p.samples is not None and len(p.samples) == p.n for p in points)


def test_refuses_a_newer_schema_and_leaves_it_untouched(db):
    s = Store(db)
    _store_run(s)
    s.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    s.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(EnvironmentRefused, match="newer than this perflab"):
        Store(db)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_unusable_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EnvironmentRefused, match="cannot use database"):
        Store(blocker / "sub" / "perflab.db")


def test_unknown_run_is_a_usage_error_and_empty_db_has_no_last(db):
    s = Store(db)
    with pytest.raises(EnvironmentRefused, match="no runs"):
        s.resolve_run("last")
    with pytest.raises(UsageError):
        s.resolve_run("nope")


def test_default_path_follows_env(monkeypatch, tmp_path):
    monkeypatch.delenv("PERFLAB_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_path() == tmp_path / "perflab" / "perflab.db"
    monkeypatch.setenv("PERFLAB_DB", str(tmp_path / "x.db"))
    assert default_path() == tmp_path / "x.db"


@pytest.mark.parametrize("make,needle", [
    (lambda p: os.mkfifo(p), "not a regular file"),
    (lambda p: p.write_bytes(b"hello, this is not sqlite at all"), "not an SQLite file"),
    (lambda p: _foreign(p), "tables of its own"),
    (lambda p: _foreign(p, app=0x1234), "application id"),
])
@pytest.mark.parametrize("readonly", [False, True])
def test_refuses_what_is_not_a_perflab_database_and_leaves_it(tmp_path, make, needle, readonly):
    p = tmp_path / "x.db"
    make(p)
    before = p.read_bytes() if p.is_file() else None
    with pytest.raises(EnvironmentRefused, match=needle):
        Store(p, readonly=readonly)
    if before is not None:
        assert p.read_bytes() == before
    assert sorted(f.name for f in tmp_path.iterdir()) == ["x.db"]


def _foreign(p, app=0):
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE theirs (x)")
    if app:
        conn.execute(f"PRAGMA application_id = {app}")
    conn.commit()
    conn.close()


def test_a_corrupt_body_or_record_is_one_clear_error(db):
    s = Store(db)
    _store_run(s)
    s.conn.execute("UPDATE results SET record = '{not json'")
    with pytest.raises(EnvironmentRefused, match="not valid JSON"):
        s.verdicts("r1")
    s.conn.execute("UPDATE results SET record = '[1, 2]'")
    with pytest.raises(EnvironmentRefused, match="a perflab record is a JSON object"):
        s.verdicts("r1")
    s.conn.execute("UPDATE runs SET host = 'nope'")
    with pytest.raises(EnvironmentRefused, match="not valid JSON"):
        s.run_info("r1")
    s.close()


def test_read_only_opens_leave_no_files_beside_the_database(db):
    s = Store(db)
    _store_run(s)
    s.close()
    names = sorted(f.name for f in db.parent.iterdir())
    r = Store(db, readonly=True)
    assert r.verdicts("r1")
    r.close()
    assert sorted(f.name for f in db.parent.iterdir()) == names


def test_records_of_another_schema_version():
    from perflab.core.record import RecordError, read_lines

    newer = json.dumps({**verdict().to_json(), "schema_version": 99})
    with pytest.raises(RecordError, match="newer than this perflab"):
        read_lines([newer], "x.jsonl")
    (v1,) = read_lines([json.dumps(V1_RECORD)])
    assert v1.schema_version == 2 and v1.reason is None and not v1.series[0].has_samples
