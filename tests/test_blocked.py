"""The blocked design's statistics (decide/blocked.py): the t quantile, pairing by round,
and the coverage of the interval on synthetic data with a known answer, on a steady host
and with slow stretches, beside the pooled bootstrap it replaced."""

from __future__ import annotations

import math
import random

import pytest

from perflab.core.claim import Samples
from perflab.decide import blocked, fits

SWEEP = (1, 10, 100, 1000, 1998, 3997, 9992, 19984)


def cost(n: float) -> float:
    return 450 + 30 * n  # a system call's fixed cost and a linear walk


def true_exponent() -> float:
    top = blocked.top_decade(SWEEP)
    return blocked._slope([(math.log(x), math.log(cost(x))) for x in top])


def sweep(rounds: int, rng: random.Random, slow_share: float) -> dict:
    """Fresh processes: 4% lognormal noise, 5% of them 1.6x slow, and a share of rounds
    (a slow stretch) in which every process is 1.7x slow."""
    pts = {x: Samples() for x in SWEEP}
    for r in range(rounds):
        stretch = 1.7 if rng.random() < slow_share else 1.0
        for x in SWEEP:
            v = cost(x) * math.exp(rng.gauss(0, 0.04)) * stretch
            pts[x].add(v * (1.6 if rng.random() < 0.05 else 1.0), r)
    return pts


@pytest.mark.parametrize("p,df,expected", [(0.975, 10, 2.228139), (0.9875, 2, 6.205347), (0.975, 1, 12.7062),
                                           (0.995, 30, 2.749996), (0.9, 5, 1.475884), (0.05, 7, -1.894579)])
def test_t_quantile_matches_the_tables(p, df, expected):
    assert blocked.t_quantile(p, df) == pytest.approx(expected, rel=1e-5)


def coverage(rounds: int, slow_share: float, method: str, sims: int = 150, conf: float = 0.975):
    rng = random.Random(rounds * 100 + int(slow_share * 10))
    truth, hits, width = true_exponent(), 0, 0.0
    for i in range(sims):
        pts = sweep(rounds, rng, slow_share)
        est = (blocked.exponent_ci(pts, conf) if method == "blocked"
               else fits.growth_exponent(pts, conf=conf, n_boot=300, rng=random.Random(i)))
        hits += est.lo <= truth <= est.hi
        width += est.hi - est.lo
    return hits / sims, width / sims


@pytest.mark.parametrize("rounds,slow_share", [(3, 0.0), (5, 0.0), (10, 0.0), (5, 0.3), (10, 0.3)])
def test_the_blocked_interval_covers_the_true_exponent(rounds, slow_share):
    """At its nominal 97.5% (a quick look's level) the interval holds the true exponent
    in at least 94% of 150 synthetic runs (the simulation's own error is about 1.3%)."""
    hit, _ = coverage(rounds, slow_share, "blocked")
    assert hit >= 0.94, hit


def test_thin_data_cannot_stop_a_claim_early():
    """Three rounds: the pooled bootstrap of medians of three covers far less than 97.5%
    (it would stop claims on thin data); the blocked interval keeps its level by being
    wide, so a decisive answer waits for more rounds."""
    pooled_hit, pooled_width = coverage(3, 0.0, "pooled")
    blocked_hit, blocked_width = coverage(3, 0.0, "blocked")
    assert pooled_hit < 0.93 <= blocked_hit
    assert blocked_width > 2 * pooled_width


def test_a_slow_stretch_costs_the_blocked_interval_nothing():
    """30% of rounds 1.7x slow: pooling mixes fast and slow processes at every point and
    its interval is several times wider; per round, the stretch's factor cancels."""
    _, steady = coverage(10, 0.0, "blocked", sims=60)
    _, stretched = coverage(10, 0.3, "blocked", sims=60)
    _, pooled = coverage(10, 0.3, "pooled", sims=60)
    assert stretched < 1.3 * steady and pooled > 3 * stretched


def test_pairs_are_taken_by_round_and_in_order():
    a, b = Samples([10, 20, 30], [0, 0, 1]), Samples([5, 10, 10], [0, 0, 1])
    ratios = sorted(round(math.exp(r), 6) for r in blocked.paired_log_ratios(a, b))
    assert ratios == [2.0, 2.0, 3.0]  # round 0: two pairs back to back; round 1: one
    unpaired = blocked.paired_log_ratios([10.0, 20.0], [5.0, 5.0])  # no rounds: by order
    assert sorted(round(math.exp(r), 6) for r in unpaired) == [2.0, 4.0]
    with pytest.raises(ValueError, match="at least 2"):
        blocked.location_ci([0.1], 0.95)


@pytest.mark.parametrize("n,g", [(3, 0), (4, 0), (5, 0), (6, 0), (7, 1), (9, 1), (10, 2), (20, 4), (30, 6)])
def test_trimming_leaves_at_least_four_degrees_of_freedom(n, g):
    """20% trimmed where enough rounds remain: at a quick run's 5 rounds, trimming one at
    each end would leave 2 degrees of freedom and an interval over twice as wide."""
    assert blocked.trimmed_each_end(n) == g
    assert g == 0 or n - 2 * g - 1 >= blocked.MIN_TRIMMED_DF


def test_five_rounds_with_one_spoilt_still_cover():
    """One round in five spoilt by a slow process on one side (a 1.6x factor on one point):
    the untrimmed interval at 5 rounds still holds the true exponent at its level."""
    rng = random.Random(5)
    truth, hits, sims = true_exponent(), 0, 150
    for _ in range(sims):
        pts = sweep(5, rng, 0.0)
        spoilt_round, x = rng.randrange(5), rng.choice(sorted(pts))
        at = pts[x]
        for i, r in enumerate(at.rounds):
            if r == spoilt_round:
                at[i] *= 1.6
                break
        est = blocked.exponent_ci(pts, 0.975)
        hits += est.lo <= truth <= est.hi
    assert hits / sims >= 0.94, hits / sims
