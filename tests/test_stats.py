"""Tests for perflab.decide.stats on realistic synthetic series.

Series have a fixed overhead, multiplicative lognormal noise and occasional x3
outliers, like timings of fresh processes. All randomness is seeded.
"""

from __future__ import annotations

import math
import random
import time

import pytest

from perflab.core.rule import Region, Rule
from perflab.decide import stats
from perflab.decide.fits import AffineFit, affine_fit, growth_exponent, loglog_slope, top_decade
from perflab.decide.stats import (
    Equivalence,
    Estimate,
    bootstrap_ci,
    equivalence,
    mad,
    median,
    percentile,
    ratio_of_medians,
)

# A 1-2-5 sweep from 1 to 10000, plus 20000: 14 sizes; top decade = 2000..20000.
SWEEP = [m * 10**e for e in range(5) for m in (1, 2, 5) if m * 10**e <= 10000] + [20000]
SUPPORTED = (0.8, 1.25)
REFUTED = (-math.inf, 0.5)


def decide_interval(est: Estimate, supported: tuple[float, float], refuted: tuple[float, float]) -> str:
    """The generic rule (core/rule.py) on an estimate, as the claims apply it."""
    rule = Rule(quantity="q", short="q", supported=Region(*supported), refuted=Region(*refuted))
    return rule.judge(est.lo, est.hi)[0].value


def noisy(
    rng: random.Random, true: float, n: int, sigma: float = 0.04, outliers: bool = True
) -> list[float]:
    """n samples of `true` with lognormal noise; about 1 in 15 is a x3 outlier."""
    out = []
    for _ in range(n):
        v = true * rng.lognormvariate(0.0, sigma)
        if outliers and rng.random() < 1 / 15:
            v *= 3
        out.append(v)
    return out


def series(cost, seed: int, n: int = 20, sigma: float = 0.04, xs=SWEEP) -> dict[float, list]:
    """cost(N) sampled n times at each N in xs."""
    rng = random.Random(seed)
    return {x: noisy(rng, cost(x), n, sigma) for x in xs}


def linear(n: float) -> float:
    return 300.0 + 8.0 * n  # ns: fixed overhead + per-element cost


def power(k: float):
    """cost = c*N**k plus an overhead of 2% of the cost at the bottom of the top decade."""
    return lambda n: 5.0 * n**k + 0.02 * 5.0 * 2000.0**k


# --------------------------------------------------------------------------- basics


def test_median_mad_percentile_basics():
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    assert mad([1, 2, 3, 4, 100]) == 1  # |x - 3| = 2,1,0,1,97 -> median 1
    xs = [10, 20, 30, 40]
    assert percentile(xs, 0) == 10
    assert percentile(xs, 100) == 40
    assert percentile(xs, 50) == 25
    assert percentile(xs, 25) == pytest.approx(17.5)  # numpy's linear method
    assert percentile([7], 90) == 7


@pytest.mark.parametrize(
    "call",
    [
        lambda: median([]),
        lambda: mad([]),
        lambda: percentile([], 50),
        lambda: percentile([1, 2], -1),
        lambda: percentile([1, 2], 101),
        lambda: median([1.0, math.nan]),
        lambda: bootstrap_ci([]),
        lambda: bootstrap_ci([1, 2], conf=1.0),
        lambda: top_decade([]),
    ],
)
def test_basic_errors(call):
    with pytest.raises(ValueError):
        call()


def test_estimate_to_dict():
    e = Estimate(1.0, 0.5, 1.5, 0.95)
    assert e.to_dict() == {"value": 1.0, "ci": [0.5, 1.5], "conf": 0.95}


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_truth_and_is_reproducible():
    samples = noisy(random.Random(1), 1000.0, 30)
    e1 = bootstrap_ci(samples, rng=random.Random(7))
    e2 = bootstrap_ci(samples, rng=random.Random(7))
    assert e1 == e2
    assert e1.value == median(samples)
    assert e1.lo <= 1000.0 <= e1.hi
    assert e1.lo <= e1.value <= e1.hi
    assert e1.hi - e1.lo < 60  # a few percent, outliers notwithstanding
    # rng=None is deterministic too
    assert bootstrap_ci(samples) == bootstrap_ci(samples)


