"""Steps in a latency curve: where latency jumps from one plateau to the next.

Pure functions, no I/O; ``cache.cpu-ladder`` uses them on pointer-chase latency against
working-set size, and ``tests/test_cache_rules.py`` on synthetic curves.

A memory hierarchy gives a staircase: latency stays flat while the working set fits a
level, then rises to the next level's latency. Transitions are gradual (a set somewhat
larger than a cache still hits it in part), so a step is found between *plateaus*, not
between adjacent points:

* a plateau is a run of at least ``min_points`` consecutive points (x ascending) whose
  largest value is at most ``flat`` times its smallest, grown greedily from the left; its
  level is the median of its values. Bounding the whole run's spread, not each adjacent
  pair, keeps a slow creep (finely sampled) from passing for one long plateau;
* a transition is the pair of consecutive plateaus, its rise the ratio of their levels;
* a step is a transition whose rise is at least ``min_rise``.

The numbers (``flat``, ``min_points``, ``min_rise``) are the claim's: cache.cpu-ladder's
rule holds them (claims/cache.py), and every caller passes them.

Points between two plateaus (the gradual part of a rise) belong to no plateau. A curve
that rises smoothly everywhere has no plateau and therefore no step; a small bump inside
a plateau (one noisy point, a TLB reach) gives a transition with a rise near 1, which is
no step.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from statistics import median
from typing import Any, Mapping, Sequence

@dataclass(frozen=True)
class Plateau:
    xs: tuple[float, ...]  # the points on it, ascending
    level: float  # median of their values

    @property
    def first(self) -> float:
        return self.xs[0]

    @property
    def last(self) -> float:
        return self.xs[-1]


@dataclass(frozen=True)
class Transition:
    low: Plateau
    high: Plateau
    at: float  # x where the curve crosses the geometric mean of the two levels

    @property
    def rise(self) -> float:
        return self.high.level / self.low.level

    @property
    def before(self) -> float:
        """The largest x still on the lower plateau."""
        return self.low.last

    @property
    def after(self) -> float:
        """The smallest x on the upper plateau."""
        return self.high.first

    def to_dict(self) -> dict[str, Any]:
        return {"from_x": self.before, "to_x": self.after, "at_x": self.at, "low": self.low.level,
                "high": self.high.level, "rise": self.rise}


def plateaus(curve: Mapping[float, float], flat: float, min_points: int) -> list[Plateau]:
    """Runs of >= min_points consecutive points within a factor ``flat`` of each other."""
    if flat < 1:
        raise ValueError("flat must be >= 1")
    xs = sorted(curve)
    if any(curve[x] <= 0 or not math.isfinite(curve[x]) for x in xs):
        raise ValueError("latencies must be positive and finite")
    runs: list[list[float]] = []
    run: list[float] = []
    lo = hi = 0.0
    for x in xs:
        y = curve[x]
        if run and max(hi, y) <= flat * min(lo, y):
            run.append(x)
            lo, hi = min(lo, y), max(hi, y)
        else:
            if run:
                runs.append(run)
            run, lo, hi = [x], y, y
    if run:
        runs.append(run)
    return [Plateau(tuple(r), float(median(curve[x] for x in r))) for r in runs if len(r) >= min_points]


def half_rise(curve: Mapping[float, float], low: Plateau, high: Plateau) -> float:
    """Where, between two plateaus, the curve first reaches the geometric mean of their
    levels: interpolated linearly in log x and log latency (the half-way point of the
    rise on a log scale)."""
    target = math.log(low.level * high.level) / 2
    xs = [x for x in sorted(curve) if low.last <= x <= high.first]
    for a, b in zip(xs, xs[1:]):
        ya, yb = math.log(curve[a]), math.log(curve[b])
        if yb >= target > ya or (yb >= target and a == low.last):
            f = 0.0 if yb == ya else min(1.0, max(0.0, (target - ya) / (yb - ya)))
            return math.exp(math.log(a) + f * (math.log(b) - math.log(a)))
    return math.sqrt(low.last * high.first)


def transitions(curve: Mapping[float, float], flat: float, min_points: int) -> list[Transition]:
    """Every pair of consecutive plateaus, whatever its rise."""
    ps = plateaus(curve, flat, min_points)
    return [Transition(a, b, half_rise(curve, a, b)) for a, b in zip(ps, ps[1:])]


def detect_steps(curve: Mapping[float, float], min_rise: float, flat: float, min_points: int) -> list[Transition]:
    """Transitions whose rise is at least ``min_rise``, in x order."""
    return [t for t in transitions(curve, flat, min_points) if t.rise >= min_rise]


# ---- set beside the cache sizes the kernel reports ----------------------------------------

_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?)i?B?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int | None:
    """sysfs cache sizes ("32K", "1024K", "32768K"; Documentation/ABI/testing/
    sysfs-devices-system-cpu) in bytes; None if unreadable."""
    m = _SIZE.match(text or "")
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2).upper()]


def cache_levels(caches: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """Data-holding levels of ``host.caches()`` as (name, bytes), smallest first:
    L1d, L2, L3, ... (instruction caches left out: a pointer chase reads data)."""
    out = []
    for c in caches:
        if str(c.get("type", "")).lower() == "instruction":
            continue
        size = parse_size(str(c.get("size", "")))
        if size:
            name = f"L{c['level']}" + ("d" if str(c.get("type", "")).lower() == "data" else "")
            out.append((name, size))
    return sorted(set(out), key=lambda t: t[1])


def where(step: Transition, size: float, slack: float = 2.0) -> bool:
    """True if the step's half-rise point lies within [size/slack, size*slack]: latency
    left the plateau about where a cache of ``size`` bytes overflows."""
    return size / slack <= step.at <= size * slack


def match_levels(steps: Sequence[Transition], levels: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    """For each reported level: was a step found where its size puts it? Each step is
    given to at most one level (the nearest, on a log scale). Evidence only."""
    out, used = [], set()
    for name, size in levels:
        near = [s for s in steps if where(s, size) and id(s) not in used]
        hit = min(near, key=lambda s: abs(math.log(s.at / size)), default=None)
        row: dict[str, Any] = {"level": name, "bytes": size, "step_found": hit is not None}
        if hit is not None:
            used.add(id(hit))
            row["step"] = hit.to_dict()
        out.append(row)
    return out


def human_bytes(n: float) -> str:
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            v = n / div
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.3g} {unit}"
    return f"{n:.0f} B"
