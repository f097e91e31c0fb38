"""Deciding stored verdicts again under the current rules (``perflab rejudge``).

A record of version 2 carries what its decision needs: every point's raw samples with
their rounds, the plan's facts, the seed, the look and the confidence; a structural
claim's observations. Decided again with the same rule version it gives the same answer
(tests/test_runner.py); with a newer rule, the answer the new rule gives on the same
data. A record of version 1 (no raw samples) is decided from its points: each point's
median, CI and process count stand for samples drawn to match them (an approximation,
and the result says so), and its controls stand as recorded; what its plan found of the host is read back from the record by
the claim's ``recorded_facts``. Some records cannot be decided again: a structural claim
without its observations, or a claim whose plan has measured differently since
(``Claim.plan_changed``); they are kept as recorded, with the reason.
"""

from __future__ import annotations

import math
import random
import re
import statistics
from dataclasses import dataclass
from typing import Any, Mapping

from perflab.core.claim import Claim, Curve, Evidence, Samples
from perflab.core.params import BUDGETS
from perflab.core.record import Outcome, Series, Verdict
from perflab.decide.rules import exact_rule
from perflab.decide.summary import curve_of
from perflab.engine import judge
from perflab.userclaims.build import from_record

SAMPLES, POINTS, AS_RECORDED = "samples", "points", "as recorded"
REPORT_Z = 1.959964  # the points' CIs are 95% (engine/runner.py, REPORT_CONF)
PSEUDO_ROUNDS = 50  # rounds of stand-in samples for a point without its own


class NotDecidable(ValueError):
    """A record that cannot be decided again (the message says why)."""


@dataclass
class Rejudged:
    old: Verdict
    new: Verdict
    basis: str  # samples | points | as recorded
    note: str = ""

    @property
    def changed(self) -> bool:
        return (self.old.outcome, self.old.reason) != (self.new.outcome, self.new.reason)


def pseudo_samples(series: Series, rng: random.Random) -> Curve:
    """A series without its raw samples (record version 1) as stand-in samples, so that
    the rules' round-by-round statistics propagate the points' own intervals: at each x,
    PSEUDO_ROUNDS values at the normal quantiles of a lognormal with the point's median,
    spread so that their mean's standard error is the point's (its 95% CI on a log
    scale), shuffled (seeded) so that rounds do not align. A ratio of two points then
    gets the interval of error propagation from the two recorded intervals, an exponent
    that of its least-squares weights."""
    points: dict[Any, Samples] = {}
    z = [statistics.NormalDist().inv_cdf((i + 0.5) / PSEUDO_ROUNDS) for i in range(PSEUDO_ROUNDS)]
    for p in series.points:
        lo, hi = p.ci
        if p.median > 0 and lo > 0 and hi > 0:
            sigma = (math.log(hi) - math.log(lo)) / (2 * REPORT_Z) * math.sqrt(PSEUDO_ROUNDS)
            values = [p.median * math.exp(sigma * q) for q in z]
        else:
            values = [p.median] * PSEUDO_ROUNDS
        rng.shuffle(values)
        points[p.x] = Samples(values, list(range(PSEUDO_ROUNDS)))
    return Curve(series.name, series.x, series.unit, series.role, points)


def _from_rerun(rerun: str, flag: str) -> str | None:
    m = re.search(rf"--{flag}\s+(\S+)", rerun or "")
    return m.group(1) if m else None


def evidence_of(claim: Claim, v: Verdict) -> tuple[Evidence, str]:
    """The evidence a stored measured verdict was decided on at its last look, and its basis."""
    ev = v.evidence
    seed = ev.get("seed", _from_rerun(v.rerun, "seed") or 0)
    budget = BUDGETS.get(_from_rerun(v.rerun, "budget") or "default", BUDGETS["default"])
    rounds = ev.get("rounds", budget.looks[-1])
    conf = ev.get("conf_per_look", budget.conf_at_look())
    n_boot = ev.get("n_boot", budget.n_boot)
    rng = random.Random(f"{seed}:{v.claim}:points")
    curves = {s.name: curve_of(s) if s.has_samples else pseudo_samples(s, rng) for s in v.series}
    basis = SAMPLES if all(s.has_samples for s in v.series) else POINTS
    facts = ev.get("facts")
    if facts is None:
        facts = judge.as_json(claim.recorded_facts(v)) if claim.recorded_facts else {}
    return Evidence(curves, facts, conf, n_boot, judge.look_rng(seed, claim.id, rounds)), basis


