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
* Fits of a cost against N (growth exponent, affine fit) are in decide/fits.py.
* Equivalence is TOST-style (Schuirmann 1987): two one-sided tests at level alpha
  are equivalent to requiring the (1 - 2*alpha) confidence interval to lie wholly
  inside the equivalence bounds; hence conf=0.90 for alpha=0.05.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_SEED",
    "MAX_SKIPPED_FRACTION",
    "MIN_EQUIVALENCE_SAMPLES",
    "Estimate",
    "Equivalence",
    "median",
    "mad",
    "percentile",
    "bootstrap_ci",
    "ratio_of_medians",
    "equivalence",
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


def floats(xs: Sequence[float], what: str = "samples") -> list[float]:
    """Copy to a list of finite floats; ValueError on empty or non-finite input."""
    out = [float(x) for x in xs]
    if not out:
        raise ValueError(f"{what}: empty sequence")
    if not all(math.isfinite(x) for x in out):
        raise ValueError(f"{what}: non-finite value (nan or inf)")
    return out


def check_boot(conf: float, n_boot: int) -> None:
    if not 0.0 < conf < 1.0:
        raise ValueError(f"conf must be in (0, 1), got {conf}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")


def make_rng(rng: random.Random | None) -> random.Random:
    return random.Random(DEFAULT_SEED) if rng is None else rng


def percentile_sorted(s: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (Hyndman & Fan type 7, numpy default)."""
    h = (len(s) - 1) * q / 100.0
    i = math.floor(h)
    if i + 1 >= len(s):
        return s[-1]
    return s[i] + (h - i) * (s[i + 1] - s[i])


def percentile_interval(reps: list[float], conf: float) -> tuple[float, float]:
    """Efron & Tibshirani percentile interval from bootstrap replicates."""
    reps.sort()
    alpha = (1.0 - conf) / 2.0
    return percentile_sorted(reps, 100.0 * alpha), percentile_sorted(reps, 100.0 * (1.0 - alpha))


def check_skipped(skipped: int, n_boot: int, why: str) -> None:
    if skipped > MAX_SKIPPED_FRACTION * n_boot:
        raise ValueError(
            f"{skipped} of {n_boot} bootstrap replicates skipped ({why}); "
            f"more than {MAX_SKIPPED_FRACTION:.0%}, the interval is not trustworthy"
        )


# --------------------------------------------------------------------------- basics


def median(xs: Sequence[float]) -> float:
    """Median (mean of the two middle values for even n). ValueError on empty."""
    return float(statistics.median(floats(xs)))


def mad(xs: Sequence[float]) -> float:
    """Median absolute deviation from the median, unscaled (no 1.4826 factor)."""
    v = floats(xs)
    m = statistics.median(v)
    return float(statistics.median([abs(x - m) for x in v]))


def percentile(xs: Sequence[float], q: float) -> float:
    """q-th percentile, q in [0, 100], by linear interpolation (Hyndman & Fan type 7)."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    return percentile_sorted(sorted(floats(xs)), q)


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
    check_boot(conf, n_boot)
    v = floats(samples)
    value = float(stat(v))
    if len(v) == 1:
        return Estimate(value, value, value, conf)
    r = make_rng(rng)
    n = len(v)
    # statistics.median directly in the loop: the input is already validated.
    f = statistics.median if stat is median else stat
    reps = [float(f(r.choices(v, k=n))) for _ in range(n_boot)]
    lo, hi = percentile_interval(reps, conf)
    return Estimate(value, lo, hi, conf)


# --------------------------------------------------------------------------- comparisons


def trimmed_mean(xs: Sequence[float], proportion: float = 0.2) -> float:
    """Mean after dropping ``proportion`` of the samples at each end (Wilcox, Introduction
    to Robust Estimation, ch. 3): robust to outliers like the median, but smooth in the
    mixing proportion of a bimodal sample, where the median jumps between modes."""
    v = sorted(floats(xs))
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
    check_boot(conf, n_boot)
    a = floats(a_samples, "a_samples")
    b = floats(b_samples, "b_samples")
    f = statistics.median if stat is median else stat
    ma, mb = f(a), f(b)
    if ma <= 0 or mb <= 0:
        raise ValueError(f"ratio_of_medians: statistics must be > 0 (a: {ma:g}, b: {mb:g})")
    value = ma / mb
    r = make_rng(rng)
    reps: list[float] = []
    skipped = 0
    choices = r.choices
    for _ in range(n_boot):
        ra, rb = f(choices(a, k=len(a))), f(choices(b, k=len(b)))
        if ra <= 0 or rb <= 0:
            skipped += 1
            continue
        reps.append(ra / rb)
    check_skipped(skipped, n_boot, "a resampled statistic <= 0")
    lo, hi = percentile_interval(reps, conf)
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
