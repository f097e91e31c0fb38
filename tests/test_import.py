"""perflab import and Store.import_verdicts: records from another machine stored as runs
of their own, with their host; all or nothing; a newer schema refused in one line."""

from __future__ import annotations

import json
import sqlite3

import pytest

from conftest import cli
from perflab.core.errors import BadInput, EnvironmentRefused
from perflab.core.record import SCHEMA_VERSION, Verdict, read_lines
from perflab.results.store import Store
from recorded import AMD, INTEL_V1, imported, one_line_error, records, write_records


def run_count(db) -> int:
    return sqlite3.connect(db).execute("SELECT count(*) FROM runs").fetchone()[0]


def test_imports_a_version_1_file_keeping_its_host(db):
    run_id = imported(db, INTEL_V1)
    with Store(db, readonly=True) as store:
        info = store.run_info(run_id)
        verdicts = store.verdicts(run_id)
    source = records(INTEL_V1)
    assert info.status == "imported" and info.claims == len(source) == 33
    assert info.host.cpu_model.startswith("Intel") and info.host.caches == source[0]["host"]["caches"]
    assert info.argv == ["import", str(INTEL_V1), "--run", source[0]["run_id"]]
    assert info.started_at == "2026-12-03T21:35:33+00:00"  # from the source run id
    assert (info.budget, info.seed) == ("default", 11)  # from the rerun commands
    assert [v.claim for v in verdicts] == [r["claim"] for r in source]
    assert all(v.schema_version == SCHEMA_VERSION and v.run_id == run_id for v in verdicts)
    assert [v.outcome.value for v in verdicts] == [r["outcome"] for r in source]


def test_importing_the_same_run_again_stores_nothing(db):
    first = imported(db, AMD)
    p = cli("import", str(AMD), "--db", str(db))
    assert p.returncode == 0 and p.stdout.strip() == first and "already stored as" in p.stderr
    assert run_count(db) == 1


def test_samples_and_kernel_records_travel(db, tmp_path, plugin):
    """--json --samples on one machine, import on another: every raw value and kernel
    record is in the second database as it was in the first."""
    first = tmp_path / "first.db"
    p = cli("run", "fake.ok", "--quick", "--json", "--samples", "--seed", "3", "--db", str(first), env=plugin["env"])
    assert p.returncode == 0, p.stderr
    out = write_records(tmp_path / "r.jsonl", [json.loads(line) for line in p.stdout.splitlines()])
    run_id = imported(db, out, env=plugin["env"])
    with Store(first, readonly=True) as a, Store(db, readonly=True) as b:
        original = a.verdicts(a.resolve_run("last"), samples=True)
        copy = b.verdicts(run_id, samples=True)
    assert [s.to_json() for s in copy[0].samples] == [s.to_json() for s in original[0].samples]
    assert copy[0].samples and copy[0].samples[0].record == {"v": 1.0}
    assert copy[0].series[0].points[0].samples == original[0].series[0].points[0].samples


def test_import_api_returns_the_new_run_id(db):
    verdicts = read_lines(AMD.read_text().splitlines(), str(AMD))
    with Store(db) as store:
        run_id = store.import_verdicts(verdicts, source="amd.jsonl")
        assert store.run_info(run_id).host.cpu_model == "AMD EPYC"
        assert store.import_verdicts(verdicts, source="amd.jsonl") == run_id  # stored once
        with pytest.raises(BadInput, match="no records"):
            store.import_verdicts([], source="empty")
    with Store(db, readonly=True) as store, pytest.raises(EnvironmentRefused, match="read-only"):
        store.import_verdicts(verdicts)


def test_a_file_of_two_runs_is_two_runs_and_run_selects_one(db, tmp_path):
    both = write_records(tmp_path / "both.jsonl", records(AMD) + records(INTEL_V1))
    p = cli("import", str(both), "--db", str(db), "--json")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["records"] for r in rows] == [33, 33] and all(r["new"] for r in rows)
    other = tmp_path / "other.db"
    p = cli("import", str(both), "--run", records(INTEL_V1)[0]["run_id"], "--db", str(other))
    assert p.returncode == 0 and run_count(other) == 1
    one_line_error(cli("import", str(both), "--run", "nope", "--db", str(other)), 2, "no records of run nope")


def test_a_claim_twice_in_one_run_is_refused(db, tmp_path):
    recs = records(AMD)
    one_line_error(cli("import", str(write_records(tmp_path / "d.jsonl", recs + recs[:1])), "--db", str(db)),
                   1, "holds claim cache.cpu-ladder twice")


@pytest.mark.parametrize("text,needle", [
    ("this is not json\n", "not perflab JSON"),
    ('{"hello": "world"}\n', "not perflab JSON"),
    ("[1, 2, 3]\n", "not perflab JSON"),
    ("\n\n", "holds no record"),
])
def test_what_is_not_perflab_json_is_one_line_and_writes_nothing(db, tmp_path, text, needle):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(text)
    one_line_error(cli("import", str(bad), "--db", str(db)), 1, needle)
    assert not db.exists() or run_count(db) == 0


def test_a_newer_schema_is_refused_and_nothing_half_written(db, tmp_path):
    recs = records(AMD)
    recs[5]["schema_version"] = SCHEMA_VERSION + 1
    line = one_line_error(cli("import", str(write_records(tmp_path / "n.jsonl", recs)), "--db", str(db)),
                          1, f"newer than this perflab's {SCHEMA_VERSION}")
    assert "line 6" in line
    assert not db.exists() or run_count(db) == 0


def test_a_missing_file_is_a_usage_error(db, tmp_path):
    one_line_error(cli("import", str(tmp_path / "nope.jsonl"), "--db", str(db)), 2, "no file")


def test_standard_input(db):
    p = cli("import", "-", "--db", str(db), input=INTEL_V1.read_text())
    assert p.returncode == 0, p.stderr
    with Store(db, readonly=True) as store:
        assert store.run_info(p.stdout.strip()).argv[:2] == ["import", "-"]


def test_imported_records_read_back_as_records(db):
    run_id = imported(db, AMD)
    p = cli("show", run_id, "--json", "--db", str(db))
    assert p.returncode == 0, p.stderr
    back = [Verdict.from_json(json.loads(line)) for line in p.stdout.splitlines()]
    assert [v.claim for v in back] == [r["claim"] for r in records(AMD)]