def _aa_of(v: Verdict) -> tuple[str, Any] | None:
    """The A/A's (series, x): recorded, or read off the a/a:A series of an older record."""
    if v.evidence.get("aa"):
        return tuple(v.evidence["aa"])
    a = v.series_named(judge.AA_A)
    if not a or not a.points:
        return None
    return ("a/a", a.points[0].x)


def decide_again(claim: Claim, v: Verdict) -> Rejudged:
    """``v`` decided again under the claim's current rule (raises NotDecidable)."""
    new = Verdict.from_json(v.to_json(samples=True))
    if v.outcome in (Outcome.SKIPPED, Outcome.ERROR):
        return Rejudged(v, new, AS_RECORDED, f"{v.outcome.value} when it ran: nothing was decided")
    recorded = v.decision.rule_version if v.decision else 1
    changed = [why for version, why in (claim.plan_changed or {}).items() if recorded < version]
    if changed:
        raise NotDecidable(f"decided by rule version {recorded}; since then {'; '.join(changed)}")
    if claim.structural:
        observed = v.evidence.get("observed")
        if observed is None:
            raise NotDecidable("the record carries no observations (record version 1): its exact checks stand")
        checked = claim.judge(observed, claim.rule)
        decision = exact_rule(checked.checks, claim.rule)
        new.evidence["checks"] = [c.to_dict() for c in checked.checks]
        judge.settle_structural(new, decision, checked.controls, len(checked.checks))
        return Rejudged(v, new, SAMPLES)
    ev, basis = evidence_of(claim, v)
    note = "" if basis == SAMPLES else ("decided from the points' medians and CIs where the record has no raw "
                                        "samples (an approximate interval); its controls as recorded")
    new.evidence["rejudged"] = {"from_rule_version": recorded, "basis": basis, "old_outcome": v.outcome.value,
                                "old_reason": v.reason.value if v.reason else None}
    lacking = claim.skip(ev.facts) if claim.skip else None
    if lacking:
        new.outcome, new.reason, new.action, new.decision, new.controls = Outcome.SKIPPED, None, "", None, []
        new.summary = f"skipped: {lacking}"
        return Rejudged(v, new, basis, note)
    aa = _aa_of(v)
    if aa and aa[0] == "a/a":  # an older record: the A/A series are there, its spec name is not
        ev.series[judge.AA_A].points.setdefault(aa[1], Samples())
        aa = (judge.AA_A, aa[1])
    decision, controls = judge.evaluate(claim, ev, aa)
    if basis == POINTS:
        # the A/A's pairs back to back, and a probe's processes, are not in a record without
        # its samples: its controls stand as they were judged when it ran
        controls = list(v.controls)
    judge.settle(new, decision, controls)
    if claim.derive:
        new.evidence["derived"] = judge.derived(claim, ev)
    return Rejudged(v, new, basis, note)


def rejudge(verdicts: list[Verdict], claims: Mapping[str, Claim]) -> list[Rejudged]:
    """Each stored verdict decided again where it can be; otherwise kept, with the reason."""
    out = []
    for v in verdicts:
        claim = claims.get(v.claim) or from_record(v)  # a claim file's record carries its definition
        if claim is None:
            out.append(Rejudged(v, v, AS_RECORDED, "no such claim is registered here"))
            continue
        try:
            out.append(decide_again(claim, v))
        except NotDecidable as exc:
            out.append(Rejudged(v, v, AS_RECORDED, f"not decidable again: {exc}"))
    return out
