"""Claim files whose truth is known, run through the same engine as every claim, at the
quick budget: each gives its known outcome. Bad commands give ``error`` with their stderr
kept, never a verdict. The claim files are tests/fixtures/claims/ (written for these
tests; README's example is tested in test_readme_claim.py).

The fast ones time sleeps: a sleep is timer-bound, so the slow stretches of a shared
2-vCPU machine (other processes taking the CPU for seconds, measured here at up to 2x on
a CPU-bound command) barely move them. The CPU-bound dd claims run live."""

from __future__ import annotations

import json
import shlex
import textwrap
from pathlib import Path

import pytest

import perflab
from conftest import cli
from perflab.cli.main import build_parser
from perflab.core.record import Outcome, Reason
from perflab.core.schema import SCHEMA
from perflab.engine import provenance, registry

FIXTURES = Path(__file__).parent / "fixtures" / "claims"


def verdict(path, db, seeds=(1, 2, 3)):
    """One claim file at the quick budget. A run the machine left undecided, its A/A
    control failed or its interval straddling a threshold (inconclusive `control` or
    `noisy`: a busy moment of a shared machine, never a confident answer), is run again
    with another seed, at most twice, as conftest._run_all does for the built-in claims.
    A decisive or a `between` answer is final: a wrong one fails at once."""
    for seed in seeds:
        (v,) = perflab.run([str(path)], budget="quick", seed=seed, db=db)
        if v.reason not in (Reason.CONTROL, Reason.NOISY):
            break
    return v


def derived(v, key):
    return v.evidence["derived"][key]


def medians(v, series):
    return [p.median for p in v.series_named(series).points]


# what the measurement itself must show, whatever the verdict: a sleep never ends early
# (nanosleep(2)), the printed figure is read exactly, the spinning shell uses CPU
PHYSICS = {
    "ratio-true": lambda v: derived(v, "median a (ms)") >= 20 and derived(v, "median b (ms)") >= 10,
    "ratio-false": lambda v: derived(v, "median a (ms)") >= 10 and derived(v, "median b (ms)") >= 20,
    "ratio-between": lambda v: derived(v, "median a (ms)") >= 20 and derived(v, "median b (ms)") >= 10,
    "scaling-linear": lambda v: medians(v, "command") == sorted(medians(v, "command")) and medians(v, "command")[-1] >= 150,
    "scaling-flat": lambda v: min(medians(v, "command")) >= 50,
    "threshold-wall": lambda v: v.decision.value >= 10,
    "threshold-regex": lambda v: v.decision.value == 12.5 and v.decision.ci == (12.5, 12.5),
    "ratio-cpu": lambda v: derived(v, "median a (ms)") >= 5,
}


@pytest.mark.parametrize("name,expected", [
    ("ratio-true", (Outcome.SUPPORTED, None)),
    ("ratio-false", (Outcome.REFUTED, None)),
    ("ratio-between", (Outcome.INCONCLUSIVE, Reason.BETWEEN)),
    ("scaling-linear", (Outcome.SUPPORTED, None)),
    ("scaling-flat", (Outcome.SUPPORTED, None)),
    ("threshold-wall", (Outcome.SUPPORTED, None)),
    ("threshold-regex", (Outcome.SUPPORTED, None)),
    ("ratio-cpu", (Outcome.SUPPORTED, None)),
])
def test_a_claim_of_known_truth_gives_its_outcome(name, expected, db):
    jsonschema = pytest.importorskip("jsonschema")
    path = FIXTURES / f"{name}.toml"
    v = verdict(path, db)
    assert (v.outcome, v.reason) == expected, v.summary
    assert all(c.passed for c in v.controls) and [c.name for c in v.controls] == ["a/a"], v.summary
    assert PHYSICS[name](v), (v.summary, v.evidence.get("derived"))
    rec = v.to_json(samples=True)
    jsonschema.validate(rec, SCHEMA)
    # the same engine: looks, the kernel's records, the A/A's sets, the claim's rerun line
    assert rec["evidence"]["rounds"] in (3, 5) and {s["series"] for s in rec["samples"]} >= {"a/a:A", "a/a:B"}
    assert all(s["record"]["kernel"] == "cmdtime" for s in rec["samples"])
    (claim,) = registry.select([str(path)])
    assert v.source_hash == provenance.source_hash(claim) and v.statement == claim.statement
    args = build_parser().parse_args(shlex.split(v.rerun)[1:])
    assert args.selectors == [str(path.resolve())] and args.seed is not None and args.budget == "quick"


