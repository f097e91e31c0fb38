"""The store's fleets (schema v4, store/fleets.py): a v3 database migrates and reads as
before; a fleet, its hosts and their runs are stored, resolved and named as FLEET@HOST;
a fleet whose client died is shown abandoned."""

from __future__ import annotations

import json
import sqlite3

import pytest

from conftest import cli
from perflab.core.errors import EnvironmentRefused, UsageError
from perflab.core.record import Host, read_lines
from perflab.results import sources
from perflab.results.store import Store, fleets
from perflab.results.store.schema import MIGRATIONS, SCHEMA_VERSION
from recorded import AMD


def v3_database(path) -> None:
    """A database as perflab wrote it before fleets: the first three migrations, one run."""
    conn = sqlite3.connect(path, isolation_level=None)
    for steps in MIGRATIONS[:3]:
        for step in steps if isinstance(steps, tuple) else (steps,):
            if callable(step):
                step(conn)
            else:
                conn.executescript(step)
    conn.execute("PRAGMA user_version = 3")
    conn.execute("INSERT INTO runs (id, started_at, finished_at, status, perflab_version, budget, seed, argv, host,"
                 " host_fingerprint) VALUES ('r-old', '2026-01-01T00:00:00+00:00', NULL, 'complete', '0.1.0', 'quick',"
                 " 7, '[\"run\"]', '{\"hostname\": \"old\"}', 'fp')")
    v = read_lines(AMD.read_text().splitlines()[:1])[0]
    rec = v.to_json()
    rec["run_id"] = "r-old"
    conn.execute("INSERT INTO results (run_id, claim, outcome, summary, source_hash, duration_s, record,"
                 " schema_version, rule_version) VALUES ('r-old', ?, ?, ?, ?, 1.0, ?, 2, 1)",
                 (v.claim, v.outcome.value, v.summary, v.source_hash, json.dumps(rec)))
    conn.close()


def test_a_v3_database_migrates_to_fleets_and_reads_as_before(db):
    v3_database(db)
    shown = cli("show", "r-old", "--json", "--db", str(db))  # a read-only command brings it up to date
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["claim"] == read_lines(AMD.read_text().splitlines()[:1])[0].claim
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"fleets", "fleet_hosts", "runs", "results", "samples"} <= tables
    conn.close()
    with Store(db) as store:
        assert [r.id for r in store.runs()] == ["r-old"] and store.fleet_ids() == []
        with pytest.raises(EnvironmentRefused, match="no fleets"):
            store.resolve_fleet("fleet-last")


def _fleet(store: Store, fleet_id: str = "fleet-20260101T000000-aaaa") -> str:
    fleets.begin(store, fleet_id, "2026-01-01T00:00:00+00:00", "0.1.0", "tcp://127.0.0.1:1", "quick", 5,
                 ["a.one", "a.two"], ["fleet", "run"],
                 [("hostA", "waiting", None, {"facts": {"hostname": "a"}}),
                  ("hostOld", "refused", "perflab 0.0.1 there", {"perflab": "0.0.1"})])
    return fleet_id


def test_a_fleet_its_hosts_and_their_runs(db):
    verdicts = read_lines(AMD.read_text().splitlines()[:2])
    with Store(db) as store:
        fid = _fleet(store)
        fleets.begin_host_run(store, fid, "hostA", "20260101T000001-bbbb", verdicts[0].run_id,
                              "2026-01-01T00:00:01+00:00", "0.1.0", "quick", 5, verdicts[0].host)
        for v in verdicts:
            store.save_verdict("20260101T000001-bbbb", v)
        fleets.set_host(store, fid, "hostA", "complete", None, "2026-01-01T00:01:00+00:00")
        fleets.finish(store, fid, "2026-01-01T00:01:00+00:00", "complete")
    with Store(db, readonly=True) as store:
        assert store.resolve_fleet("fleet-last") == store.resolve_fleet("fleet-2026") == fid
        info = store.fleet(fid)
        assert (info.status, info.claims, info.budget, info.seed) == ("complete", ["a.one", "a.two"], "quick", 5)
        assert [(h.name, h.status, h.reason, h.run_id) for h in info.hosts] == [
            ("hostA", "complete", None, "20260101T000001-bbbb"), ("hostOld", "refused", "perflab 0.0.1 there", None)]
        run = store.run_info(store.resolve_run(f"{fid}@hostA"))
        assert run.status == "fleet" and run.finished_at == "2026-01-01T00:01:00+00:00" and run.claims == 2
        assert run.host.cpu_model == "AMD EPYC"  # the records' host, not this machine
        src = sources.from_store(store, f"{fid}@hostA")
        assert src.origin == verdicts[0].run_id  # where it was measured, as for an import
        with pytest.raises(UsageError, match="has no host 'nosuch' .*hostA, hostOld"):
            store.resolve_run(f"{fid}@nosuch")
        with pytest.raises(UsageError, match="hostOld .* has no run: it refused"):
            store.resolve_run(f"{fid}@hostOld")
        with pytest.raises(UsageError, match="names a fleet, not a run"):
            store.resolve_run(fid)
        with pytest.raises(UsageError, match="no fleet matches"):
            store.resolve_fleet("fleet-1999")


def test_a_fleet_whose_client_died_is_abandoned(db):
    with Store(db) as store:
        fid = _fleet(store)
        store.conn.execute("UPDATE fleets SET pid = 2147483646, pid_start = 1")  # a process that is not there
    with Store(db, readonly=True) as store:
        assert store.fleet(fid).status == "abandoned"  # shown so, not written, by a read-only open
    with Store(db) as store:
        assert store.conn.execute("SELECT status FROM fleets").fetchone()[0] == "abandoned"


def test_naming_a_fleet_that_is_not_there_is_one_line(db):
    with Store(db) as store:
        _fleet(store)
    p = cli("show", "fleet-nope", "--db", str(db))
    assert p.returncode == 2 and p.stderr == f"perflab: no fleet matches 'fleet-nope' in {db}\n"


def test_host_facts_of_a_refused_host_are_kept(db):
    with Store(db) as store:
        fid = _fleet(store)
        assert store.fleet(fid).host("hostOld").facts == {"perflab": "0.0.1"}
        assert Host.from_json(store.fleet(fid).host("hostA").facts["facts"]).hostname == "a"
