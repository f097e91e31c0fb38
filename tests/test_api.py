"""The Python API the command line is a layer over: perflab.run and perflab.store."""

from __future__ import annotations

import json

import pytest

import perflab
from perflab.core.claim import Claim, Plan, SeriesSpec
from perflab.core.errors import UsageError
from perflab.core.record import Outcome, Reason, Verdict
from perflab.core.rule import Region, Rule
from perflab.decide.rules import median_rule
from perflab.engine import registry

RULE = Rule(quantity="v", short="v", supported=Region(50, 150), refuted=Region(hi=10), reason="a test claim")


def shell_claim(cid: str, script: str) -> Claim:
    """A claim whose kernel is a shell script printing {"v": N}, with an A/A on it."""
    def plan(settings):
        return Plan([SeriesSpec(name="s", x=None, unit="ns", xs=(None,), argv=lambda _x: ["/bin/sh", "-c", script],
                                value=lambda r: float(r["v"]))])

    return Claim(id=cid, statement=cid, seed_point="test", mechanism="a test claim for the API " * 5, kernel="launch",
                 rule=RULE, plan=plan, decide=lambda ev, rule: median_rule(ev.series["s"].points[None], rule, ev),
                 aa=("s", None))


@pytest.fixture
def only(monkeypatch):
    def use(*claims):
        monkeypatch.setattr(registry, "select", lambda selectors: list(claims))
    return use


def test_run_returns_typed_verdicts_and_stores_them(tmp_path, only):
    only(shell_claim("api.steady", 'echo \'{"v": 100}\''))
    db = tmp_path / "p.db"
    verdicts = perflab.run(["api.steady"], budget="quick", seed=3, db=db)
    (v,) = verdicts
    assert isinstance(v, perflab.Verdict) and v.outcome is perflab.Outcome.SUPPORTED
    assert v.decision.value == 100 and json.loads(json.dumps(v.to_json()))["claim"] == "api.steady"
    with perflab.store.open(db) as store:
        (run,) = store.runs()
        assert run.status == "complete" and run.seed == 3 and run.claims == 1
        assert store.verdicts(run.id)[0].decision.value == 100
    assert perflab.run(["api.steady"], budget="quick", save=False)[0].run_id  # nothing stored, still typed


def test_bad_input_is_a_typed_error(only):
    only(shell_claim("api.steady", 'echo \'{"v": 100}\''))
    with pytest.raises(UsageError, match="unknown budget"):
        perflab.run(["api.steady"], budget="huge", save=False)
    with pytest.raises(UsageError, match="unknown parameter"):
        perflab.run(["api.steady"], params={"nope": 1}, save=False)


def test_a_claim_whose_aa_failed_is_measured_again_at_the_end(tmp_path, only):
    """The first attempt's processes print wildly spread values (an unsteady moment), the
    later ones steady values: the A/A fails once, the claim is measured again at the end
    of the run with the next seed, and the verdict keeps both attempts."""
    counter = tmp_path / "n"
    counter.write_text("0")
    script = (f'n=$(cat {counter}); echo $((n+1)) > {counter}; '
              'if [ "$n" -lt 35 ]; then v=$(( (n * 7919) % 900 + 50 )); else v=100; fi; echo "{\\"v\\": $v}"')
    only(shell_claim("api.unsteady", script), shell_claim("api.steady", 'echo \'{"v": 100}\''))
    db = tmp_path / "p.db"
    verdicts = perflab.run(["api.unsteady", "api.steady"], budget="quick", seed=5, db=db)
    final = {v.claim: v for v in verdicts}["api.unsteady"]
    first = final.evidence["first_attempt"]
    assert first["outcome"] == "inconclusive" and first["reason"] == Reason.CONTROL.value
    assert first["controls"]["a/a"]["passed"] is False
    assert final.control("a/a").passed is True and final.outcome is Outcome.SUPPORTED
    assert "--seed 6" in final.rerun and "--seed 5" in first["rerun"]
    with perflab.store.open(db) as store:
        stored = {v.claim: v for v in store.verdicts(store.resolve_run("last"))}
    assert stored["api.unsteady"].outcome is Outcome.SUPPORTED and "first_attempt" in stored["api.unsteady"].evidence
    assert isinstance(stored["api.steady"], Verdict)