@pytest.mark.parametrize("printed,expected", [
    ("took 80 ms", (Outcome.REFUTED, None)),
    ("took 30 ms", (Outcome.INCONCLUSIVE, Reason.BETWEEN)),
])
def test_the_threshold_kind_reaches_its_other_outcomes(tmp_path, db, printed, expected):
    text = (FIXTURES / "threshold-regex.toml").read_text().replace("job done: took 12.5 ms", printed)
    (tmp_path / "c.toml").write_text(text)
    v = verdict(tmp_path / "c.toml", db)
    assert (v.outcome, v.reason) == expected, v.summary


BAD = {
    "not found": ('argv = ["no-such-command-perflab", "x"]', "command not found: no-such-command-perflab"),
    "exits non-zero": ("""argv = ["sh", "-c", "echo 'disk on fire' >&2; exit 3"]""", "disk on fire"),
    "times out": ('argv = ["sh", "-c", "echo still working >&2; exec sleep 30"]\ntimeout = 0.3',
                  "ran past its timeout of 300 ms"),
    "no match": ("""argv = ["sh", "-c", "echo hello; echo 'warning: no timer' >&2"]\n"""
                 """metric = { regex = 'took ([0-9.]+) ms', unit = "ms" }""", "warning: no timer"),
    "setup fails": ("""argv = ["true"]\nsetup = ["sh", "-c", "echo 'cannot build' >&2; exit 2"]""", "cannot build"),
}


def threshold_file(tmp_path, body: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(f'id = "mine.bad"\nstatement = "s"\nkind = "threshold"\n{body}\n'
                    "supported = [0, 1000]\nrefuted = [5000, inf]\n")
    return path


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_command_is_an_error_with_its_stderr_never_a_verdict(tmp_path, db, case):
    body, needle = BAD[case]
    (v,) = perflab.run([str(threshold_file(tmp_path, body))], budget="quick", seed=1, db=db)
    assert v.outcome is Outcome.ERROR and v.decision is None and v.reason is None, v.summary
    assert needle in v.evidence["stderr"] and v.summary.startswith("error: "), v.evidence
    if case == "setup fails":
        assert v.summary.startswith("error: the setup command failed: cmdtime exited 1")
    else:
        assert v.evidence["argv"][0] == "cmdtime"


def test_an_error_is_a_completed_run_on_the_command_line(tmp_path, db):
    p = cli("run", str(threshold_file(tmp_path, BAD["exits non-zero"][0])), "--quick", "--json", "--db", str(db))
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout)
    assert rec["outcome"] == "error" and "disk on fire" in rec["evidence"]["stderr"]


def test_setup_runs_once_before_sampling_in_the_files_directory(tmp_path, db):
    path = threshold_file(tmp_path, 'argv = ["test", "-f", "ready"]\n'
                                    'setup = ["sh", "-c", "echo once >> setup.log; touch ready"]')
    (v,) = perflab.run([str(path)], budget="quick", seed=1, db=db)
    assert v.outcome is not Outcome.ERROR and v.decision.value < 1000, v.summary  # "ready" was there
    # once before the sampling of each attempt (a runner that measures a claim again after a
    # failed A/A keeps the first attempt in evidence.first_attempt, and prepares it again)
    assert (tmp_path / "setup.log").read_text() == "once\n" * (1 + ("first_attempt" in v.evidence))
    assert v.evidence["facts"]["setup"]["argv"][0] == "sh" and v.evidence["facts"]["setup"]["wall_ms"] > 0


def test_a_setup_is_not_read_by_the_metrics_regex(tmp_path, db):
    path = tmp_path / "c.toml"
    path.write_text((FIXTURES / "threshold-regex.toml").read_text() + 'setup = ["touch", "ready"]\n')
    (v,) = perflab.run([str(path)], budget="quick", seed=1, db=db)
    assert v.outcome is Outcome.SUPPORTED and (tmp_path / "ready").exists(), v.summary


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    text = (FIXTURES / "ratio-true.toml").read_text() + 'setup = ["touch", "setup-ran"]\n'
    (tmp_path / "c.toml").write_text(text)
    db = tmp_path / "perflab.db"
    p = cli("run", "--dry-run", str(tmp_path / "c.toml"), "--quick", "--cpu", "0", "--db", str(db))
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "known.sleep-twice" in out and "supported: a / b in [1.7, 2.3]; refuted: a / b in [0, 1.3]" in out
    assert f"cmdtime --cpu=0 --runs=5 --timeout-ms=60000 '--chdir={tmp_path.resolve()}'" in out or \
        f"cmdtime --cpu=0 --runs=5 --timeout-ms=60000 --chdir={tmp_path.resolve()}" in out
    assert "-- sleep 0.02" in out and "-- sleep 0.01" in out
    assert "A/A control: a against itself, 3 pair(s)" in out and "24 to 40 processes" in out
    assert "setup, once before sampling (not run now): touch setup-ran" in out
    assert not db.exists() and not (tmp_path / "setup-ran").exists()
    p = cli("run", "--dry-run", "--json", str(tmp_path / "c.toml"), "io.epoll-flat", "--quick")
    plans = [json.loads(line) for line in p.stdout.splitlines()]
    assert [x["claim"] for x in plans] == ["known.sleep-twice", "io.epoll-flat"]  # built-in claims too
    assert plans[0]["series"][0]["points"][0]["argv"][-3:] == ["--", "sleep", "0.02"]
    assert plans[0]["processes"] == {"fewest": 24, "most": 40}


