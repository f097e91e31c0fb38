"""Robust statistics for perflab: medians, bootstrap intervals, growth exponents.

Pure standard library. All randomness goes through an explicit ``random.Random``;
``rng=None`` means a fresh ``random.Random(DEFAULT_SEED)``, so every result is
reproducible.

Methods:

* Location and spread are the median and the (unscaled) median absolute deviation,
  which resist the occasional outlier that timing measurements produce.
* Confidence intervals are percentile bootstrap intervals (Efron & Tibshirani,
  *An Introduction to the Bootstrap*, 1993, ch. 13): resample with replacement,
  recompute the statistic, take the (1-conf)/2 and (1+conf)/2 percentiles.
* Growth exponents are OLS slopes of ln(cost) on ln(N) over the top decade of N,
  where a constant per-call overhead no longer dominates. Their intervals come from
  a stratified bootstrap: the samples at each N are resampled independently (each
  sample is one fresh process, so samples at one N are i.i.d.; different N are not
  exchangeable), the per-N medians and the slope are recomputed.
* Equivalence is TOST-style (Schuirmann 1987): two one-sided tests at level alpha
  are equivalent to requiring the (1 - 2*alpha) confidence interval to lie wholly
  inside the equivalence bounds; hence conf=0.90 for alpha=0.05.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_SEED",
    "MAX_SKIPPED_FRACTION",
    "MIN_EQUIVALENCE_SAMPLES",
    "Estimate",
    "AffineFit",
    "Equivalence",
    "median",
    "mad",
    "percentile",
    "bootstrap_ci",
    "loglog_slope",
    "top_decade",
    "growth_exponent",
    "affine_fit",
    "ratio_of_medians",
    "equivalence",
    "decide_interval",
]

DEFAULT_SEED = 0
"""Seed of the ``random.Random`` used when a function is given ``rng=None``."""

MAX_SKIPPED_FRACTION = 0.05
"""Bootstrap replicates that are undefined (a median <= 0) are skipped; more than this
fraction skipped means the estimate is not trustworthy and raises ValueError."""

MIN_EQUIVALENCE_SAMPLES = 5
"""Fewest samples per side for ``equivalence`` to declare equivalence at all. The
percentile bootstrap of a median under-covers badly with tiny n (with one sample the
interval is a single point), so a tiny comparison is underpowered by definition."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a two-sided confidence interval [lo, hi] at level conf."""

    value: float
    lo: float
    hi: float
    conf: float

    def to_dict(self) -> dict:
        return {"value": self.value, "ci": [self.lo, self.hi], "conf": self.conf}


@dataclass(frozen=True)
class AffineFit:
    """cost = a + b*N: intercept a, slope b, and r2 of the fit on per-N medians."""

    a: Estimate
    b: Estimate
    r2: float

    def to_dict(self) -> dict:
        return {"a": self.a.to_dict(), "b": self.b.to_dict(), "r2": self.r2}


@dataclass(frozen=True)
class Equivalence:
    """Outcome of an equivalence test on median(a)/median(b) against bounds."""

    ratio: Estimate
    margin: float
    bounds: tuple[float, float]
    equivalent: bool

    def to_dict(self) -> dict:
        return {
            "ratio": self.ratio.to_dict(),
            "margin": self.margin,
            "bounds": list(self.bounds),
            "equivalent": self.equivalent,
        }


# --------------------------------------------------------------------------- helpers


def _floats(xs: Sequence[float], what: str = "samples") -> list[float]:
    """Copy to a list of finite floats; ValueError on empty or non-finite input."""
    out = [float(x) for x in xs]
    if not out:
        raise ValueError(f"{what}: empty sequence")
    if not all(math.isfinite(x) for x in out):
        raise ValueError(f"{what}: non-finite value (nan or inf)")
    return out


def _check_boot(conf: float, n_boot: int) -> None:
    if not 0.0 < conf < 1.0:
        raise ValueError(f"conf must be in (0, 1), got {conf}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")


def _rng(rng: random.Random | None) -> random.Random:
    return random.Random(DEFAULT_SEED) if rng is None else rng


