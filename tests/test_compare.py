"""perflab compare: verdict flips first, each shared quantity as B/A with an interval and
an outcome, never a regression across two machines, and the host facts that differ."""

from __future__ import annotations

import json
import textwrap

import pytest

from conftest import cli
from perflab.core.record import Host, Point, Series, Verdict, Outcome, read_lines
from perflab.results import compare as cmp
from perflab.results.sources import Source
from recorded import AMD, INTEL_V1, imported, one_line_error, records, write_records

# A claim whose one quantity is the wall time of a process that sleeps $NAP seconds,
# timed by the process itself: a subject that can be slowed on purpose.
SLEEPY = '''
from perflab.core.claim import Claim, Plan, SeriesSpec
from perflab.core.record import Decision, Outcome
from perflab.core.rule import Region, Rule

RULE = Rule(quantity="nap", short="nap", supported=Region(0, 1e12), reason="a test plug-in")
NAP = ["/bin/sh", "-c", 't0=$(date +%s%N); sleep "$NAP"; t1=$(date +%s%N); echo "{\\\\"ns\\\\": $((t1 - t0))}"']


def plan(settings):
    return Plan([SeriesSpec(name="nap", x=None, unit="ns", xs=(None,), argv=lambda _x: NAP,
                            value=lambda r: float(r["ns"]))])


def decide(ev, rule):
    vals = ev.series["nap"].points[None]
    return Decision(Outcome.SUPPORTED, "nap", sorted(vals)[len(vals) // 2], None, rule.thresholds())


CLAIMS = [Claim(id="sleepy.nap", statement="a nap", seed_point="test", mechanism="sleep(1)", kernel="none",
                rule=RULE, plan=plan, decide=decide)]
'''


@pytest.fixture
def sleepy(tmp_path) -> dict:
    """The sleepy claim, installed as a distribution with a perflab.claims entry point."""
    root = tmp_path / "sleepy"
    (root / "sleepyclaims-0.1.dist-info").mkdir(parents=True)
    (root / "sleepyclaims.py").write_text(SLEEPY)
    (root / "sleepyclaims-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: sleepyclaims\n"
                                                                  "Version: 0.1\n")
    (root / "sleepyclaims-0.1.dist-info" / "entry_points.txt").write_text(textwrap.dedent("""\
        [perflab.claims]
        sleepy = sleepyclaims
        """))
    return {"PYTHONPATH": str(root)}


def nap_run(db, env: dict, seconds: float, budget: str = "--quick") -> str:
    p = cli("run", "sleepy.nap", budget, "--json", "--db", str(db), env={**env, "NAP": str(seconds)})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.splitlines()[0])["run_id"]