def test_a_changed_file_is_a_new_version_history_shows_every_one(tmp_path, db):
    path = tmp_path / "c.toml"
    original = (FIXTURES / "threshold-regex.toml").read_text()
    path.write_text(original)
    first = cli("run", str(path), "--quick", "--db", str(db))
    assert first.returncode == 0 and "claim changed" not in first.stderr, first.stderr
    path.write_text("# a comment changes the file, not the claim\n" + original)
    same = cli("run", str(path), "--quick", "--json", "--db", str(db))
    assert "claim changed" not in same.stderr
    path.write_text(original.replace("supported = [0, 20]", "supported = [0, 15]"))
    changed = cli("run", str(path), "--quick", "--json", "--db", str(db))
    assert "known.printed-figure: claim changed since its first run on 20" in changed.stderr
    assert "verdicts are not comparable" in changed.stderr
    hist = cli("history", str(path), "--db", str(db), env={"COLUMNS": "250"})
    assert hist.returncode == 0, hist.stderr
    assert "v1 " in hist.stdout and "3 verdict(s)" not in hist.stdout and "2 verdict(s): registered" in hist.stdout
    assert "v2 " in hist.stdout and "1 verdict(s): claim changed since its first run on 20" in hist.stdout
    assert "supported: [0, 20] -> [0, 15]" in hist.stdout and "(changed: not comparable)" in hist.stdout
    rows = [json.loads(x) for x in cli("history", "known.printed-figure", "--json", "--db", str(db)).stdout.splitlines()]
    assert [(r["claim_version"], r["comparable"]) for r in rows] == [(1, True), (1, True), (2, False)]
    assert len({r["source_hash"] for r in rows}) == 3  # the source hash covers the file's text, comment and all
    path.write_text(original.replace("supported = [0, 20]", "supported = [0, 18]"))
    hist = cli("history", str(path), "--db", str(db), env={"COLUMNS": "250"})
    assert "has not run yet; its first run will be v3" in hist.stdout


def test_list_claims_dir_and_show(db):
    p = cli("list", "--claims-dir", str(FIXTURES), "known", "--json")
    assert p.returncode == 0, p.stderr
    rows = {r["claim"]: r for r in map(json.loads, p.stdout.splitlines())}
    assert set(rows) == {"known.sleep-twice", "known.sleep-twice-reversed", "known.sleep-thrice", "known.sleep-linear",
                         "known.timeout-flat", "known.sleep-returns", "known.printed-figure", "known.dd-linear",
                         "known.dd-skip-flat", "known.spin-uses-cpu"}
    assert rows["known.sleep-twice"]["kernel"] == "cmdtime" and rows["known.sleep-twice"]["runnable"]
    assert rows["known.sleep-twice"]["source"] == str(FIXTURES / "ratio-true.toml")
    perflab.run([str(FIXTURES / "threshold-regex.toml")], budget="quick", seed=1, db=db)
    show = cli("show", "last", "--db", str(db), env={"COLUMNS": "200"})
    assert show.returncode == 0 and "known.printed-figure" in show.stdout and "supported" in show.stdout


@pytest.mark.live
@pytest.mark.parametrize("name", ["scaling-dd-linear", "scaling-dd-skip-flat"])
def test_cpu_bound_scaling_claims_live(name, db):
    """dd is CPU-bound: in a slow stretch of a shared machine its A/A can fail after the
    reruns, and then the verdict must be inconclusive (control or noisy), never a confident
    one; when it decides, it is supported."""
    v = verdict(FIXTURES / f"{name}.toml", db)
    if v.reason in (Reason.CONTROL, Reason.NOISY):  # undecided after the reruns: never a confident answer
        return
    assert v.outcome is Outcome.SUPPORTED, v.summary


def test_a_claim_files_inputs_are_its_text_its_builder_and_its_kernel(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text((FIXTURES / "ratio-true.toml").read_text())
    (claim,) = registry.select([str(path)])
    rels = {p.relative_to(provenance.PACKAGE).as_posix() if p.is_relative_to(provenance.PACKAGE) else p
            for p in provenance.inputs(claim)}
    assert path.resolve() in rels
    assert {"userclaims/build.py", "userclaims/validate.py", "kernels/cmdtime.c", "engine/runner.py"} <= rels
    before = provenance.source_hash(claim)
    path.write_text(textwrap.dedent(path.read_text()) + "# edited\n")
    assert provenance.source_hash(claim) != before
