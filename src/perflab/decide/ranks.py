"""Rank tests: whether two sets of samples differ, and how many of many differences hold.

* ``rank_test``: the two-sided Mann-Whitney U test (Mann & Whitney 1947, "On a test of
  whether one of two random variables is stochastically larger than the other"). Without
  ties its p-value is exact: the null distribution of U for sizes m and n has the
  generating function prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), the Gaussian binomial
  coefficient [m+n choose m]_q (Andrews, *The Theory of Partitions*, 1976, ch. 3), which
  is expanded here coefficient by coefficient. With ties and small sizes (m*n <= 100)
  it is exact too, the permutation distribution of the sum of the first sample's midranks
  counted by dynamic programming; with ties beyond that, the normal approximation with
  the tie correction of the variance and a continuity correction (Lehmann,
  *Nonparametrics*, 1975, ch. 1.4), as scipy.stats.mannwhitneyu does where its exact
  method does not apply.
* ``least_p``: the smallest p-value sizes m and n can give at all (the two sets wholly
  apart): 2 / C(m+n, m). With 3 samples a side it is 0.1, so no difference between two
  sets of three can be shown at 95%, whatever its size.
* ``holm``: Holm's step-down procedure (Holm 1979, "A simple sequentially rejective
  multiple test procedure"), which keeps the chance of even one false rejection among
  all the tests at alpha.

Pure standard library; no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

EXACT_MAX_CELLS = 10_000
"""Largest m*n for which the exact distribution of U is expanded (80 x 80 costs ~0.5 M
additions, cached per size); beyond it the normal approximation is within 1e-4."""

EXACT_TIED_MAX_CELLS = 100
"""Largest m*n for which a tied sample's permutation distribution is counted (10 x 10:
~0.1 M additions); at small sizes the normal approximation is off by up to ~0.07."""


@dataclass(frozen=True)
class RankTest:
    u: float  # Mann-Whitney U of the first sample (with midranks for ties)
    p: float  # two-sided
    least_p: float  # the smallest p these sizes allow
    exact: bool


def least_p(m: int, n: int) -> float:
    return min(1.0, 2.0 / math.comb(m + n, m))


@lru_cache(maxsize=64)
def _u_counts(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m+n, m) arrangements give U = 0, 1, ..., m*n (no ties)."""
    c = [0] * (m * n + 1)
    c[0] = 1
    for i in range(1, m + 1):
        step = n + i
        for k in range(m * n, step - 1, -1):  # times (1 - q^(n+i))
            c[k] -= c[k - step]
        for k in range(i, m * n + 1):  # divided by (1 - q^i): a running sum with stride i
            c[k] += c[k - i]
    return tuple(c)


def _tied_tail(ranks2: list[int], m: int, observed2: int) -> float:
    """P(|S - E S| >= |observed - E S|), S the sum of m of the doubled midranks drawn
    without replacement, every draw equally likely (the permutation distribution)."""
    top = sum(sorted(ranks2)[-m:])
    ways = [[0] * (top + 1) for _ in range(m + 1)]  # ways[k][s]: k ranks chosen, summing to s
    ways[0][0] = 1
    for r in ranks2:
        for k in range(m, 0, -1):
            row, below = ways[k], ways[k - 1]
            for s in range(top - r, -1, -1):
                if below[s]:
                    row[s + r] += below[s]
    centre2 = m * (len(ranks2) + 1)  # twice m (N + 1) / 2
    far = abs(observed2 - centre2)
    return sum(c for s, c in enumerate(ways[m]) if abs(s - centre2) >= far) / math.comb(len(ranks2), m)


def _midranks(values: list[float]) -> tuple[list[float], list[int]]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        if j > i:
            ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def rank_test(a: Sequence[float], b: Sequence[float]) -> RankTest:
    m, n = len(a), len(b)
    if m < 1 or n < 1:
        raise ValueError(f"rank_test: both samples need at least one value (got {m} and {n})")
    ranks, ties = _midranks([float(x) for x in a] + [float(x) for x in b])
    u = sum(ranks[:m]) - m * (m + 1) / 2
    floor = least_p(m, n)
    centre = m * n / 2
    if not ties and m * n <= EXACT_MAX_CELLS:
        counts = _u_counts(m, n)
        far = abs(u - centre)
        tail = sum(c for k, c in enumerate(counts) if abs(k - centre) >= far - 1e-9)
        return RankTest(u, min(1.0, tail / math.comb(m + n, m)), floor, True)
    if ties and m * n <= EXACT_TIED_MAX_CELLS:
        ranks2 = [round(2 * r) for r in ranks]
        return RankTest(u, max(floor, min(1.0, _tied_tail(ranks2, m, sum(ranks2[:m])))), floor, True)
    big = m + n
    var = m * n / 12 * ((big + 1) - sum(t ** 3 - t for t in ties) / (big * (big - 1)))
    if var <= 0:  # every value the same
        return RankTest(u, 1.0, floor, False)
    z = max(0.0, abs(u - centre) - 0.5) / math.sqrt(var)
    return RankTest(u, max(floor, min(1.0, math.erfc(z / math.sqrt(2)))), floor, False)


def holm(ps: Sequence[float], alpha: float) -> list[bool]:
    """Which of the hypotheses with these p-values are rejected, the family's error held at alpha."""
    out = [False] * len(ps)
    for step, i in enumerate(sorted(range(len(ps)), key=ps.__getitem__)):
        if ps[i] > alpha / (len(ps) - step):
            break
        out[i] = True
    return out
