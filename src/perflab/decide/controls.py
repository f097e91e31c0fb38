"""Controls: the A/A negative control every sampled claim runs, and the positive-control
helper for a workload of known growth. Pure, like the rules.

A/A: two interleaved sets of fresh processes of one configuration must agree within
a margin. It is an equivalence test (TOST, Schuirmann 1987: the 90% CI of the ratio
inside the margin), not a significance test: too few or too noisy samples give a wide
interval and fail, instead of passing for lack of power.
"""

from __future__ import annotations

from typing import Any, Sequence

from perflab.core.claim import Curve, Evidence
from perflab.core.record import Control
from perflab.core.rule import Region, Rule
from perflab.decide import fits, stats

_MARGIN = 0.10
AA_RULE = Rule(
    quantity="ratio of the 20% trimmed means of two identical sets of processes",
    short="A/A ratio",
    supported=Region(1 / (1 + _MARGIN), 1 + _MARGIN),
    reason="DESIGN.md, Controls: an A/A comparison must come out 'no difference'; a 10% margin with "
           "two one-sided tests at 5% each (the 90% interval) makes an underpowered pair fail",
    constants={"margin": _MARGIN, "conf": 0.90, "trim": 0.2},
)


def aa_control(a: Sequence[float], b: Sequence[float], ev: Evidence, rule: Rule = AA_RULE) -> Control:
    """Negative control: two interleaved sets of fresh processes, one configuration."""
    if len(a) < 2 or len(b) < 2:
        return Control("a/a", "negative", None, {"reason": "fewer than 2 samples per set"})
    # The 20% trimmed mean, not the median: per-process values on a VM can be bimodal
    # (seen here: epoll_wait at 415 or 487 ns depending on the process), and the median of
    # such a mixture jumps between modes; the trimmed mean is smooth in the mixing
    # proportion and still ignores single outliers.
    trim = rule["trim"]
    eq = stats.equivalence(a, b, margin=rule["margin"], conf=rule["conf"], n_boot=ev.n_boot, rng=ev.rng,
                           stat=lambda xs: stats.trimmed_mean(xs, trim))
    pooled = [*a, *b]
    low = stats.percentile(pooled, 10)
    details: dict[str, Any] = {
        "ratio": eq.ratio.value,
        "ci": [eq.ratio.lo, eq.ratio.hi],
        "conf": rule["conf"],
        "statistic": f"{trim:.0%} trimmed mean",
        "bounds": list(eq.bounds),
        "n": [len(a), len(b)],
        # how far apart one configuration's processes landed: 1.0 is a steady machine
        "spread_p90_over_p10": stats.percentile(pooled, 90) / low if low > 0 else None,
    }
    if not eq.equivalent:
        details["why"] = aa_failure(eq.ratio.lo, eq.ratio.hi, details["spread_p90_over_p10"])
    return Control("a/a", "negative", eq.equivalent, details)


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
        est = fits.growth_exponent(curve.points, conf=ev.conf, n_boot=ev.n_boot, rng=ev.rng)
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