def _percentile_sorted(s: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (Hyndman & Fan type 7, numpy default)."""
    h = (len(s) - 1) * q / 100.0
    i = math.floor(h)
    if i + 1 >= len(s):
        return s[-1]
    return s[i] + (h - i) * (s[i + 1] - s[i])


def _percentile_interval(reps: list[float], conf: float) -> tuple[float, float]:
    """Efron & Tibshirani percentile interval from bootstrap replicates."""
    reps.sort()
    alpha = (1.0 - conf) / 2.0
    return _percentile_sorted(reps, 100.0 * alpha), _percentile_sorted(reps, 100.0 * (1.0 - alpha))


def _check_skipped(skipped: int, n_boot: int, why: str) -> None:
    if skipped > MAX_SKIPPED_FRACTION * n_boot:
        raise ValueError(
            f"{skipped} of {n_boot} bootstrap replicates skipped ({why}); "
            f"more than {MAX_SKIPPED_FRACTION:.0%}, the interval is not trustworthy"
        )


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
        out[fx] = _floats(points[x], f"samples at x={x}")
    return out


# --------------------------------------------------------------------------- basics


def median(xs: Sequence[float]) -> float:
    """Median (mean of the two middle values for even n). ValueError on empty."""
    return float(statistics.median(_floats(xs)))


def mad(xs: Sequence[float]) -> float:
    """Median absolute deviation from the median, unscaled (no 1.4826 factor)."""
    v = _floats(xs)
    m = statistics.median(v)
    return float(statistics.median([abs(x - m) for x in v]))


def percentile(xs: Sequence[float], q: float) -> float:
    """q-th percentile, q in [0, 100], by linear interpolation (Hyndman & Fan type 7)."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    return _percentile_sorted(sorted(_floats(xs)), q)


def bootstrap_ci(
    samples: Sequence[float],
    stat: Callable[[Sequence[float]], float] = median,
    conf: float = 0.95,
    n_boot: int = 1000,
    rng: random.Random | None = None,
) -> Estimate:
    """stat(samples) with an Efron & Tibshirani percentile bootstrap interval.

    With one sample there is nothing to resample: lo = hi = value.
    """
    _check_boot(conf, n_boot)
    v = _floats(samples)
    value = float(stat(v))
    if len(v) == 1:
        return Estimate(value, value, value, conf)
    r = _rng(rng)
    n = len(v)
    # statistics.median directly in the loop: the input is already validated.
    f = statistics.median if stat is median else stat
    reps = [float(f(r.choices(v, k=n))) for _ in range(n_boot)]
    lo, hi = _percentile_interval(reps, conf)
    return Estimate(value, lo, hi, conf)


# --------------------------------------------------------------------------- scaling


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """OLS slope of ln y on ln x (the power-law exponent k in y ~ x**k).

    ValueError if lengths differ, any x or y <= 0, or fewer than 2 distinct x.
    """
    fx = _floats(xs, "xs")
    fy = _floats(ys, "ys")
    if len(fx) != len(fy):
        raise ValueError(f"xs and ys differ in length ({len(fx)} vs {len(fy)})")
    if min(fx) <= 0 or min(fy) <= 0:
        raise ValueError("loglog_slope: every x and y must be > 0")
    if len(set(fx)) < 2:
        raise ValueError("loglog_slope: need at least 2 distinct x values")
    return _ols([math.log(x) for x in fx], [math.log(y) for y in fy])[1]


def top_decade(xs: Sequence[float]) -> list[float]:
    """Sorted distinct x with x >= max(xs)/10: the decade where asymptotics show."""
    v = _floats(xs, "xs")
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
    _check_boot(conf, n_boot)
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

    r = _rng(rng)
    reps: list[float] = []
    skipped = 0
    med, log, choices = statistics.median, math.log, r.choices
    for _ in range(n_boot):
        bm = [med(choices(g, k=len(g))) for g in groups]
        if min(bm) <= 0:
            skipped += 1
            continue
        reps.append(_ols(lx, [log(m) for m in bm])[1])
    _check_skipped(skipped, n_boot, "a resampled median <= 0")
    lo, hi = _percentile_interval(reps, conf)
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
    _check_boot(conf, n_boot)
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

    r = _rng(rng)
    reps_a: list[float] = []
    reps_b: list[float] = []
    med, choices = statistics.median, r.choices
    for _ in range(n_boot):
        ra, rb = _ols(xs, [med(choices(g, k=len(g))) for g in groups])
        reps_a.append(ra)
        reps_b.append(rb)
    a_lo, a_hi = _percentile_interval(reps_a, conf)
    b_lo, b_hi = _percentile_interval(reps_b, conf)
    return AffineFit(Estimate(a, a_lo, a_hi, conf), Estimate(b, b_lo, b_hi, conf), r2)


# --------------------------------------------------------------------------- comparisons


def trimmed_mean(xs: Sequence[float], proportion: float = 0.2) -> float:
    """Mean after dropping ``proportion`` of the samples at each end (Wilcox, Introduction
    to Robust Estimation, ch. 3): robust to outliers like the median, but smooth in the
    mixing proportion of a bimodal sample, where the median jumps between modes."""
    v = sorted(_floats(xs))
    if not 0 <= proportion < 0.5:
        raise ValueError(f"trimmed_mean: proportion must be in [0, 0.5), got {proportion}")
    k = int(proportion * len(v))
    kept = v[k : len(v) - k]
    return math.fsum(kept) / len(kept)


def ratio_of_medians(
    a_samples: Sequence[float],
    b_samples: Sequence[float],
    conf: float = 0.95,
    n_boot: int = 1000,
    rng: random.Random | None = None,
    *,
    stat: Callable[[Sequence[float]], float] = median,
) -> Estimate:
    """stat(a)/stat(b) (the median unless ``stat`` says otherwise); percentile bootstrap
    resampling a and b independently.

    ValueError if either statistic is <= 0; replicates with a statistic <= 0 are skipped
    (more than 5% skipped raises ValueError).
    """
    _check_boot(conf, n_boot)
    a = _floats(a_samples, "a_samples")
    b = _floats(b_samples, "b_samples")
    f = statistics.median if stat is median else stat
    ma, mb = f(a), f(b)
    if ma <= 0 or mb <= 0:
        raise ValueError(f"ratio_of_medians: statistics must be > 0 (a: {ma:g}, b: {mb:g})")
    value = ma / mb
    r = _rng(rng)
    reps: list[float] = []
    skipped = 0
    choices = r.choices
    for _ in range(n_boot):
        ra, rb = f(choices(a, k=len(a))), f(choices(b, k=len(b)))
        if ra <= 0 or rb <= 0:
            skipped += 1
            continue
        reps.append(ra / rb)
    _check_skipped(skipped, n_boot, "a resampled statistic <= 0")
    lo, hi = _percentile_interval(reps, conf)
    return Estimate(value, lo, hi, conf)


def equivalence(
    a_samples: Sequence[float],
    b_samples: Sequence[float],
    margin: float = 0.10,
    conf: float = 0.90,
    n_boot: int = 1000,
    rng: random.Random | None = None,
    *,
    min_samples: int = MIN_EQUIVALENCE_SAMPLES,
    stat: Callable[[Sequence[float]], float] = median,
) -> Equivalence:
    """A/A equivalence test of stat(a)/stat(b) (median by default) within [1/(1+margin), 1+margin].

    TOST via the (1 - 2*alpha) interval (Schuirmann 1987): equivalent iff the whole
    ``conf`` interval of the ratio lies within the bounds. This is NOT a significance
    test: the burden of proof is on equivalence, so a noisy or tiny comparison (wide
    interval, or fewer than ``min_samples`` on either side) comes out NOT equivalent.
    """
    if margin <= 0:
        raise ValueError(f"equivalence: margin must be > 0, got {margin}")
    ratio = ratio_of_medians(a_samples, b_samples, conf=conf, n_boot=n_boot, rng=rng, stat=stat)
    bounds = (1.0 / (1.0 + margin), 1.0 + margin)
    enough = min(len(a_samples), len(b_samples)) >= min_samples
    inside = bounds[0] <= ratio.lo and ratio.hi <= bounds[1]
    return Equivalence(ratio, margin, bounds, enough and inside)


def decide_interval(
    est: Estimate,
    supported: tuple[float, float],
    refuted: tuple[float, float],
) -> str:
    """Pre-registered verdict from an interval estimate.

    "supported" if [est.lo, est.hi] lies wholly within the closed region ``supported``,
    "refuted" if wholly within ``refuted``, else "inconclusive". Regions are (lo, hi)
    and may use -math.inf / math.inf for open ends. Supported is checked first.
    """
    for name, (lo, hi) in (("supported", supported), ("refuted", refuted)):
        if lo > hi:
            raise ValueError(f"decide_interval: {name} region has lo > hi: {(lo, hi)}")
    if any(math.isnan(v) for v in (est.lo, est.hi)):
        return "inconclusive"
    if supported[0] <= est.lo and est.hi <= supported[1]:
        return "supported"
    if refuted[0] <= est.lo and est.hi <= refuted[1]:
        return "refuted"
    return "inconclusive"
