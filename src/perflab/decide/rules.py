"""Pure decision rules: series in, Decision or Control out (CLAIMS.md, "How a verdict is
decided"). Each rule can return every outcome; tests/test_verdict.py shows it on
synthetic series.
"""

from __future__ import annotations

import math
import random
from typing import Any, Mapping

from perflab.decide import stats
from perflab.core.model import Control, Decision, Outcome, Series

INF = math.inf
AA_MARGIN = 0.10  # A/A: the two sets' medians must agree within 10% (CI of their ratio)
AA_CONF = 0.90  # two one-sided tests at 5% each (TOST) use the 90% interval


def region(lo: float = -INF, hi: float = INF) -> tuple[float, float]:
    return (lo, hi)


def fmt_region(r: tuple[float, float]) -> str:
    lo, hi = r
    if lo == -INF:
        return f"< {hi:g}"
    if hi == INF:
        return f">= {lo:g}"
    return f"[{lo:g}, {hi:g}]"


def outcome_of(est: stats.Estimate, supported: tuple[float, float], refuted: tuple[float, float]) -> Outcome:
    return Outcome(stats.decide_interval(est, supported, refuted))


def exponent(series: Series, conf: float, rng: random.Random, n_boot: int) -> stats.Estimate:
    return stats.growth_exponent(series.points, conf=conf, n_boot=n_boot, rng=rng)


def exponent_rule(
    series: Series,
    supported: tuple[float, float],
    refuted: tuple[float, float],
    conf: float,
    rng: random.Random,
    n_boot: int,
) -> Decision:
    """Growth exponent over the top decade of the sweep, decided on its CI."""
    quantity = f"growth exponent of {series.name} over the top decade of {series.x}"
    thresholds = {"supported": fmt_region(supported), "refuted": fmt_region(refuted)}
    try:
        est = exponent(series, conf, rng, n_boot)
    except ValueError as exc:
        return Decision(Outcome.INCONCLUSIVE, quantity, None, None, thresholds, reason=str(exc))
    return Decision(outcome_of(est, supported, refuted), quantity, est.value, (est.lo, est.hi), thresholds)


def ratio_rule(
    numerator: list[float],
    denominator: list[float],
    quantity: str,
    supported: tuple[float, float],
    refuted: tuple[float, float],
    conf: float,
    rng: random.Random,
    n_boot: int,
) -> Decision:
    thresholds = {"supported": fmt_region(supported), "refuted": fmt_region(refuted)}
    try:
        est = stats.ratio_of_medians(numerator, denominator, conf=conf, n_boot=n_boot, rng=rng)
    except (ValueError, ZeroDivisionError) as exc:
        return Decision(Outcome.INCONCLUSIVE, quantity, None, None, thresholds, reason=str(exc))
    return Decision(outcome_of(est, supported, refuted), quantity, est.value, (est.lo, est.hi), thresholds)


def median_rule(
    samples: list[float],
    quantity: str,
    supported: tuple[float, float],
    refuted: tuple[float, float],
    conf: float,
    rng: random.Random,
    n_boot: int,
) -> Decision:
    """Decide on the bootstrap CI of the median of per-process samples."""
    thresholds = {"supported": fmt_region(supported), "refuted": fmt_region(refuted)}
    if not samples:
        return Decision(Outcome.INCONCLUSIVE, quantity, None, None, thresholds, reason="no samples")
    est = stats.bootstrap_ci(samples, conf=conf, n_boot=n_boot, rng=rng)
    return Decision(outcome_of(est, supported, refuted), quantity, est.value, (est.lo, est.hi), thresholds)


def all_of(decisions: list[Decision], quantity: str) -> Decision:
    """Supported if every part supports, refuted if any part refutes, else inconclusive."""
    outcomes = [d.outcome for d in decisions]
    if Outcome.REFUTED in outcomes:
        out = Outcome.REFUTED
    elif all(o is Outcome.SUPPORTED for o in outcomes):
        out = Outcome.SUPPORTED
    else:
        out = Outcome.INCONCLUSIVE
    first = decisions[0]
    return Decision(
        out,
        quantity,
        first.value,
        first.ci,
        {d.quantity: {**d.thresholds, "value": d.value, "ci": list(d.ci) if d.ci else None, "outcome": d.outcome.value} for d in decisions},
        reason="; ".join(d.reason for d in decisions if d.reason),
        evidence=_merged_evidence(decisions),
    )


