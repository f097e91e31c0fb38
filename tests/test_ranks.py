"""decide/ranks.py: the Mann-Whitney U test's exact p-values against enumeration, its
normal approximation with ties against a permutation test, and Holm's procedure."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from perflab.decide import ranks


def enumerated_p(a: list[float], b: list[float]) -> float:
    """The two-sided p-value by enumerating every split of the pooled samples."""
    pooled = a + b
    m = len(a)

    def u_of(idx: tuple[int, ...]) -> float:
        first = [pooled[i] for i in idx]
        rest = [pooled[i] for i in range(len(pooled)) if i not in idx]
        return sum(1.0 if y < x else 0.5 if y == x else 0.0 for x in first for y in rest)

    centre = m * len(b) / 2
    far = abs(u_of(tuple(range(m))) - centre)
    splits = list(itertools.combinations(range(len(pooled)), m))
    return sum(abs(u_of(idx) - centre) >= far - 1e-9 for idx in splits) / len(splits)


def test_exact_counts_match_enumeration():
    for m in range(1, 6):
        for n in range(1, 7):
            counts = [0] * (m * n + 1)
            for pos in itertools.combinations(range(m + n), m):
                counts[sum(p + 1 for p in pos) - m * (m + 1) // 2] += 1
            assert list(ranks._u_counts(m, n)) == counts, (m, n)
    assert sum(ranks._u_counts(40, 40)) == math.comb(80, 40)


def test_exact_p_matches_a_permutation_test_without_ties():
    r = random.Random(3)
    for _ in range(40):
        m, n = r.randint(2, 6), r.randint(2, 6)
        a = [r.gauss(0, 1) for _ in range(m)]
        b = [r.gauss(r.choice((0, 1, 3)), 1) for _ in range(n)]
        t = ranks.rank_test(a, b)
        assert t.exact and t.p == pytest.approx(enumerated_p(a, b)), (a, b)


def test_ties_are_exact_when_small_and_approximate_beyond():
    r = random.Random(4)
    for _ in range(30):
        a = [float(r.randint(0, 4)) for _ in range(r.randint(2, 7))]
        b = [float(r.randint(1, 5)) for _ in range(r.randint(2, 7))]
        t = ranks.rank_test(a, b)
        assert t.exact and t.p == pytest.approx(enumerated_p(a, b)), (a, b)
    a = [float(r.randint(0, 40)) for _ in range(30)]
    b = [float(r.randint(30, 70)) for _ in range(30)]
    t = ranks.rank_test(a, b)
    assert not t.exact and 0 < t.p < 0.05  # counts of 0..40 against 30..70: tied, shifted


def test_least_p_and_wholly_apart_sets():
    assert ranks.least_p(3, 3) == pytest.approx(0.1)
    assert ranks.least_p(5, 5) == pytest.approx(2 / 252)
    assert ranks.rank_test([1, 2, 3], [4, 5, 6]).p == pytest.approx(0.1)
    assert ranks.rank_test([4, 5, 6], [1, 2, 3]).p == pytest.approx(0.1)
    assert ranks.rank_test([1, 2, 3], [1, 2, 3]).p == 1.0
    assert ranks.rank_test([2.0] * 4, [2.0] * 4).p == 1.0  # all tied: nothing to tell
    big = ranks.rank_test(list(range(101)), list(range(101, 201)))  # beyond the exact table
    assert not big.exact and big.p < 1e-30
    with pytest.raises(ValueError):
        ranks.rank_test([], [1.0])


def test_holm_rejects_in_order_and_stops_at_the_first_that_holds():
    assert ranks.holm([0.01, 0.04, 0.03], 0.05) == [True, False, False]  # 0.01 <= 0.05/3; 0.03 > 0.05/2
    assert ranks.holm([0.001, 0.02, 0.04], 0.05) == [True, True, True]  # 0.001, 0.02 <= 0.025, 0.04 <= 0.05
    assert ranks.holm([0.2, 0.3], 0.05) == [False, False]
    assert ranks.holm([], 0.05) == []
