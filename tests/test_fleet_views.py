"""A fleet seen again: perflab show FLEET (claims x hosts, -v with each decision's value),
perflab report FLEET (the same table, every host's curves of a claim on one plot), and
perflab compare between two hosts of a fleet (FLEET@HOST). The fleet here is two
recorded runs of real machines stored as two hosts (tests/fixtures/runs), one claim of
the second host lost, and a third host refused."""

from __future__ import annotations

import json

import jsonschema
import pytest

from conftest import cli
from perflab.core.record import read_lines
from perflab.core.schema import SCHEMA
from perflab.engine import registry
from perflab.fleet import lost
from perflab.results import fleet_view
from perflab.results.report import fleet_figures
from perflab.results.store import Store, fleets
from recorded import AMD, INTEL_V1, one_line_error

CLAIMS = ["io.select-linear", "space.syscall-in-context", "clone.thread-flags", "fork.cow"]
FLEET = "fleet-20261201T120000-abcd"


def pick(path, claims):
    by_claim = {v.claim: v for v in read_lines(path.read_text().splitlines())}
    return [by_claim[c] for c in claims]


@pytest.fixture
def fleet_db(db):
    """hostA: the AMD run's four claims; hostB: the Intel run's first three, the fourth lost;
    hostC: refused."""
    with Store(db) as store:
        fleets.begin(store, FLEET, "2026-12-01T12:00:00+00:00", "0.1.0", "tcp://127.0.0.1:8786", "default", 11,
                     CLAIMS, ["fleet", "run"], [("hostA", "waiting", None, {}), ("hostB", "waiting", None, {}),
                                                ("hostC", "refused", "perflab 0.0.1 there, 0.1.0 here",
                                                 {"perflab": "0.0.1", "facts": {"hostname": "c"}})])
        for i, (name, path, claims) in enumerate((("hostA", AMD, CLAIMS), ("hostB", INTEL_V1, CLAIMS[:3]))):
            verdicts = pick(path, claims)
            run_id = f"20261201T12000{i}-000{i}"
            fleets.begin_host_run(store, FLEET, name, run_id, verdicts[0].run_id, "2026-12-01T12:00:00+00:00",
                                  "0.1.0", "default", 11, verdicts[0].host)
            for v in verdicts:
                store.save_verdict(run_id, v)
        gone = lost.missing(registry.select(CLAIMS[3:]), set(), verdicts[0].host, why=lost.LOST,
                            detail="its worker died while running the claims (KilledWorker)", fleet_id=FLEET,
                            host_name="hostB", run_id="x", budget="default", seed=11)
        store.save_verdict("20261201T120001-0001", gone[0])
        fleets.set_host(store, FLEET, "hostA", "complete", None, "2026-12-01T12:05:00+00:00")
        fleets.set_host(store, FLEET, "hostB", "lost", "its worker died while running the claims (KilledWorker)",
                        "2026-12-01T12:05:00+00:00")
        fleets.finish(store, FLEET, "2026-12-01T12:05:00+00:00", "complete")
    return db


def test_the_table_is_claims_by_hosts(fleet_db):
    view = fleet_view.load("fleet-last", fleet_db)
    rows = fleet_view.rows(view)
    assert [r[0] for r in rows] == CLAIMS and [h.name for h in view.hosts] == ["hostA", "hostB", "hostC"]
    amd, intel = pick(AMD, CLAIMS), pick(INTEL_V1, CLAIMS[:3])
    for row, a in zip(rows, amd):
        assert row[1] == a.outcome.value + (f" ({a.reason.value})" if a.reason else "")
    assert [r[2] for r in rows[:3]] == [v.outcome.value + (f" ({v.reason.value})" if v.reason else "") for v in intel]
    assert rows[3][2] == "error (host lost)" and [r[3] for r in rows] == ["-"] * 4
    verbose = fleet_view.rows(view, verbose=True)
    d = amd[0].decision
    assert verbose[0][1].endswith(f": {d.value:.3g} [{d.ci[0]:.3g}, {d.ci[1]:.3g}]")
    assert fleet_view.host_notes(view) == ["hostB: lost: its worker died while running the claims (KilledWorker)",
                                           "hostC: refused: perflab 0.0.1 there, 0.1.0 here"]