def compared(db, a: str, b: str, env: dict | None = None) -> dict:
    p = cli("compare", a, b, "--json", "--db", str(db), env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_an_aa_pair_is_within_noise_and_a_slowed_run_regressed(db, sleepy):
    """Two quick runs of the same 100 ms nap agree; one of a 250 ms nap is a regression
    once each side has five processes (--rigorous), and too few samples to tell with the
    quick budget's three. (Naps this long keep the jitter of starting sh and date, a few
    ms on a loaded VM, well inside the ±10% band.)"""
    a, b = nap_run(db, sleepy, 0.1), nap_run(db, sleepy, 0.1)
    slow = nap_run(db, sleepy, 0.25)
    aa = compared(db, a, b, sleepy)
    assert aa["same_machine"] and not aa["flips"]
    [q] = aa["quantities"]
    assert (q["series"], q["method"], q["outcome"]) == ("nap", "bootstrap", "within noise"), q
    assert q["ci"][0] <= 1 <= q["ci"][1] or cmp.BAND.touches(*q["ci"])
    [q] = compared(db, a, slow, sleepy)["quantities"]
    assert q["outcome"] == cmp.TOO_FEW and q["ci"][0] > cmp.BAND.hi and q["p"] == pytest.approx(0.1), q
    assert "least p = 0.1" in q["note"] and "--rigorous" in q["note"]
    a5, slow5 = nap_run(db, sleepy, 0.1, "--rigorous"), nap_run(db, sleepy, 0.25, "--rigorous")
    [q] = compared(db, a5, slow5, sleepy)["quantities"]
    assert q["outcome"] == "regressed" and q["ci"][0] > cmp.BAND.hi and 1.8 < q["ratio"] < 2.8, q
    assert q["p"] == pytest.approx(2 / 252)  # five against five, wholly apart
    [q] = compared(db, slow5, a5, sleepy)["quantities"]
    assert q["outcome"] == "improved", q
    p = cli("compare", a5, slow5, "--db", str(db), env=sleepy)
    assert p.returncode == 0 and "regressed" in p.stdout and "same machine" in p.stdout, p.stdout
    p = cli("compare", a, slow, "--db", str(db), env=sleepy)
    assert p.returncode == 0 and cmp.TOO_FEW in p.stdout, p.stdout  # listed without --all


def test_two_machines_give_ratios_only_and_the_host_diff(tmp_path):
    r = compared(tmp_path / "unused.db", str(INTEL_V1), str(AMD))
    assert r["same_machine"] is False and r["outcomes"] == cmp.ACROSS_HOSTS
    assert r["quantities"] and {q["outcome"] for q in r["quantities"]} <= {cmp.ACROSS_HOSTS, "n/a", "equal"}
    assert all(q["method"] in ("intervals", "") for q in r["quantities"])  # version 1 on one side: no samples
    facts = {d["fact"] for d in r["host_diff"]}
    assert {"cpu_model", "caches"} <= facts
    flips = {f["claim"]: (f["a"], f["b"]) for f in r["flips"]}
    intel, amd = ({x["claim"]: x["outcome"] for x in records(p)} for p in (INTEL_V1, AMD))
    assert flips == {c: (intel[c], amd[c]) for c in intel if intel[c] != amd[c]}
    text = cli("compare", str(INTEL_V1), str(AMD)).stdout
    assert cmp.ACROSS_HOSTS in text and "regressed" not in text and "cpu_model: Intel" in text
    assert text.index("verdict flips") < text.index("quantities compared") < text.index("host facts that differ")


def source(values: dict[str, list[float]], host: Host, run_id: str) -> Source:
    series = [Series(name, None, "ns", points=[Point(None, sorted(v)[len(v) // 2], (min(v), max(v)), len(v), v)])
              for name, v in values.items()]
    return Source(run_id, [Verdict("t.c", Outcome.SUPPORTED, "", series=series, host=host, run_id=run_id)])


def test_outcomes_by_direction_of_the_unit():
    assert cmp.better("ns") == cmp.better("ns/hop") == cmp.better("s") == "lower"
    assert cmp.better("malloc/free pairs per s") == "higher"
    assert cmp.better("tasks") is cmp.better("faults/page") is None
    assert cmp.judge(1.2, 1.4, "ns", True) == "regressed"
    assert cmp.judge(1.2, 1.4, "pairs per s", True) == "improved"
    assert cmp.judge(1.2, 1.4, "tasks", True) == "higher"
    assert cmp.judge(0.5, 0.8, "ns", True) == "improved"
    assert cmp.judge(1.05, 1.4, "ns", True) == "within noise"  # reaches into the band
    assert cmp.judge(1.2, 1.4, "ns", False) == cmp.ACROSS_HOSTS


def test_the_bootstrap_sees_a_shift_beyond_the_margin_and_not_one_inside_it():
    host = Host(hostname="h", cpu_model="c", cores_online=2, virtualization="vm")
    base = [100.0 + i % 7 for i in range(12)]
    a = source({"steady": base, "slower": base, "slightly": base}, host, "A")
    b = source({"steady": [v * 1.01 for v in base], "slower": [v * 1.3 for v in base],
                "slightly": [v * 1.05 for v in base]}, host, "B")
    got = {c.series: c for c in cmp.compare(a, b).changes}
    assert got["steady"].outcome == "within noise" and got["slightly"].outcome == "within noise"
    assert got["slower"].outcome == "regressed" and got["slower"].method == "bootstrap"
    other = Host(hostname="h2", cpu_model="c", cores_online=2, virtualization="vm")
    across = cmp.compare(a, source({"slower": [v * 1.3 for v in base]}, other, "B")).changes
    assert {c.outcome for c in across} == {cmp.ACROSS_HOSTS}
    assert [c.p for c in across] == [None] and across[0].method == "bootstrap"  # no significance across hosts


def test_machine_ids_decide_same_machine_when_both_have_one():
    h1 = Host(hostname="vm", cpu_model="AMD EPYC", cores_online=2, extra={"machine": "aa"})
    h2 = Host(hostname="vm", cpu_model="AMD EPYC", cores_online=2, extra={"machine": "bb"})
    assert not cmp.same_machine(h1, h2)
    assert cmp.same_machine(h1, Host(hostname="vm", cpu_model="AMD EPYC", cores_online=2, kernel="6.1",
                                     extra={"machine": "aa"}))
    assert cmp.same_machine(Host(hostname="vm", cpu_model="x"), Host(hostname="vm", cpu_model="x", kernel="y"))


def test_a_kernel_change_shows_in_the_host_diff(tmp_path):
    recs = records(AMD)
    changed = [dict(r, run_id="20261208T000000-beef", host={**r["host"], "kernel": "Linux 6.19", "thp": "always"})
               for r in recs]
    r = compared(tmp_path / "x.db", str(AMD), str(write_records(tmp_path / "b.jsonl", changed)))
    assert r["same_machine"]  # same hostname, CPU, cores and virtualization: another kernel on it
    assert {(d["fact"], d["b"]) for d in r["host_diff"]} == {("kernel", "Linux 6.19"), ("thp", "always")}
    assert {q["method"] for q in r["quantities"]} >= {"bootstrap"}
    assert {q["outcome"] for q in r["quantities"]} <= {"within noise", "equal"}  # the same samples


def test_bad_input_is_one_line(tmp_path, db):
    run = imported(db, AMD)
    one_line_error(cli("compare", run, run, "--db", str(db)), 2, "the same run")
    one_line_error(cli("compare", str(AMD), run, "--db", str(db)), 2, "the same run")  # a file and its import
    both = write_records(tmp_path / "two.jsonl", records(AMD) + records(INTEL_V1))
    one_line_error(cli("compare", str(both), run, "--db", str(db)), 2, "holds 2 runs")
    one_line_error(cli("compare", run, "nosuch", "--db", str(db)), 2, "no run matches 'nosuch'")
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    one_line_error(cli("compare", run, str(junk), "--db", str(db)), 1, "not perflab JSON")
    newer = records(INTEL_V1)
    newer[0]["schema_version"] = 99
    one_line_error(cli("compare", run, str(write_records(tmp_path / "n.jsonl", newer)), "--db", str(db)), 1,
                   "newer than this perflab's")


def test_json_is_one_object_with_everything(tmp_path):
    verdicts = read_lines(AMD.read_text().splitlines())
    assert verdicts
    r = compared(tmp_path / "x.db", str(INTEL_V1), str(AMD))
    assert set(r) >= {"a", "b", "same_machine", "flips", "quantities", "host_diff", "counts", "band", "conf"}
    assert sum(r["counts"].values()) == len(r["quantities"])


@pytest.mark.live
def test_an_aa_pair_of_real_quick_runs_is_within_noise(db):
    """Two quick runs of two real claims on this machine, one after the other: nothing
    moved, unless a claim's own A/A control failed in one of them (a noisy stretch of a
    shared VM, which its verdict then reports as inconclusive). Three to five processes a
    point: a ratio outside the band is at most "too few samples" (CI once saw thread
    creation 15% apart between two such runs, each run's three processes tight)."""
    claims = ["space.syscall-in-context", "task.thread-cheaper"]
    runs = []
    for seed in ("5", "6"):
        p = cli("run", *claims, "--quick", "--json", "--seed", seed, "--db", str(db))
        assert p.returncode == 0, p.stderr
        runs.append([json.loads(line) for line in p.stdout.splitlines()])
    noisy = {r["claim"] for run in runs for r in run if any(c["passed"] is False for c in r["controls"].values())}
    result = compared(db, runs[0][0]["run_id"], runs[1][0]["run_id"])
    assert result["same_machine"] and len(result["quantities"]) >= 8
    moved = [q for q in result["quantities"] if q["outcome"] in cmp.MOVED and q["claim"] not in noisy]
    assert not moved, moved
    assert {q["outcome"] for q in result["quantities"]} <= {"within noise", cmp.TOO_FEW, "regressed", "improved",
                                                            "higher", "lower"}


def test_a_ratio_outside_the_band_needs_its_rank_test_too():
    """Three processes a side wholly apart are 'too few samples' (least p 0.1), whatever the
    ratio; ten a side wholly apart are a move; five a side wholly apart (p = 0.0079) are a
    move alone, but not among ten such quantities, where Holm's first bound is 0.005."""
    host = Host(hostname="h", cpu_model="c", cores_online=2, virtualization="vm")
    three = [100.0, 101.0, 102.0]
    got = {c.series: c for c in cmp.compare(source({"x": three}, host, "A"),
                                            source({"x": [v * 2 for v in three]}, host, "B")).changes}
    assert got["x"].outcome == cmp.TOO_FEW and got["x"].ci[0] > cmp.BAND.hi
    assert got["x"].p == pytest.approx(0.1) and "least p = 0.1" in got["x"].note
    ten = [100.0 + 3 * i for i in range(10)]
    got = {c.series: c for c in cmp.compare(source({"apart": ten}, host, "A"),
                                            source({"apart": [v * 1.5 for v in ten]}, host, "B")).changes}
    assert got["apart"].outcome == "regressed" and got["apart"].p < 1e-4
    five = ten[:5]
    [alone] = cmp.compare(source({"q": five}, host, "A"), source({"q": [v * 1.5 for v in five]}, host, "B")).changes
    assert alone.outcome == "regressed" and alone.p == pytest.approx(2 / 252)
    many = cmp.compare(source({f"q{k}": five for k in range(10)}, host, "A"),
                       source({f"q{k}": [v * 1.5 for v in five] for k in range(10)}, host, "B")).changes
    assert {c.outcome for c in many} == {"within noise"} and all("Holm's bound over 10" in c.note for c in many)


def test_identical_runs_move_nothing_in_most_comparisons():
    """A/A on synthetic data: 200 comparisons of 12 quantities, each side n draws of one
    lognormal (sigma 10%), n = 3, 5 and 10. Holm over the rank tests holds the chance of
    any false move in a comparison at 5%. (The band alone, a bootstrap interval outside
    ±10%, put a false move in 17 of the 200 comparisons at n = 3, seed 7.)"""
    import random
    host = Host(hostname="h", cpu_model="c", cores_online=2, virtualization="vm")
    for n in (3, 5, 10):
        r = random.Random(7)
        with_any_move = 0
        for i in range(200):
            draw = lambda: [100 * r.lognormvariate(0, 0.10) for _ in range(n)]  # noqa: E731
            names = [f"q{k}" for k in range(12)]
            a = source({k: draw() for k in names}, host, "A")
            b = source({k: draw() for k in names}, host, "B")
            with_any_move += any(c.outcome in cmp.MOVED for c in cmp.compare(a, b, n_boot=200).changes)
        assert with_any_move <= 200 * 0.05 + 3 * (200 * 0.05 * 0.95) ** 0.5, n  # 5%, plus three binomial sd
