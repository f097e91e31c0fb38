"""Controls: the A/A negative control every sampled claim runs, and the positive-control
helper for a workload of known growth. Pure, like the rules.

A/A: two sets of fresh processes of one configuration, in pairs back to back, must
agree within a margin. It is an equivalence test (TOST, Schuirmann 1987: the 1 - 2*alpha
CI of the ratio inside the margin), not a significance test: too few or too noisy
samples give a wide interval and fail, instead of passing for lack of power.
"""

from __future__ import annotations

from typing import Any, Sequence

from perflab.core.claim import Curve, Evidence
from perflab.core.record import Control
from perflab.core.rule import Region, Rule
from perflab.decide import blocked, stats

_MARGIN = 0.10
AA_RULE = Rule(
    quantity="ratio of the 20% trimmed means of two identical sets of processes",
    short="A/A ratio",
    supported=Region(1 / (1 + _MARGIN), 1 + _MARGIN),
    version=2,
    reason="DESIGN.md, Controls: an A/A comparison must come out 'no difference'; a 10% margin with "
           "two one-sided tests makes an underpowered pair fail. Version 2 (issue 11: 'control what "
           "decides'): judged on the blocked design with the decisions' statistic, at each look's error rate",
    constants={"margin": _MARGIN, "min_pairs": 5},
)


def aa_control(a: Sequence[float], b: Sequence[float], ev: Evidence, rule: Rule = AA_RULE) -> Control:
    """Negative control: two sets of fresh processes of one configuration, taken in pairs
    back to back in every round. The per-pair log ratios are summarised like every
    decision quantity (decide/blocked.py: the same blocked design, the same statistic),
    and the two one-sided tests use the interval of the look's error rate, so looking
    several times is paid for here too: 1 - 2(1 - conf)."""
    ratios = blocked.paired_log_ratios(a, b)
    if len(ratios) < rule["min_pairs"]:
        return Control("a/a", "negative", None, {"reason": f"{len(ratios)} pair(s): fewer than {rule['min_pairs']:g}"})
    conf = 2.0 * ev.conf - 1.0
    est = blocked.exp_estimate(blocked.location_ci(ratios, conf))
    assert rule.supported is not None
    passed = rule.supported.holds(est.lo, est.hi)
    pooled = [*a, *b]
    low = stats.percentile(pooled, 10)
    details: dict[str, Any] = {
        "ratio": est.value,
        "ci": [est.lo, est.hi],
        "conf": conf,
        "statistic": "20% trimmed mean of per-pair log ratios (pairs back to back)",
        "bounds": [rule.supported.lo, rule.supported.hi],
        "n": [len(a), len(b)],
        # how far apart one configuration's processes landed: 1.0 is a steady machine
        "spread_p90_over_p10": stats.percentile(pooled, 90) / low if low > 0 else None,
    }
    if not passed:
        details["why"] = aa_failure(est.lo, est.hi, details["spread_p90_over_p10"])
    return Control("a/a", "negative", passed, details)


def aa_failure(lo: float, hi: float, spread: float | None) -> str:
    """Why an A/A failed, in words: noise (the interval straddles 1 but is wider than the
    margin) or two sets that really differ (the interval excludes 1: drift or an order
    effect between identical measurements)."""
    spread_text = f"; its processes spread {spread:.2f}x (p90/p10)" if spread else ""
    if lo <= 1.0 <= hi:
        return f"too noisy to show two identical sets agree within the margin{spread_text}: rerun on a quieter machine"
    return f"two identical sets differ (the CI excludes 1){spread_text}: drift between them, or chance"


def exponent_control(curve: Curve, name: str, rule: Rule, ev: Evidence) -> Control:
    """Positive control: a workload of known growth must show it (its exponent's CI inside
    ``rule.supported``); a probe that cannot see growth fails."""
    try:
        est = blocked.exponent_ci(curve.points, ev.conf)
    except ValueError as exc:
        return Control(name, "positive", None, {"reason": str(exc)})
    assert rule.supported is not None
    passed = rule.supported.holds(est.lo, est.hi)
    detail: dict[str, Any] = {"series": curve.name, "exponent": est.value, "ci": [est.lo, est.hi],
                              "expected": rule.supported.text()}
    if not passed:
        detail["why"] = f"a workload known to grow with exponent {rule.supported.text()} showed {est.value:.3g}"
    return Control(name, "positive", passed, detail)


def controls_ok(controls: Sequence[Control]) -> bool:
    return all(c.passed is True for c in controls)


def failed_controls(controls: Sequence[Control]) -> list[str]:
    return [c.name for c in controls if c.passed is not True]
