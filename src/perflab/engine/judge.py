"""From evidence to a verdict: the rule, the controls, the outcome and its reason.

One function decides a measured claim at a look (``evaluate``) and one turns a decision
and its controls into the verdict's outcome (``final_outcome``); the runner calls them on
fresh samples and engine/rejudge.py on a stored record, so a run decided again with the
same rule version gives the same answer (the bootstrap is seeded from the run's seed,
the claim and the look).
"""

from __future__ import annotations

import json
import random
from typing import Any, Mapping

from perflab.core.claim import Claim, Evidence
from perflab.core.record import ACTIONS, Control, Decision, Outcome, Reason, Verdict
from perflab.decide import controls as ctl

AA_A, AA_B = "a/a:A", "a/a:B"


def claim_rng(seed: int | str, claim_id: str, what: str) -> random.Random:
    """Each claim's randomness depends only on the run seed, its id and what it is for
    (the plan's order, the look, the summary), so deciding again reproduces it."""
    return random.Random(f"{seed}:{claim_id}:{what}")


def look_rng(seed: int | str, claim_id: str, rounds: int) -> random.Random:
    return claim_rng(seed, claim_id, f"look {rounds}")


def as_json(value: Any) -> Any:
    """What a value becomes once stored (tuples as lists, keys as strings): rules see
    facts and observations in this form live, exactly as when they decide again."""
    return json.loads(json.dumps(value))


def evaluate(claim: Claim, ev: Evidence, aa: tuple[str, Any] | None) -> tuple[Decision, list[Control]]:
    """The rule and the controls on the evidence so far (pure: no I/O)."""
    decision = claim.decide(ev, claim.rule)
    decision.rule_version = claim.rule.version
    controls: list[Control] = []
    if aa:
        a, b = (ev.series[name].points.get(aa[1], []) for name in (AA_A, AA_B))
        controls.append(ctl.aa_control(a, b, ev))
    if claim.positive:
        controls.append(claim.positive(ev))
    return decision, controls


def final_outcome(decision: Decision, controls: list[Control]) -> tuple[Outcome, str, Reason | None]:
    """The verdict's outcome, its explanation and, when inconclusive, its one reason. A
    failed or unevaluated control makes the verdict inconclusive (reason ``control``),
    never confident; it also takes precedence over the rule's own reason, since the
    measurement it judged is then in doubt."""
    failed = ctl.failed_controls(controls)
    notes = "; ".join(f"{c.name}: {c.why()}" for c in controls if c.passed is not True)
    if failed:
        if decision.outcome.decisive:
            why = f"the rule said {decision.outcome.value}, but control(s) {', '.join(failed)} did not pass"
            return Outcome.INCONCLUSIVE, f"{why} ({notes})" if notes else why, Reason.CONTROL
        if decision.outcome is Outcome.INCONCLUSIVE:
            why = "; ".join(r for r in (decision.reason, f"control(s) {', '.join(failed)} did not pass", notes) if r)
            return Outcome.INCONCLUSIVE, why, Reason.CONTROL
    if notes:
        return decision.outcome, "; ".join(r for r in (decision.reason, f"control {notes}") if r), decision.inconclusive
    return decision.outcome, decision.reason, decision.inconclusive


def summary_line(decision: Decision, outcome: Outcome, why: str, reason: Reason | None) -> str:
    if decision.value is None:
        core = f"{decision.quantity}: not measurable"
    else:
        ci = f" (CI {decision.ci[0]:.3g}..{decision.ci[1]:.3g})" if decision.ci else ""
        core = f"{decision.quantity} = {decision.value:.3g}{ci}"
    head = outcome.value + (f" ({reason.value})" if reason else "")
    text = f"{head}: {core}"
    return f"{text}; {why}" if why else text


def settle(v: Verdict, decision: Decision, controls: list[Control]) -> None:
    """Fill a verdict's outcome, reason, action and summary from the decision."""
    outcome, why, reason = final_outcome(decision, controls)
    v.decision, v.controls, v.outcome = decision, controls, outcome
    v.reason = reason if outcome is Outcome.INCONCLUSIVE else None
    v.action = ACTIONS[v.reason] if v.reason else ""
    v.summary = summary_line(decision, outcome, why, v.reason)
    if decision.evidence:
        v.evidence["rule"] = decision.evidence
    else:
        v.evidence.pop("rule", None)


def settle_structural(v: Verdict, decision: Decision, controls: list[Control], checks: int) -> None:
    outcome, why, reason = final_outcome(decision, controls)
    v.decision, v.controls, v.outcome = decision, controls, outcome
    v.reason = reason if outcome is Outcome.INCONCLUSIVE else None
    v.action = ACTIONS[v.reason] if v.reason else ""
    held = int(decision.value or 0)
    head = outcome.value + (f" ({v.reason.value})" if v.reason else "")
    v.summary = f"{head}: {held} of {checks} checks hold" + (f"; {why}" if why else "")


def derived(claim: Claim, ev: Evidence) -> Mapping[str, Any]:
    try:
        return as_json(claim.derive(ev))
    except (ValueError, KeyError, ZeroDivisionError) as exc:
        return {"unavailable": str(exc)}
