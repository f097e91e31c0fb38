"""The results database: migrations, refusal of newer schemas, round trips, bad paths."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

from perflab.core.errors import EnvironmentRefused, UsageError
from perflab.results.store import Store, default_path
from perflab.results.store.schema import MIGRATIONS, SCHEMA_VERSION

RECORD = {"claim": "io.poll-linear", "outcome": "supported", "summary": "s", "source_hash": "abc",
          "duration_s": 1.5, "decision": {"quantity": "q", "value": 1.02, "ci": [0.98, 1.07]}}
SAMPLES = [{"series": "poll", "x": 10, "round": 0, "value": 512.0, "record": {"per_op_ns": [512.0]}},
           {"series": "poll", "x": None, "round": 1, "value": 1.0, "record": {}}]


def _store_run(store, run_id="r1", started="2026-11-26T00:00:00+00:00"):
    store.begin_run(run_id, started, "0.1.0", "quick", 7, ["run", "io"], {"cpu_model": "x"}, "fp")
    store.save_result(run_id, RECORD, SAMPLES)
    store.finish_run(run_id, started, "complete")


def test_round_trip(db):
    s = Store(db)
    _store_run(s)
    assert s.resolve_run("last") == "r1" and s.resolve_run("r") == "r1"
    assert s.results("r1") == [RECORD]
    assert s.samples("r1", "io.poll-linear") == SAMPLES
    assert s.run_info("r1")["seed"] == 7
    h = s.history("io.poll-linear")
    assert h[0]["value"] == 1.02 and h[0]["host_fingerprint"] == "fp"
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrates_a_v1_database_forward_keeping_its_data(db):
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.execute("INSERT INTO runs VALUES ('old', '2025-01-01', NULL, 'complete', '0.0.1', 'quick', 1, '[]', '{}')")
    conn.execute("INSERT INTO results VALUES ('old', 'io.poll-linear', 'refuted', 'x', 'h', 1.0, ?)", (json.dumps(RECORD),))
    conn.commit()
    conn.close()
    s = Store(db)
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert s.results("old") == [RECORD]
    cols = [r[1] for r in s.conn.execute("PRAGMA table_info(runs)")]
    assert "host_fingerprint" in cols
    _store_run(s)  # the migrated database takes new runs
    assert [h["run_id"] for h in s.history("io.poll-linear")] == ["old", "r1"]


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