def _merged_evidence(decisions: list[Decision]) -> dict[str, Any]:
    """The parts' evidence in one dict; a key two parts use is kept per part."""
    out: dict[str, Any] = {}
    for d in decisions:
        for k, v in d.evidence.items():
            out[f"{d.quantity}: {k}" if any(k in e.evidence for e in decisions if e is not d) else k] = v
    return out


EXACT_THRESHOLDS = {"supported": "every check holds", "refuted": "any check contradicts the claim"}


def exact_rule(checks: list, quantity: str = "exact checks") -> Decision:
    """Structural claims (CLAIMS.md): supported when every check holds, refuted when one
    contradicts, inconclusive when none contradicts but some could not be evaluated."""
    held = sum(1 for c in checks if c.holds is True)
    failed = [c.name for c in checks if c.holds is False]
    unknown = [c.name for c in checks if c.holds is None]
    if failed:
        out, reason = Outcome.REFUTED, "contradicted by: " + ", ".join(failed)
    elif unknown or not checks:
        out, reason = Outcome.INCONCLUSIVE, "not evaluated here: " + (", ".join(unknown) or "no checks")
    else:
        out, reason = Outcome.SUPPORTED, ""
    return Decision(out, f"{quantity} holding", float(held), None,
                    {**EXACT_THRESHOLDS, "checks": len(checks)}, reason=reason)


def aa_control(a: list[float], b: list[float], rng: random.Random, n_boot: int, margin: float = AA_MARGIN) -> Control:
    """Negative control: two interleaved sets of fresh processes, one configuration.

    An equivalence test with a margin, not a significance test: too few or too noisy
    samples give a wide interval and fail, instead of passing for lack of power.
    """
    if len(a) < 2 or len(b) < 2:
        return Control("a/a", "negative", None, {"reason": "fewer than 2 samples per set"})
    # The 20% trimmed mean, not the median: per-process values on a VM can be bimodal
    # (seen here: epoll_wait at 415 or 487 ns depending on the process), and the median of
    # such a mixture jumps between modes; the trimmed mean is smooth in the mixing
    # proportion and still ignores single outliers.
    eq = stats.equivalence(a, b, margin=margin, conf=AA_CONF, n_boot=n_boot, rng=rng, stat=stats.trimmed_mean)
    pooled = [*a, *b]
    low = stats.percentile(pooled, 10)
    details: dict[str, Any] = {
        "ratio": eq.ratio.value,
        "ci": [eq.ratio.lo, eq.ratio.hi],
        "conf": AA_CONF,
        "statistic": "20% trimmed mean",
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


def exponent_control(
    series: Series, name: str, expected: tuple[float, float], conf: float, rng: random.Random, n_boot: int
) -> Control:
    """Positive control: a workload of known growth must show that growth."""
    try:
        est = exponent(series, conf, rng, n_boot)
    except ValueError as exc:
        return Control(name, "positive", None, {"reason": str(exc)})
    passed = expected[0] <= est.lo and est.hi <= expected[1]
    return Control(
        name,
        "positive",
        passed,
        {"series": series.name, "exponent": est.value, "ci": [est.lo, est.hi], "expected": fmt_region(expected)},
    )


def controls_ok(controls: list[Control]) -> bool:
    return all(c.passed is True for c in controls)


def failed_controls(controls: list[Control]) -> list[str]:
    return [c.name for c in controls if c.passed is not True]


def point_stats(series: Series, conf: float, rng: random.Random, n_boot: int) -> dict[str, Any]:
    """Series as reported: per x, the median of its samples and a bootstrap CI."""
    pts = []
    for x in sorted(series.points, key=lambda v: (v is None, v)):
        samples = series.points[x]
        est = stats.bootstrap_ci(samples, conf=conf, n_boot=n_boot, rng=rng)
        pts.append({"x": x, "median": est.value, "ci": [est.lo, est.hi], "n": len(samples)})
    out: dict[str, Any] = {"name": series.name, "x": series.x, "unit": series.unit, "role": series.role, "points": pts}
    numeric = {x: v for x, v in series.points.items() if isinstance(x, (int, float)) and x > 0}
    if len(numeric) >= 3:
        try:
            fit = stats.affine_fit(numeric, conf=conf, n_boot=n_boot, rng=rng)
            out["affine_fit"] = fit.to_dict()
        except (ValueError, ZeroDivisionError):
            pass
        try:
            out["growth_exponent"] = stats.growth_exponent(numeric, conf=conf, n_boot=n_boot, rng=rng).to_dict()
        except ValueError:
            pass
    return out


def mapping(series: list[Series]) -> Mapping[str, Series]:
    return {s.name: s for s in series}
