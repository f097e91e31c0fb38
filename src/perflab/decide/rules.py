"""Decision helpers: curves and a Rule in, a Decision out (CLAIMS.md, "How a verdict is
decided"). Pure: no I/O, all randomness from ``Evidence.rng``. Every helper takes its
thresholds from the Rule (core/rule.py); none has a number of its own.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from perflab.core.claim import Check, Curve, Evidence
from perflab.core.record import Decision, Outcome, Reason
from perflab.core.rule import Rule
from perflab.decide import blocked, stats


def decision(rule: Rule, est: stats.Estimate, quantity: str | None = None, rule_reason: str = "") -> Decision:
    """The generic interval rule (Rule.judge) on an estimate."""
    outcome, why = rule.judge(est.lo, est.hi)
    return Decision(outcome, quantity or rule.quantity, est.value, (est.lo, est.hi), rule.thresholds(),
                    reason=rule_reason, inconclusive=why, rule_version=rule.version)


def unmeasurable(rule: Rule, reason: str, quantity: str | None = None) -> Decision:
    """No estimate could be made (too few points, a zero median): inconclusive, noisy."""
    return Decision(Outcome.INCONCLUSIVE, quantity or rule.quantity, None, None, rule.thresholds(),
                    reason=reason, inconclusive=Reason.NOISY, rule_version=rule.version)


def exponent(curve: Curve, ev: Evidence) -> stats.Estimate:
    """The growth exponent over the top decade, per round, across rounds (decide/blocked.py)."""
    return blocked.exponent_ci(curve.points, ev.conf)


def exponent_rule(curve: Curve, rule: Rule, ev: Evidence, quantity: str | None = None) -> Decision:
    """Growth exponent over the top decade of the sweep, decided on its CI."""
    try:
        est = exponent(curve, ev)
    except ValueError as exc:
        return unmeasurable(rule, str(exc), quantity)
    return decision(rule, est, quantity)


def ratio_rule(numerator: Sequence[float], denominator: Sequence[float], rule: Rule, ev: Evidence,
               quantity: str | None = None) -> Decision:
    """numerator / denominator, per round (both sides measured in the same round), across
    rounds (decide/blocked.py), decided on its CI."""
    try:
        est = blocked.ratio_ci(numerator, denominator, ev.conf)
    except (ValueError, ZeroDivisionError) as exc:
        return unmeasurable(rule, str(exc), quantity)
    return decision(rule, est, quantity)


def median_rule(samples: Sequence[float], rule: Rule, ev: Evidence, quantity: str | None = None) -> Decision:
    """Decide on the bootstrap CI of the median of per-process samples."""
    if not samples:
        return unmeasurable(rule, "no samples", quantity)
    return decision(rule, stats.bootstrap_ci(samples, conf=ev.conf, n_boot=ev.n_boot, rng=ev.rng), quantity)


def part_summary(d: Decision) -> dict[str, Any]:
    """A part of a rule of parts as its claim's decision keeps it under ``thresholds``."""
    return {**d.thresholds, "value": d.value, "ci": list(d.ci) if d.ci else None, "outcome": d.outcome.value,
            "inconclusive": d.inconclusive.value if d.inconclusive else None}


def combined_reason(decisions: Sequence[Decision]) -> Reason:
    """One reason for a rule of parts that is inconclusive: ``noisy`` if any undecided part
    could still go either way, else ``between``."""
    undecided = [d.inconclusive for d in decisions if d.outcome is Outcome.INCONCLUSIVE]
    return Reason.BETWEEN if undecided and all(r is Reason.BETWEEN for r in undecided) else Reason.NOISY


def all_of(decisions: list[Decision], rule: Rule, quantity: str | None = None, lead: int = 0) -> Decision:
    """Supported if every part supports, refuted if any part refutes, else inconclusive.
    The claim's value and CI are those of part ``lead`` (the headline quantity)."""
    outcomes = [d.outcome for d in decisions]
    if Outcome.REFUTED in outcomes:
        out, why = Outcome.REFUTED, None
    elif all(o is Outcome.SUPPORTED for o in outcomes):
        out, why = Outcome.SUPPORTED, None
    else:
        out, why = Outcome.INCONCLUSIVE, combined_reason(decisions)
    head = decisions[lead]
    return Decision(
        out,
        quantity or rule.quantity,
        head.value,
        head.ci,
        {**rule.thresholds(), **{d.quantity: part_summary(d) for d in decisions}},
        reason="; ".join(d.reason for d in decisions if d.reason),
        inconclusive=why,
        rule_version=rule.version,
        evidence=_merged_evidence(decisions),
    )


def _merged_evidence(decisions: list[Decision]) -> dict[str, Any]:
    """The parts' evidence in one dict; a key two parts use is kept per part."""
    out: dict[str, Any] = {}
    for d in decisions:
        for k, v in d.evidence.items():
            out[f"{d.quantity}: {k}" if any(k in e.evidence for e in decisions if e is not d) else k] = v
    return out


def exact_rule(checks: list[Check], rule: Rule) -> Decision:
    """Structural claims (CLAIMS.md): supported when every check holds, refuted when one
    contradicts; inconclusive when none contradicts but some did not decide. Its reason:
    ``capped`` when a check could not be evaluated here (the host could not give it what
    it needs; each check's note says what, e.g. root), else the undecided checks' own
    (``noisy`` before ``between``)."""
    held = sum(1 for c in checks if c.holds is True)
    failed = [c.name for c in checks if c.holds is False]
    unknown = [c for c in checks if c.holds is None]
    why = None
    if failed:
        out, reason = Outcome.REFUTED, "contradicted by: " + ", ".join(failed)
    elif unknown or not checks:
        reasons = {Reason(c.inconclusive) if c.inconclusive else Reason.CAPPED for c in unknown} or {Reason.CAPPED}
        out = Outcome.INCONCLUSIVE
        why = next(r for r in (Reason.CAPPED, Reason.CONTROL, Reason.NOISY, Reason.BETWEEN) if r in reasons)
        reason = "not evaluated here: " + ("; ".join(f"{c.name} ({c.note})" if c.note else c.name for c in unknown)
                                           or "no checks")
    else:
        out, reason = Outcome.SUPPORTED, ""
    return Decision(out, f"{rule.quantity} holding", float(held), None,
                    {**rule.thresholds(), "checks": len(checks)}, reason=reason, inconclusive=why,
                    rule_version=rule.version)


def capped(d: Decision, cap: Mapping[str, Any] | None, block: Outcome, undecided_too: bool = False) -> Decision:
    """A plan the host cut short (``cap``: the plan's facts' ``capped``, naming the limit,
    its value and why) may not give the outcome the cut could fake: that outcome becomes
    inconclusive, reason ``capped`` (CLAIMS.md: "a capped plan may support a claim but never
    refute it when the cap could hide the effect"). ``undecided_too``: an inconclusive
    answer is then the cap's doing as well (the plan never reached what decides)."""
    if cap and undecided_too and d.outcome is Outcome.INCONCLUSIVE:
        d.inconclusive = Reason.CAPPED
        d.reason = "; ".join(r for r in (d.reason, f"capped: {cap.get('limit')} = {cap.get('value')} "
                                         f"({cap.get('why')})") if r)
        return d
    if not cap or d.outcome is not block:
        return d
    d.reason = "; ".join(r for r in (d.reason, f"the rule alone said {block.value}, but the plan was capped: "
                                     f"{cap.get('limit')} = {cap.get('value')} ({cap.get('why')})") if r)
    d.outcome, d.inconclusive = Outcome.INCONCLUSIVE, Reason.CAPPED
    return d