def test_bootstrap_ci_coverage_across_seeds():
    # percentile bootstrap of a median should cover ~95%; allow slack for n=30
    hits = 0
    for seed in range(100):
        s = noisy(random.Random(seed), 1000.0, 30, outliers=False)
        e = bootstrap_ci(s, n_boot=400, rng=random.Random(seed + 1000))
        hits += e.lo <= 1000.0 <= e.hi
    assert hits >= 85


def test_bootstrap_single_sample_and_custom_stat():
    assert bootstrap_ci([5.0]) == Estimate(5.0, 5.0, 5.0, 0.95)
    e = bootstrap_ci([1.0, 2.0, 3.0, 4.0], stat=max, rng=random.Random(0))
    assert e.value == 4.0 and e.hi == 4.0 and e.lo >= 1.0


# --------------------------------------------------------------------------- scaling


def test_loglog_slope_exact_and_errors():
    assert loglog_slope([1, 10, 100], [3, 30, 300]) == pytest.approx(1.0)
    assert loglog_slope([2, 4, 8], [5, 20, 80]) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        loglog_slope([0, 1], [1, 2])
    with pytest.raises(ValueError):
        loglog_slope([1, 2], [1, -2])
    with pytest.raises(ValueError):
        loglog_slope([5, 5], [1, 2])
    with pytest.raises(ValueError):
        loglog_slope([1, 2, 3], [1, 2])


def test_top_decade():
    assert SWEEP[:4] == [1, 2, 5, 10] and SWEEP[-3:] == [5000, 10000, 20000]
    assert top_decade(SWEEP) == [2000, 5000, 10000, 20000]
    assert top_decade([100, 10, 10, 9, 50]) == [10, 50, 100]


def test_growth_linear_with_intercept():
    est = growth_exponent(series(linear, seed=2), rng=random.Random(3))
    assert SUPPORTED[0] <= est.lo <= est.value <= est.hi <= SUPPORTED[1]
    assert est.value == pytest.approx(1.0, abs=0.05)  # 300 ns overhead fades in the top decade
    assert decide_interval(est, SUPPORTED, REFUTED) == "supported"


def test_growth_linear_over_whole_range_would_be_biased():
    # why the top decade: over all N the overhead drags a log-log fit well below 1
    pts = series(linear, seed=2)
    whole = loglog_slope(list(pts), [median(v) for v in pts.values()])
    assert whole < 0.8


def test_growth_flat():
    est = growth_exponent(series(lambda n: 500.0, seed=4), rng=random.Random(5))
    assert -0.1 <= est.lo <= est.hi <= 0.1
    assert decide_interval(est, SUPPORTED, REFUTED) == "refuted"


def test_growth_quadratic():
    est = growth_exponent(series(lambda n: 50.0 + 0.5 * n * n, seed=6), rng=random.Random(7))
    assert est.value == pytest.approx(2.0, abs=0.05)
    assert est.lo <= 2.0 <= est.hi


@pytest.mark.parametrize(
    ("k", "verdict"),
    [
        (0.85, "supported"),  # just inside [0.8, 1.25]
        (1.2, "supported"),  # just inside, upper end
        (0.7, "inconclusive"),  # between the regions
        (0.55, "inconclusive"),  # just outside the refuted region (-inf, 0.5)
        (0.4, "refuted"),
        (1.4, "inconclusive"),  # above the supported region
    ],
)
def test_growth_thresholds(k, verdict):
    pts = series(power(k), seed=8)
    est = growth_exponent(pts, rng=random.Random(9))
    assert est.value == pytest.approx(k, abs=0.05)
    assert decide_interval(est, SUPPORTED, REFUTED) == verdict


