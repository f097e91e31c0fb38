"""Pieces several claim files share: sample extraction, sweeps, kernel arguments."""

from __future__ import annotations

import math
from statistics import median
from typing import Any


def per_op(record: dict[str, Any]) -> float:
    """One process's sample: the median of its timed batches (ns per operation)."""
    return float(median(record["per_op_ns"]))


def log_sweep(nmax: int) -> tuple[int, ...]:
    """1, 10, 100, ... below nmax/10, then nmax/10, nmax/5, nmax/2, nmax: at least
    four points in the top decade, where the growth exponent is fitted (CLAIMS.md), each
    rounded up so that none falls below nmax/10."""
    top = sorted({max(1, math.ceil(nmax / d)) for d in (10, 5, 2, 1)})
    lows, p = [], 1
    while p < top[0]:
        lows.append(p)
        p *= 10
    return tuple(lows + top)


def nearest(xs: tuple[int, ...], target: int) -> int:
    return min(xs, key=lambda x: abs(x - target))


def timing_args(settings, extra: list[str]) -> list[str]:
    return [*extra, f"--cpu={settings.cpu}", f"--batches={settings.budget.batches}"]
