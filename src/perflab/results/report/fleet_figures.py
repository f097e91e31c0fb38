"""What to draw for one claim of a fleet: every host's curves on one plot (pure; draw.py draws).

Per claim, each evidence series measured on a sweep (numeric x) becomes one figure whose
lines are the hosts (the series renamed to the host, so the legend names it), drawn as a
run's sweep is (figures.py, ``sweep_panel``: log axes where the values span a decade,
log-log with each host's fitted exponent where the rule fits one). Single points of one
unit become one figure of categories (the series) with a marker per host; labelled points
one figure per series, a category per label, a marker per host. The A/A sets are left
out, as in a run's report. Cache sizes are not drawn: the hosts' caches differ.
"""

from __future__ import annotations

import math
from dataclasses import replace

from perflab.core.record import Verdict
from perflab.core.rule import Rule
from perflab.results.report import figures
from perflab.results.report.figures import Figure, Line, Panel


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _evidence(v: Verdict) -> list:
    return [s for s in v.series if s.role == "evidence" and not s.name.startswith("a/a:") and s.points]


def overlay(per_host: list[tuple[str, Verdict]], rule: Rule | None, prefix: str) -> list[Figure]:
    """The figures of one claim, from (host, its verdict) in the hosts' order."""
    groups: dict[tuple[str, str | None, str], list[tuple[str, object]]] = {}
    for host, v in per_host:
        for s in _evidence(v):
            groups.setdefault((s.name, s.x, s.unit), []).append((host, s))
    exponent = any(figures.fits_exponent(rule, v) for _, v in per_host)
    out: list[Figure] = []
    singles: dict[str, list[tuple[str, object]]] = {}
    for (name, x, unit), items in groups.items():
        if x is None:
            singles.setdefault(unit, []).extend(items)
            continue
        key = f"{prefix}-{len(out)}"
        if all(_number(p.x) for _, s in items for p in s.points):
            hosts = [replace(s, name=host) for host, s in items]
            out.append(Figure(key, f"{name}: every host", [figures.sweep_panel("", hosts, x, unit, exponent, [], [])]))
        else:
            out.append(Figure(key, f"{name}: every host", [_categories(items, x, unit, by_label=True)]))
    for unit, items in singles.items():
        names = ", ".join(dict.fromkeys(s.name for _, s in items))
        out.append(Figure(f"{prefix}-{len(out)}", f"{names}: every host", [_categories(items, None, unit)]))
    for fig in out:  # one host alone draws no legend (draw.py): its name goes above the panel
        for panel in fig.panels:
            if len(panel.lines) == 1 and not panel.fits:
                panel.title = f"{panel.lines[0].label} only"
    return out


def _categories(items: list[tuple[str, object]], x: str | None, unit: str, by_label: bool = False) -> Panel:
    """A category per series name (single points) or per label (labelled points); a line
    (markers with their CIs) per host."""
    cats: list[str] = []
    for _, s in items:
        for p in s.points:
            label = str(p.x) if by_label else s.name
            if label not in cats:
                cats.append(label)
    per_host: dict[str, Line] = {}
    for host, s in items:
        line = per_host.setdefault(host, Line(host, [], [], [], []))
        for p in s.points:
            line.xs.append(float(cats.index(str(p.x) if by_label else s.name)))
            line.ys.append(p.median)
            line.lo.append(p.ci[0])
            line.hi.append(p.ci[1])
    lines = list(per_host.values())
    ys = [v for ln in lines for v in ln.ys + ln.lo + ln.hi]
    return Panel("", figures.x_label(x) if x else "series (category)", figures.y_label(unit), lines,
                 categories=cats, ylog=figures.spans(ys, figures.DECADE), dodge=True)
