"""A measured curve as the record reports it: per x the median of its per-process
samples with a percentile-bootstrap CI, and for a sweep both fits (the growth exponent
over the top decade and cost = a + b*x over every point), raw samples kept."""

from __future__ import annotations

import random

from perflab.core.claim import Curve, Samples
from perflab.core.record import AffineFit, Fit, Point, Series
from perflab.decide import blocked, fits, stats


def _fit(est: stats.Estimate) -> Fit:
    return Fit(est.value, est.lo, est.hi, est.conf)


def summarize(curve: Curve, conf: float, rng: random.Random, n_boot: int) -> Series:
    points = []
    for x in sorted(curve.points, key=lambda v: (v is None, v)):
        samples = curve.points[x]
        est = stats.bootstrap_ci(samples, conf=conf, n_boot=n_boot, rng=rng)
        rounds = getattr(samples, "rounds", None)
        points.append(Point(x, est.value, (est.lo, est.hi), len(samples), list(samples),
                            list(rounds) if rounds is not None and any(r is not None for r in rounds) else None))
    out = Series(curve.name, curve.x, curve.unit, curve.role, points)
    numeric = {x: v for x, v in curve.points.items()
               if isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0}
    if len(numeric) >= 3:
        try:
            fit = fits.affine_fit(numeric, conf=conf, n_boot=n_boot, rng=rng)
            out.affine_fit = AffineFit(_fit(fit.a), _fit(fit.b), fit.r2)
        except (ValueError, ZeroDivisionError):
            pass
        try:  # as the rules estimate it: per round, across rounds
            out.growth_exponent = _fit(blocked.exponent_ci(numeric, conf))
        except ValueError:
            pass
    return out


def curve_of(series: Series) -> Curve:
    """The raw curve back from a reported series (its points must carry their samples)."""
    return Curve(series.name, series.x, series.unit, series.role,
                 {x: Samples(values, rounds) for x, (values, rounds) in series.samples_by_x().items()})
