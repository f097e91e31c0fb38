"""The rules of claim files (userclaims/build.py) reach every outcome on synthetic data:
supported, refuted, inconclusive between, inconclusive noisy, and, through the A/A
control, inconclusive control; they decide without I/O, and a stored run is decided
again from its record alone, without the file."""

from __future__ import annotations

import math
import random

import pytest

from conftest import evidence, point, power, synthetic
from perflab.core.claim import Curve
from perflab.core.params import BUDGETS
from perflab.core.record import Outcome, Reason
from perflab.core.claim import Settings
from perflab.decide.summary import summarize
from perflab.engine import judge, rejudge
from perflab.userclaims.build import claim, from_record, net_curve
from perflab.userclaims.definition import Definition, Metric
from test_pure_decide import no_io

INF = math.inf
SUPPORTED, REFUTED = (Outcome.SUPPORTED, None), (Outcome.REFUTED, None)
BETWEEN, NOISY = (Outcome.INCONCLUSIVE, Reason.BETWEEN), (Outcome.INCONCLUSIVE, Reason.NOISY)


def definition(kind: str, **kw) -> Definition:
    commands = {"ratio": {"a": ("sleep", "0.02"), "b": ("sleep", "0.01")},
                "scaling": {"argv": ("dd", "count={n}")}, "threshold": {"argv": ("true",)}}[kind]
    base = dict(id=f"test.{kind}", statement="s", kind=kind, metric=Metric(), commands=commands,
                supported=(1.7, 2.3), refuted=(0.0, 1.3))
    return Definition(**{**base, **kw})


def decide(d: Definition, *curves: Curve):
    c = claim(d)
    return c.decide(evidence(*curves), c.rule)


def outcome(decision):
    return decision.outcome, decision.inconclusive


@pytest.mark.parametrize("a_ms,noise,expected", [
    (21.6, 0.02, SUPPORTED),   # (20 + c) / (10 + c) with c = 1.6 ms
    (11.6 * 1.75, 0.005, SUPPORTED),  # just inside
    (11.6 * 1.25, 0.005, REFUTED),  # just inside the refuted range
    (11.6 * 1.5, 0.02, BETWEEN),   # between 1.3 and 1.7: smaller than claimed
    (11.6 * 2.5, 0.02, BETWEEN),   # above 2.3: in neither range
    (11.6 * 1.7, 0.30, NOISY),     # straddles 1.7
])
def test_ratio(a_ms, noise, expected):
    d = definition("ratio")
    got = decide(d, point("a", a_ms, noise=noise, unit="ms"), point("b", 11.6, noise=noise, unit="ms"))
    assert outcome(got) == expected, got


def sweep(cost, noise=0.03, seed=1, xs=(500, 5000, 10000, 20000, 50000)) -> Curve:
    return synthetic("command", xs, cost, noise=noise, seed=seed, x="n", unit="ms")


LINEAR = dict(supported=(0.8, 1.25), refuted=(-INF, 0.5))


@pytest.mark.parametrize("cost,noise,expected", [
    (power(0.05, 0.0005, 1.0), 0.03, SUPPORTED),   # linear, a small fixed part
    (power(20.0, 0.0005, 1.0), 0.01, REFUTED),     # a 20 ms fixed part hides the slope: not net
    (power(0.05, 0.003, 0.65), 0.03, BETWEEN),      # sub-linear
    (power(0.05, 0.0005, 1.0), 0.6, NOISY),
])
def test_scaling_raw(cost, noise, expected):
    got = decide(definition("scaling", n=(500, 5000, 10000, 20000, 50000), aa_n=5000, **LINEAR), sweep(cost, noise))
    assert outcome(got) == expected, got


def test_scaling_net_of_the_baseline_sees_the_slope_a_fixed_part_hides():
    """The 20 ms fixed part that refutes the raw exponent above is subtracted round by
    round: the net cost grows linearly, and the claim is supported."""
    fixed = 20.0
    d = definition("scaling", n=(500, 5000, 10000, 20000, 50000), aa_n=5000, baseline=0, **LINEAR)
    rng = random.Random(3)
    cmd = Curve("command", "n", "ms")
    base = Curve("baseline", None, "ms")
    for _ in range(5):  # rounds: the baseline and every point once, with a common slow factor
        slow = rng.choice([1.0, 1.0, 1.3])
        base.add(None, fixed * slow * math.exp(rng.gauss(0, 0.005)))
        for n in d.n:
            cmd.add(n, (fixed * slow + 0.0005 * n) * math.exp(rng.gauss(0, 0.005)))
    assert outcome(decide(d, cmd, base)) == SUPPORTED
    d_raw = definition("scaling", n=d.n, aa_n=5000, **LINEAR)
    assert outcome(decide(d_raw, cmd)) == REFUTED
    assert all(abs(m - 0.0005 * n) < 0.5 for n, m in ((n, sorted(v)[2]) for n, v in net_curve(
        evidence(cmd, base)).points.items()))


