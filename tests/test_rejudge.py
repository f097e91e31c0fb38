"""perflab rejudge on the recorded runs of two real machines (tests/fixtures/hosts/, a copy
of ../shared/hosts/): under the current rules each record must give the truth measured
on those machines by hand (their README's table)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli
from perflab.core.record import Outcome, Reason, read_lines
from perflab.core.schema import SCHEMA
from perflab.engine import registry
from perflab.engine.rejudge import rejudge
from perflab.results.store import Store

HOSTS = Path(__file__).resolve().parent / "fixtures" / "hosts"
FILES = {"amd default": HOSTS / "amd-epyc-2vcpu" / "default-run.jsonl",
         "intel default": HOSTS / "intel-xeon-2vcpu" / "default-run.jsonl",
         "intel quick": HOSTS / "intel-xeon-2vcpu" / "quick-run.jsonl"}
S, R, I, K = Outcome.SUPPORTED, Outcome.REFUTED, Outcome.INCONCLUSIVE, Outcome.SKIPPED
# the hosts' README: claim -> {run: allowed (outcome, reason or None)}; every other claim: as recorded
TRUTH = {
    **{cid: {run: {(S, None)} for run in FILES}
       for cid in ("io.select-linear", "io.poll-linear", "io.epoll-all-ready")},
    "fork.cost-grows-with-memory": {"amd default": {(S, None)}, "intel default": {(S, None)},
                                    "intel quick": {(S, None), (I, Reason.CONTROL)}},
    "lib.allocator-scaling": {"amd default": {(K, None)}, "intel default": {(K, None)},
                              "intel quick": {(S, None)}},
    "task.process-switch-dearer": {run: {(R, None)} for run in FILES},
    "cache.cpu-ladder": {"amd default": {(S, None)}, "intel default": {(I, Reason.CAPPED)},
                         "intel quick": {(I, Reason.CAPPED)}},
}


def results(run: str):
    claims = {c.id: c for c in registry.all_claims()}
    return rejudge(read_lines(FILES[run].open(), str(FILES[run])), claims)


@pytest.mark.parametrize("run", FILES)
def test_each_recorded_run_gives_the_machines_truth(run):
    for r in results(run):
        got = (r.new.outcome, r.new.reason)
        if r.old.claim in TRUTH:
            assert got in TRUTH[r.old.claim][run], (r.old.claim, got, r.new.summary)
        elif r.old.claim == "cache.ladder":
            assert r.basis == "as recorded" and "page-cache hit" in r.note  # not decidable again
        else:
            assert r.new.outcome is r.old.outcome, (r.old.claim, got, r.new.summary)  # as recorded


def test_skipped_allocator_scaling_names_the_install_line():
    lib = next(r for r in results("amd default") if r.old.claim == "lib.allocator-scaling")
    assert "apt-get install libjemalloc2" in lib.new.summary


def test_records_without_samples_say_how_they_were_decided():
    for r in results("intel default"):
        if r.basis == "points":
            assert "approximate" in r.note and r.new.evidence["rejudged"]["basis"] == "points"
        if r.basis == "as recorded":
            assert r.note
            assert (r.new.outcome, r.new.reason) == (r.old.outcome, r.old.reason)


def test_the_amd_database_with_raw_samples(amd_db):
    """The same AMD run from its database (raw samples, migrated to record version 2):
    decided from the samples, no confident verdict against the truth; where the old run
    stopped after its first look on three rounds, the blocked interval may leave a
    linear walk undecided (noisy), never refuted."""
    with Store(amd_db) as store:
        verdicts = store.verdicts(store.resolve_run("last"))
    claims = {c.id: c for c in registry.all_claims()}
    by_claim = {r.old.claim: r for r in rejudge(verdicts, claims)}
    assert by_claim["io.select-linear"].basis == "samples"
    for cid, allowed in TRUTH.items():
        r = by_claim[cid]
        got = (r.new.outcome, r.new.reason)
        rounds = r.old.evidence.get("rounds")
        assert got in allowed["amd default"] or (got == (I, Reason.NOISY) and rounds == 3), (cid, got, rounds)


def test_rejudge_command_prints_both_verdicts_and_validates(db):
    jsonschema = pytest.importorskip("jsonschema")
    p = cli("rejudge", "--file", str(FILES["intel quick"]), "--json")
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(lines) == 33
    for rec in lines:
        jsonschema.validate(rec, SCHEMA)
        assert {"old_outcome", "old_rule_version", "rule_version", "basis"} <= set(rec["rejudged"])
    sel = next(r for r in lines if r["claim"] == "io.select-linear")
    assert sel["rejudged"]["old_outcome"] == "inconclusive" and sel["outcome"] == "supported"
    assert sel["rejudged"]["old_rule_version"] == 1 and sel["rejudged"]["rule_version"] == 2
    table = cli("rejudge", "--file", str(FILES["intel quick"]))
    assert table.returncode == 0 and "io.select-linear" in table.stdout and "changed" in table.stdout


@pytest.mark.parametrize("args,code,needle", [
    (["--file", "/nonexistent.jsonl"], 1, "cannot read"),
    (["--all", "--file", "x"], 2, "not both"),
])
def test_rejudge_bad_input(args, code, needle):
    p = cli("rejudge", *args)
    assert p.returncode == code and needle in p.stderr and "Traceback" not in p.stderr


def test_rejudge_of_a_file_that_is_not_perflab_json(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"hello": 1}\n')
    p = cli("rejudge", "--file", str(bad))
    assert p.returncode == 2 and "bad.jsonl, line 1" in p.stderr and "Traceback" not in p.stderr