def test_show_prints_it_and_its_records(fleet_db):
    p = cli("show", FLEET[:12], "-v", "--db", str(fleet_db))
    assert p.returncode == 0, p.stderr
    for path in (AMD, INTEL_V1):  # each host's decision: value [CI
        d = pick(path, CLAIMS[:1])[0].decision
        assert f": {d.value:.3g} [{d.ci[0]:.3g}," in p.stdout, p.stdout
    assert "error (host lost)" in p.stdout and "hostC: refused" in p.stdout
    assert p.stderr.startswith(f"fleet {FLEET}: 2026-12-01T12:00:00+00:00, complete, 4 claim(s) x 3 host(s)")
    j = cli("show", FLEET, "--json", "--db", str(fleet_db))
    recs = [json.loads(line) for line in j.stdout.splitlines()]
    assert [(r["fleet"]["host"], r["claim"]) for r in recs] == [("hostA", c) for c in CLAIMS] + [
        ("hostB", c) for c in CLAIMS]
    assert recs[-1]["outcome"] == "error" and "host lost" in recs[-1]["summary"]
    jsonschema.validate(recs[-1], SCHEMA)  # the record the fleet made (the recorded ones predate reasons)


def test_every_host_s_curve_of_a_claim_on_one_plot():
    per_host = [("hostA", pick(AMD, CLAIMS[:1])[0]), ("hostB", pick(INTEL_V1, CLAIMS[:1])[0])]
    rule = registry.select(CLAIMS[:1])[0].rule
    (fig,) = fleet_figures.overlay(per_host, rule, "k")
    (panel,) = fig.panels
    assert [ln.label for ln in panel.lines] == ["hostA", "hostB"] and panel.xlog and panel.ylog
    assert all(len(ln.xs) >= 4 for ln in panel.lines)
    assert [f.label.split(":")[0] for f in panel.fits] == ["hostA", "hostB"]  # each host's exponent
    singles = [("hostA", pick(AMD, CLAIMS[1:2])[0]), ("hostB", pick(INTEL_V1, CLAIMS[1:2])[0])]
    figs = fleet_figures.overlay(singles, None, "s")
    assert figs and all(p.categories and [ln.label for ln in p.lines] == ["hostA", "hostB"]
                        for f in figs for p in f.panels)
    assert fleet_figures.overlay([("hostA", pick(AMD, ["clone.thread-flags"])[0])], None, "c") == []  # exact checks


def test_report_draws_the_table_and_the_hosts_curves(fleet_db, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "fleet.html"
    p = cli("report", FLEET, "--db", str(fleet_db), "-o", str(out))
    assert p.returncode == 0, p.stderr
    page = out.read_text()
    table = page[page.index('<table class="fleet">'):page.index("</table>", page.index('<table class="fleet">'))]
    assert table.count("<tr>") == 1 + len(CLAIMS) and "error (host lost)" in table and "hostC" in table
    section = page[page.index('id="c0-io.select-linear"'):page.index('id="c1-')]
    assert section.count("<svg ") == 1 and "hostA (median, CI)" in section and "hostB (median, CI)" in section
    md = tmp_path / "fleet.md"
    p = cli("report", FLEET, "--format", "md", "--db", str(fleet_db), "-o", str(md))
    assert p.returncode == 0, p.stderr
    assert "| claim | hostA | hostB | hostC |" in md.read_text()
    assert sorted(x.name for x in (tmp_path / "fleet-plots").iterdir())[0].endswith(".png")
    one_line_error(cli("report", FLEET, "last", "--db", str(fleet_db), "-o", str(out)), 2,
                   "a fleet is reported alone")


def test_compare_between_two_hosts_of_a_fleet(fleet_db):
    p = cli("compare", f"{FLEET}@hostA", f"{FLEET}@hostB", "--json", "--db", str(fleet_db))
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["same_machine"] is False and got["quantities"] and got["only_in_a"] == []
    assert (got["a"]["cpu_model"], got["b"]["cpu_model"]) == ("AMD EPYC", pick(INTEL_V1, CLAIMS[:1])[0].host.cpu_model)
    assert {f["claim"]: f["b"] for f in got["flips"]}["fork.cow"] == "error"  # the claim hostB lost
    one_line_error(cli("compare", f"{FLEET}@hostA", f"{FLEET}@hostC", "--db", str(fleet_db)), 2,
                   "host hostC of fleet")