def test_scaling_net_that_is_not_positive_is_noisy_not_an_answer():
    d = definition("scaling", n=(500, 5000, 10000), aa_n=5000, baseline=0, **LINEAR)
    got = decide(d, sweep(lambda n: 1.0, xs=d.n), point("baseline", 1.0, unit="ms"))
    assert outcome(got) == NOISY and got.value is None


@pytest.mark.parametrize("ms,expected", [(11.2, SUPPORTED), (14.0, SUPPORTED), (40.0, REFUTED), (20.0, BETWEEN)])
def test_threshold(ms, expected):
    d = definition("threshold", supported=(0, 15), refuted=(30, INF))
    assert outcome(decide(d, point("command", ms, noise=0.02, unit="ms"))) == expected


def test_threshold_noisy():
    d = definition("threshold", supported=(0, 15), refuted=(30, INF))
    assert outcome(decide(d, point("command", 15.0, noise=0.3, unit="ms"))) == NOISY


def test_a_failed_aa_control_makes_a_supported_rule_inconclusive():
    d = definition("ratio")
    c = claim(d)
    a, b = point("a", 21.6, noise=0.01, unit="ms"), point("b", 11.6, noise=0.01, unit="ms")
    aa_a = synthetic("a/a:A", (None,), lambda _x: 21.6, n=9, noise=0.02, x=None, unit="ms")
    aa_b = synthetic("a/a:B", (None,), lambda _x: 30.0, n=9, noise=0.02, x=None, unit="ms", seed=2)
    decision, controls = judge.evaluate(c, evidence(a, b, aa_a, aa_b), ("a", None))
    out, _why, reason = judge.final_outcome(decision, controls)
    assert decision.outcome is Outcome.SUPPORTED and (out, reason) == (Outcome.INCONCLUSIVE, Reason.CONTROL)


@pytest.mark.parametrize("kind", ["ratio", "scaling", "threshold"])
def test_decides_without_io_and_again_from_the_record_alone(kind):
    """Deciding is pure; the record carries the definition, so the claim can be rebuilt
    from it (no file) and a stored run decided again to the same answer."""
    extra = {"scaling": dict(n=(500, 5000, 10000, 20000, 50000), aa_n=5000, baseline=0, **LINEAR),
             "threshold": dict(supported=(0, 15), refuted=(30, INF))}.get(kind, {})
    d = definition(kind, **extra)
    c = claim(d)
    settings = Settings(params={}, budget=BUDGETS["quick"], seed=3, cpu=0, host={})
    plan = c.plan(settings)  # no setup: nothing runs
    curves = {"ratio": [point("a", 21.6, noise=0.01, unit="ms"), point("b", 11.6, noise=0.01, unit="ms")],
              "scaling": [sweep(power(0.8, 0.0005, 1.0)), point("baseline", 0.8, noise=0.01, unit="ms")],
              "threshold": [point("command", 11.2, noise=0.01, unit="ms")]}[kind]
    aa = c.aa_config(settings)
    curves += [synthetic(name, (aa[1],), lambda _x: 11.0, n=9, noise=0.02, x=curves[0].x, unit="ms", seed=i)
               for i, name in enumerate((judge.AA_A, judge.AA_B))]
    ev = evidence(*curves, facts=judge.as_json(plan.facts))
    with no_io():
        decision, controls = judge.evaluate(c, ev, aa)
        judge.derived(c, ev)
    assert decision.outcome is Outcome.SUPPORTED and all(x.passed for x in controls)
    # a record as the runner writes it, then decided again by a claim rebuilt from it
    from perflab.core.record import Verdict
    v = Verdict(claim=c.id, outcome=Outcome.INCONCLUSIVE, summary="")
    v.series = [summarize(cv, 0.95, random.Random(1), 200) for cv in curves]
    v.evidence = {"seed": 3, "rounds": 5, "conf_per_look": ev.conf, "n_boot": ev.n_boot, "facts": ev.facts,
                  "aa": list(aa)}
    judge.settle(v, decision, controls)
    stored = Verdict.from_json(v.to_json(samples=True))
    rebuilt = from_record(stored)
    assert rebuilt.rule == c.rule
    again = rejudge.decide_again(rebuilt, stored).new
    assert (again.outcome, again.decision.value) == (stored.outcome, rejudge.decide_again(c, stored).new.decision.value)
    assert from_record(stored.to_json()).rule == c.rule and from_record({"evidence": {"facts": {}}}) is None


def test_the_rule_is_the_files_ranges_and_words_come_from_it():
    d = definition("ratio", supported=(1.8, 2.2), refuted=(0.0, 1.3), version=2, reason="because")
    r = claim(d).rule
    assert (r.supported.lo, r.supported.hi, r.refuted.lo, r.refuted.hi) == (1.8, 2.2, 0.0, 1.3)
    assert r.version == 2 and r.reason == "because"
    assert r.thresholds() == {"supported": "a / b in [1.8, 2.2]", "refuted": "a / b in [0, 1.3]"}
    open_ended = claim(definition("threshold", supported=(-INF, 50), refuted=(100, INF))).rule
    assert open_ended.thresholds() == {"supported": "median <= 50", "refuted": "median >= 100"}