def test_growth_verdicts_stable_across_seeds():
    # the verdicts above are not an accident of one seed
    for seed in range(10):
        for k, verdict in [(0.85, "supported"), (1.2, "supported"), (0.7, "inconclusive"),
                           (0.55, "inconclusive"), (0.4, "refuted")]:
            pts = series(power(k), seed=100 + seed)
            est = growth_exponent(pts, n_boot=300, rng=random.Random(seed))
            assert decide_interval(est, SUPPORTED, REFUTED) == verdict, (seed, k, est)


def test_growth_reproducible_with_seed():
    pts = series(linear, seed=10)
    assert growth_exponent(pts, rng=random.Random(1)) == growth_exponent(pts, rng=random.Random(1))
    assert growth_exponent(pts) == growth_exponent(pts)


def test_growth_is_fast():
    xs = [m * 10**e for e in range(4) for m in (1, 2, 5)]  # 12 sizes
    pts = series(linear, seed=11, xs=xs)
    t0 = time.perf_counter()
    growth_exponent(pts, n_boot=1000, rng=random.Random(0))
    assert time.perf_counter() - t0 < 0.5


def test_growth_errors():
    with pytest.raises(ValueError, match="top decade"):
        growth_exponent({1000: [1.0, 2.0]})  # one x
    with pytest.raises(ValueError, match="top decade"):
        growth_exponent({1: [1.0], 10: [2.0], 1000: [3.0]})  # only 1000 in the top decade
    with pytest.raises(ValueError, match="<= 0"):
        growth_exponent({100: [-1.0, -2.0, 1.0], 1000: [5.0, 6.0]})
    with pytest.raises(ValueError):
        growth_exponent({0: [1.0], 10: [2.0]})  # x <= 0
    with pytest.raises(ValueError):
        growth_exponent({100: [], 1000: [2.0]})  # empty samples
    with pytest.raises(ValueError):
        growth_exponent({})


def test_growth_skips_bad_replicates_but_not_too_many():
    # median 1.0 > 0, but half the resamples have median <= 0: too many skipped
    pts = {100: [-5.0, -4.0, 1.0, 2.0, 3.0], 1000: [10.0, 11.0, 12.0]}
    with pytest.raises(ValueError, match="skipped"):
        growth_exponent(pts, rng=random.Random(0))
    # one rare non-positive sample among many: a few replicates skipped, fine
    rng = random.Random(1)
    pts = {100: [-1.0] + noisy(rng, 100.0, 30, outliers=False), 1000: noisy(rng, 1000.0, 30)}
    est = growth_exponent(pts, rng=random.Random(2))
    assert est.lo <= 1.0 <= est.hi


# --------------------------------------------------------------------------- affine


def test_affine_fit_recovers_intercept_and_slope():
    fit = affine_fit(series(linear, seed=12, xs=SWEEP[:10]), rng=random.Random(13))  # N <= 500
    assert isinstance(fit, AffineFit)
    assert fit.a.lo <= 300.0 <= fit.a.hi
    assert fit.b.lo <= 8.0 <= fit.b.hi
    assert fit.b.value == pytest.approx(8.0, rel=0.03)
    assert fit.r2 > 0.99
    d = fit.to_dict()
    assert set(d) == {"a", "b", "r2"} and d["b"]["ci"] == [fit.b.lo, fit.b.hi]


def test_affine_fit_full_sweep():
    fit = affine_fit(series(linear, seed=14), rng=random.Random(15))
    assert fit.b.lo <= 8.0 <= fit.b.hi
    assert fit.a.lo <= 300.0 <= fit.a.hi  # wide: the overhead hides under noise at big N


def test_affine_fit_errors():
    with pytest.raises(ValueError):
        affine_fit({10: [1.0, 2.0]})
    with pytest.raises(ValueError):
        affine_fit({10: [1.0], 20: []})


