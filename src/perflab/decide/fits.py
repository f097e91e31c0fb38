"""Fitting a cost against the swept N: the growth exponent over the top decade and the
affine fit over every point (CLAIMS.md, "Growth exponent").

* Growth exponents are OLS slopes of ln(cost) on ln(N) over the top decade of N,
  where a constant per-call overhead no longer dominates. Their intervals come from
  a stratified bootstrap: the samples at each N are resampled independently (each
  sample is one fresh process, so samples at one N are i.i.d.; different N are not
  exchangeable), the per-N medians and the slope are recomputed (Efron & Tibshirani,
  *An Introduction to the Bootstrap*, 1993, ch. 13).
* cost = a + b*N by OLS on the per-N medians over every N, intervals likewise.

Pure standard library; randomness through an explicit ``random.Random``.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from perflab.decide.stats import (Estimate, check_boot, check_skipped, floats, percentile_interval,
                                  make_rng)


@dataclass(frozen=True)
class AffineFit:
    """cost = a + b*N: intercept a, slope b, and r2 of the fit on per-N medians."""

    a: Estimate
    b: Estimate
    r2: float

    def to_dict(self) -> dict:
        return {"a": self.a.to_dict(), "b": self.b.to_dict(), "r2": self.r2}



def _ols(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Ordinary least squares y = a + b*x; returns (a, b). Caller ensures >= 2 distinct x."""
    n = len(xs)
    mx = math.fsum(xs) / n
    my = math.fsum(ys) / n
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys))
    b = sxy / sxx
    return my - b * mx, b


def _strata(points: Mapping[float, Sequence[float]]) -> dict[float, list[float]]:
    """Validate points (x -> samples): positive finite x, non-empty finite samples; sorted by x."""
    if not points:
        raise ValueError("points: no x values")
    out: dict[float, list[float]] = {}
    for x in sorted(points):
        fx = float(x)
        if not math.isfinite(fx) or fx <= 0:
            raise ValueError(f"points: x must be finite and > 0, got {x}")
        out[fx] = floats(points[x], f"samples at x={x}")
    return out



# --------------------------------------------------------------------------- scaling


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """OLS slope of ln y on ln x (the power-law exponent k in y ~ x**k).

    ValueError if lengths differ, any x or y <= 0, or fewer than 2 distinct x.
    """
    fx = floats(xs, "xs")
    fy = floats(ys, "ys")
    if len(fx) != len(fy):
        raise ValueError(f"xs and ys differ in length ({len(fx)} vs {len(fy)})")
    if min(fx) <= 0 or min(fy) <= 0:
        raise ValueError("loglog_slope: every x and y must be > 0")
    if len(set(fx)) < 2:
        raise ValueError("loglog_slope: need at least 2 distinct x values")
    return _ols([math.log(x) for x in fx], [math.log(y) for y in fy])[1]


def top_decade(xs: Sequence[float]) -> list[float]:
    """Sorted distinct x with x >= max(xs)/10: the decade where asymptotics show."""
    v = floats(xs, "xs")
    if min(v) <= 0:
        raise ValueError("top_decade: every x must be > 0")
    cut = max(v) / 10.0
    return sorted({x for x in v if x >= cut})


def growth_exponent(
    points: Mapping[float, Sequence[float]],
    conf: float = 0.95,
    n_boot: int = 1000,
    rng: random.Random | None = None,
) -> Estimate:
    """Exponent k of cost ~ N**k: log-log OLS slope of per-N medians over the top decade.

    points maps N -> raw samples at that N (one sample = one fresh process). The
    interval is a stratified percentile bootstrap (Efron & Tibshirani): samples are
    resampled within each N independently and the slope recomputed. Replicates with a
    median <= 0 are skipped; more than 5% skipped raises ValueError.
    """
    check_boot(conf, n_boot)
    strata = _strata(points)
    xs = top_decade(list(strata))
    if len(xs) < 2:
        raise ValueError(
            f"growth_exponent: fewer than 2 x values in the top decade "
            f"(x >= {max(strata) / 10:g}); measure more sizes near the largest"
        )
    groups = [strata[x] for x in xs]
    meds = [statistics.median(g) for g in groups]
    for x, m in zip(xs, meds):
        if m <= 0:
            raise ValueError(f"growth_exponent: median at x={x:g} is {m:g} <= 0; log undefined")
    lx = [math.log(x) for x in xs]
    value = _ols(lx, [math.log(m) for m in meds])[1]

    r = make_rng(rng)
    reps: list[float] = []
    skipped = 0
    med, log, choices = statistics.median, math.log, r.choices
    for _ in range(n_boot):
        bm = [med(choices(g, k=len(g))) for g in groups]
        if min(bm) <= 0:
            skipped += 1
            continue
        reps.append(_ols(lx, [log(m) for m in bm])[1])
    check_skipped(skipped, n_boot, "a resampled median <= 0")
    lo, hi = percentile_interval(reps, conf)
    return Estimate(value, lo, hi, conf)


def affine_fit(
    points: Mapping[float, Sequence[float]],
    conf: float = 0.95,
    n_boot: int = 1000,
    rng: random.Random | None = None,
) -> AffineFit:
    """cost = a + b*N by OLS on the per-N medians over ALL N.

    a is the fixed overhead, b the marginal cost per unit of N; r2 is that of the
    point fit. Intervals: stratified percentile bootstrap, resampling within each N.
    """
    check_boot(conf, n_boot)
    strata = _strata(points)
    if len(strata) < 2:
        raise ValueError("affine_fit: need at least 2 distinct x values")
    xs = list(strata)
    groups = list(strata.values())
    meds = [statistics.median(g) for g in groups]
    a, b = _ols(xs, meds)
    my = math.fsum(meds) / len(meds)
    ss_tot = math.fsum((m - my) ** 2 for m in meds)
    ss_res = math.fsum((m - (a + b * x)) ** 2 for x, m in zip(xs, meds))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0

    r = make_rng(rng)
    reps_a: list[float] = []
    reps_b: list[float] = []
    med, choices = statistics.median, r.choices
    for _ in range(n_boot):
        ra, rb = _ols(xs, [med(choices(g, k=len(g))) for g in groups])
        reps_a.append(ra)
        reps_b.append(rb)
    a_lo, a_hi = percentile_interval(reps_a, conf)
    b_lo, b_hi = percentile_interval(reps_b, conf)
    return AffineFit(Estimate(a, a_lo, a_hi, conf), Estimate(b, b_lo, b_hi, conf), r2)


