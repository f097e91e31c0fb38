"""perflab export: each format read back by the parser its consumers use (the stdlib's
csv, prometheus_client's OpenMetrics and Prometheus text parsers, json)."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from conftest import cli
from perflab.cli.export import FORMATS
from perflab.core.record import Verdict
from perflab.results import export
from recorded import AMD, INTEL_V1, imported, one_line_error, records, write_records

om_parser = pytest.importorskip("prometheus_client.openmetrics.parser")
text_parser = pytest.importorskip("prometheus_client.parser")


@pytest.fixture
def both(db):
    """The AMD and Intel recorded runs, imported into one database."""
    return db, imported(db, AMD), imported(db, INTEL_V1)


def export_text(db, *args: str) -> str:
    p = cli("export", *args, "--db", str(db))
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_the_cli_offers_every_format():
    assert FORMATS == export.FORMATS


def test_csv_is_the_long_form_and_parses(both):
    db, amd, intel = both
    rows = list(csv.DictReader(io.StringIO(export_text(db, amd, intel, "--format", "csv"), newline="")))
    assert list(rows[0])[:11] == ["run", "host", "claim", "series", "x", "median", "ci_lo", "ci_hi", "n", "unit",
                                  "schema_version"]
    points = sum(len(s["points"]) for path in (AMD, INTEL_V1) for r in records(path) for s in r["series"])
    assert len(rows) == points
    assert {r["run"] for r in rows} == {amd, intel}
    select = [r for r in rows if r["run"] == amd and r["claim"] == "io.select-linear" and r["series"] == "select"]
    source = next(s for r in records(AMD) if r["claim"] == "io.select-linear" for s in r["series"]
                  if s["name"] == "select")
    assert [float(r["median"]) for r in select] == [p["median"] for p in source["points"]]
    assert [int(r["x"]) for r in select] == [p["x"] for p in source["points"]]
    assert all(float(r["ci_lo"]) <= float(r["median"]) <= float(r["ci_hi"]) for r in rows)
    assert {r["unit"] for r in select} == {"ns"} and {r["schema_version"] for r in rows} == {"2"}


def test_csv_cells_never_start_a_formula(tmp_path, db):
    recs = records(AMD)[:1]
    recs[0]["series"][0]["name"] = "=HYPERLINK(\"http://x\")"
    recs[0]["host"]["hostname"] = "+cmd"
    run = imported(db, write_records(tmp_path / "f.jsonl", recs))
    rows = list(csv.DictReader(io.StringIO(export_text(db, run), newline="")))
    assert "'=HYPERLINK(\"http://x\")" in {r["series"] for r in rows} and {r["host"] for r in rows} == {"'+cmd"}
    assert not any(r[k].startswith(("=", "+", "-", "@")) for r in rows for k in ("series", "host", "claim"))


def test_openmetrics_parses_in_base_units(both):
    db, amd, intel = both
    text = export_text(db, amd, intel, "--format", "openmetrics")
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in om_parser.text_string_to_metric_families(text)}
    info = families["perflab_verdict_info"]
    assert len(info.samples) == 66
    assert {s.labels["outcome"] for s in info.samples} <= {"supported", "refuted", "inconclusive", "skipped", "error"}
    assert {(s.labels["run"], s.labels["claim"]) for s in info.samples} >= {(amd, "io.select-linear")}
    seconds = families["perflab_point_seconds"]
    assert seconds.unit == "seconds"
    rec = next(r for r in records(AMD) if r["claim"] == "io.select-linear")
    top = rec["series"][0]["points"][-1]
    got = next(s.value for s in seconds.samples if s.labels["run"] == amd and s.labels["series"] == "select"
               and s.labels["x"] == str(top["x"]) and s.labels["stat"] == "median")
    assert math.isclose(got, top["median"] * 1e-9, rel_tol=1e-12)
    hop = next(s for s in seconds.samples if s.labels["claim"] == "cache.cpu-ladder")
    assert hop.labels["per"] == "hop"
    assert families["perflab_point_bytes"].unit == "bytes"  # KiB and bytes/brk, in bytes
    kib = next(s for s in families["perflab_point_bytes"].samples if s.labels["claim"] == "space.user-layout"
               and s.labels["stat"] == "median")
    layout = next(r for r in records(AMD) if r["claim"] == "space.user-layout")["series"][0]
    assert math.isclose(kib.value, next(p["median"] for p in layout["points"] if p["x"] == kib.labels["x"]) * 1024)
    # the same file through the Prometheus text format 0.0.4 parser node_exporter's textfile collector uses
    assert {f.name for f in text_parser.text_string_to_metric_families(text)} >= {"perflab_verdict_info",
                                                                                  "perflab_point_seconds"}


def test_openmetrics_label_values_are_escaped(tmp_path, db):
    recs = records(AMD)[:1]
    recs[0]["series"][0]["name"] = 'a "quoted"\\ name\nwith a newline'
    run = imported(db, write_records(tmp_path / "f.jsonl", recs))
    families = {f.name: f for f in om_parser.text_string_to_metric_families(export_text(db, run, "--format",
                                                                                         "openmetrics"))}
    assert recs[0]["series"][0]["name"] in {s.labels["series"] for s in families["perflab_point_seconds"].samples}


def test_jsonl_is_the_records(both):
    db, amd, _ = both
    lines = export_text(db, amd, "--format", "jsonl").splitlines()
    back = [Verdict.from_json(json.loads(line)) for line in lines]
    assert [v.claim for v in back] == [r["claim"] for r in records(AMD)]
    assert all(p.samples is None for v in back for s in v.series for p in s.points)
    with_samples = [json.loads(line) for line in export_text(db, amd, "--format", "jsonl", "--samples").splitlines()]
    raw = [[p.get("samples") for s in r["series"] for p in s["points"]] for r in with_samples]
    assert raw == [[p.get("samples") for s in r["series"] for p in s["points"]] for r in records(AMD)]
    assert sum(1 for r in raw for values in r if values) > 150  # every point measured in processes


def test_a_file_converts_without_a_database(tmp_path):
    out = tmp_path / "x.csv"
    p = cli("export", str(INTEL_V1), "-o", str(out), "--db", str(tmp_path / "never.db"))
    assert p.returncode == 0, p.stderr
    assert "wrote" in p.stderr and not (tmp_path / "never.db").exists()
    assert len(list(csv.DictReader(out.open(newline="")))) > 100


def test_bad_input_is_one_line(tmp_path, db):
    imported(db, AMD)
    one_line_error(cli("export", "nosuchrun", "--db", str(db)), 2, "no run matches 'nosuchrun'")
    blocked = tmp_path / "missing-dir" / "x.csv"
    one_line_error(cli("export", "last", "-o", str(blocked), "--db", str(db)), 1, "no directory")
    assert not blocked.parent.exists()
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "target.csv")
    one_line_error(cli("export", "last", "-o", str(link), "--db", str(db)), 1, "symbolic link")
    assert not (tmp_path / "target.csv").exists()
    one_line_error(cli("export", "last", "--format", "xml", "--db", str(db)), 2, "invalid choice")