# --------------------------------------------------------------------------- comparisons


def test_ratio_of_medians():
    rng = random.Random(16)
    a, b = noisy(rng, 1200.0, 20), noisy(rng, 1000.0, 20)
    est = ratio_of_medians(a, b, rng=random.Random(17))
    assert est.value == pytest.approx(median(a) / median(b))
    assert est.lo <= 1.2 <= est.hi
    assert est.lo > 1.1
    with pytest.raises(ValueError):
        ratio_of_medians([1.0, 2.0], [0.0, 0.0, 1.0])
    with pytest.raises(ValueError):
        ratio_of_medians([], [1.0])


def test_equivalence_aa_passes():
    rng = random.Random(18)
    a, b = noisy(rng, 1000.0, 12, sigma=0.03), noisy(rng, 1000.0, 12, sigma=0.03)
    eq = equivalence(a, b, margin=0.10, rng=random.Random(19))
    assert isinstance(eq, Equivalence)
    assert eq.equivalent
    assert eq.bounds == pytest.approx((1 / 1.1, 1.1))
    assert eq.ratio.conf == 0.90
    d = eq.to_dict()
    assert d["equivalent"] is True and d["margin"] == 0.10 and len(d["bounds"]) == 2


def test_equivalence_aa_passes_across_seeds():
    passed = sum(
        equivalence(
            noisy(random.Random(s), 1000.0, 12, sigma=0.03),
            noisy(random.Random(s + 500), 1000.0, 12, sigma=0.03),
            n_boot=400,
            rng=random.Random(s),
        ).equivalent
        for s in range(20)
    )
    assert passed >= 18


def test_equivalence_detects_20_percent():
    rng = random.Random(20)
    a, b = noisy(rng, 1200.0, 12, sigma=0.03), noisy(rng, 1000.0, 12, sigma=0.03)
    assert not equivalence(a, b, margin=0.10, rng=random.Random(21)).equivalent


def test_equivalence_underpowered_is_not_equivalent():
    for seed in range(20):
        rng = random.Random(seed)
        a = noisy(rng, 1000.0, 3, sigma=0.30, outliers=False)
        b = noisy(rng, 1000.0, 3, sigma=0.30, outliers=False)
        assert not equivalence(a, b, rng=random.Random(seed)).equivalent
        # the interval alone is too wide, not just the sample-count guard
        assert not equivalence(a, b, rng=random.Random(seed), min_samples=1).equivalent
    # one sample each: a degenerate interval must never pass
    assert not equivalence([1000.0], [1000.0]).equivalent


# --------------------------------------------------------------------------- decide


def test_decide_interval_three_outcomes():
    sup, ref = (0.8, 1.25), (-math.inf, 0.5)
    assert decide_interval(Estimate(1.0, 0.9, 1.1, 0.95), sup, ref) == "supported"
    assert decide_interval(Estimate(1.0, 0.8, 1.25, 0.95), sup, ref) == "supported"  # closed
    assert decide_interval(Estimate(0.3, 0.2, 0.45, 0.95), sup, ref) == "refuted"
    assert decide_interval(Estimate(0.7, 0.6, 0.75, 0.95), sup, ref) == "inconclusive"
    assert decide_interval(Estimate(0.8, 0.79, 0.85, 0.95), sup, ref) == "inconclusive"
    assert decide_interval(Estimate(0.5, 0.45, 0.55, 0.95), sup, ref) == "inconclusive"
    assert decide_interval(Estimate(9.0, 5.0, 12.0, 0.95), (2.0, math.inf), ref) == "supported"
    with pytest.raises(ValueError):
        decide_interval(Estimate(1.0, 0.9, 1.1, 0.95), (2.0, 1.0), ref)


def test_module_exports():
    for name in stats.__all__:
        assert hasattr(stats, name)
