"""Statistics on a blocked design: every round of a run measures every point of the plan
once (the A/A control's pairs back to back), so a round is a block, and a quantity a
rule decides on is estimated once per round, then across rounds.

Why: a shared machine has slow stretches that last seconds to minutes, during which
every process runs slower (measured on the AMD guest: a dependent multiply chain 8%,
the asyncio loop 1.7x). Pooling all samples of a point across rounds mixes fast and slow
stretches, and comparing two sets taken at different moments compares stretches, not
conditions. Within one round both sides of a comparison share the moment: a ratio of two
points, or a growth exponent over the points of a sweep, cancels the stretch's common
factor. Per round:

* a ratio A/B is the ratio of the round's geometric means (pairs taken back to back, as
  the A/A's, give one ratio per pair);
* a growth exponent is the OLS slope of ln(cost) on ln(N) over the round's points in
  the top decade.

Across rounds the per-round values are summarised by Yuen's trimmed mean (20% trimmed
where at least 4 degrees of freedom remain: from 7 rounds on) with its Student-t interval (Yuen 1974; Wilcox, *Introduction to Robust Estimation and
Hypothesis Testing*, 4th ed., section 4.5): a round spoilt by one slow process moves it
little, and with few rounds the interval is honestly wide (at 3 rounds the t quantile is
6.2 for a 97.5% interval), so thin data cannot stop a claim early. tests/test_blocked.py
shows its coverage on synthetic data with a known answer.

Samples without rounds (a record of version 1 read back from its points' medians and
CIs) are paired by their order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from perflab.core.claim import Samples
from perflab.decide.stats import Estimate

TRIM = 0.2  # Yuen's trimming proportion (Wilcox's recommended default)


# ---- Student's t quantile (no SciPy: the regularized incomplete beta function) -----------

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function, by the modified Lentz method
    (Press et al., *Numerical Recipes*, 3rd ed., section 6.4)."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t (bisection on t_cdf; 1e-10 relative)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


# ---- across rounds -------------------------------------------------------------------------

MIN_TRIMMED_DF = 4  # trim only where the interval keeps at least this many degrees of freedom


def trimmed_each_end(n: int, trim: float = TRIM) -> int:
    """How many values Yuen's mean drops at each end of ``n``: ``trim * n`` (rounded down),
    but never so many that fewer than MIN_TRIMMED_DF degrees of freedom remain (n - 2g - 1).
    At 5 rounds (a quick run's last look) 20% trimming would drop one value at each end and
    leave 2 degrees of freedom: a 97.5% t quantile of 6.2 on a standard error inflated by
    1 / (1 - 2g/n), an interval more than twice as wide as the untrimmed one (4 degrees of
    freedom, t = 3.5), so that claims far from their thresholds came out noisy. Trimming
    guards against one spoilt round among many; among five it costs more than it saves."""
    return max(0, min(int(trim * n), (n - 1 - MIN_TRIMMED_DF) // 2))


def location_ci(values: Sequence[float], conf: float, trim: float = TRIM) -> Estimate:
    """Yuen's trimmed mean of per-round values with its two-sided ``conf`` t interval.
    Fewer than 2 values: ValueError (nothing to estimate a spread from)."""
    v = sorted(float(x) for x in values)
    n = len(v)
    if n < 2:
        raise ValueError(f"{n} round(s) with a value: at least 2 are needed for an interval")
    if not all(math.isfinite(x) for x in v):
        raise ValueError("a per-round value is not finite")
    g = trimmed_each_end(n, trim)
    kept = v[g:n - g]
    centre = math.fsum(kept) / len(kept)
    winsorized = [v[g]] * g + kept + [v[n - g - 1]] * g
    mw = math.fsum(winsorized) / n
    var_w = math.fsum((x - mw) ** 2 for x in winsorized) / (n - 1)
    se = math.sqrt(var_w) / ((1.0 - 2.0 * g / n) * math.sqrt(n))
    df = n - 2 * g - 1
    half = t_quantile(0.5 + conf / 2.0, df) * se if df >= 1 else math.inf
    return Estimate(centre, centre - half, centre + half, conf)


def exp_estimate(est: Estimate) -> Estimate:
    """An estimate made on a log scale, back on the ratio scale."""
    return Estimate(math.exp(est.value), math.exp(est.lo), math.exp(est.hi), est.conf)


# ---- within a round -------------------------------------------------------------------------

def _rounds(samples: Sequence[float]) -> list[Any]:
    """The round of each sample; samples without rounds count as their own, in order."""
    rounds = getattr(samples, "rounds", None)
    if rounds is None or len(rounds) != len(samples) or any(r is None for r in rounds):
        return list(range(len(samples)))
    return list(rounds)


def by_round(samples: Sequence[float]) -> dict[Any, list[float]]:
    out: dict[Any, list[float]] = {}
    for r, v in zip(_rounds(samples), samples):
        out.setdefault(r, []).append(float(v))
    return out


def _log_mean(values: Sequence[float]) -> float:
    if min(values) <= 0:
        raise ValueError(f"a sample is {min(values):g} <= 0: no logarithm")
    return math.fsum(math.log(v) for v in values) / len(values)


def pool(groups: Sequence[Sequence[float]]) -> list[float]:
    """Several points' samples as one, each keeping its round (a plateau's points: per
    round, their geometric mean)."""
    values, rounds = [], []
    for g in groups:
        values += list(g)
        rounds += _rounds(g) if getattr(g, "rounds", None) is not None else [None] * len(g)
    return Samples(values, rounds)


def paired_log_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """ln(A/B) per round (rounds where both sides were measured); where a round holds as
    many of each (the A/A's pairs, taken back to back), one per pair, in order."""
    ra, rb = by_round(a), by_round(b)
    out = []
    for r in ra.keys() & rb.keys():
        xa, xb = ra[r], rb[r]
        if len(xa) == len(xb) and len(xa) > 1:
            out += [_log_mean([p]) - _log_mean([q]) for p, q in zip(xa, xb)]
        else:
            out.append(_log_mean(xa) - _log_mean(xb))
    return out


def ratio_ci(a: Sequence[float], b: Sequence[float], conf: float) -> Estimate:
    """A/B on the blocked design: the trimmed mean of per-round log ratios, back on the
    ratio scale (a geometric ratio)."""
    return exp_estimate(location_ci(paired_log_ratios(a, b), conf))


def _slope(points: Sequence[tuple[float, float]]) -> float:
    n = len(points)
    mx = math.fsum(p[0] for p in points) / n
    my = math.fsum(p[1] for p in points) / n
    sxx = math.fsum((p[0] - mx) ** 2 for p in points)
    return math.fsum((p[0] - mx) * (p[1] - my) for p in points) / sxx


def round_slopes(points: Mapping[Any, Sequence[float]], xs: Sequence[float], min_points: int = 2) -> list[float]:
    """Per round, the OLS slope of ln(value) on ln(x) over ``xs`` (the round's geometric
    mean at each x), in rounds that measured at least ``min_points`` of them."""
    per_round: dict[Any, list[tuple[float, float]]] = {}
    for x in xs:
        for r, vals in by_round(points[x]).items():
            per_round.setdefault(r, []).append((math.log(x), _log_mean(vals)))
    return [_slope(pts) for pts in per_round.values() if len(pts) >= min_points and len({p[0] for p in pts}) >= 2]


def round_affine_slopes(points: Mapping[Any, Sequence[float]]) -> list[float]:
    """Per round, b of the OLS fit value = a + b*x over every x the round measured (at
    least 2 distinct x): the cost per unit of x, round by round."""
    per_round: dict[Any, list[tuple[float, float]]] = {}
    for x, values in points.items():
        for r, vals in by_round(values).items():
            per_round.setdefault(r, []).append((float(x), math.fsum(vals) / len(vals)))
    return [_slope(pts) for pts in per_round.values() if len({p[0] for p in pts}) >= 2]


def top_decade(xs: Sequence[float]) -> list[float]:
    """Sorted x >= max(xs)/10: where a fixed per-call cost no longer dominates (CLAIMS.md)."""
    cut = max(xs) / 10.0
    return sorted(x for x in xs if x >= cut)


def exponent_ci(points: Mapping[Any, Sequence[float]], conf: float) -> Estimate:
    """The growth exponent over the top decade, per round, across rounds."""
    xs = sorted(x for x in points if isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 and points[x])
    if not xs:
        raise ValueError("no positive x measured")
    top = top_decade(xs)
    if len(top) < 2:
        raise ValueError(f"fewer than 2 x values in the top decade (x >= {max(xs) / 10:g}); "
                         "measure more sizes near the largest")
    return location_ci(round_slopes(points, top), conf)
