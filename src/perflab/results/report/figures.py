"""What to draw for one verdict, decided without drawing anything (draw.py draws it).

Each claim gets:
- its decision drawn: per rule (or part of a rule) a strip of the decision quantity's
  axis with the supported region shaded green, the refuted one red, and the estimate with
  its CI on it. The regions come from the registered claim's Rule (core/rule.py); a
  verdict of a claim not registered here, or decided by another version of its rule,
  draws none and says why (its thresholds stay in words).
- its series: sweeps (numeric x) of one variable and unit overlaid in one panel, with
  each point's CI as an error bar; single points and labelled points (x a label) of one
  unit in one panel of categories. Log axes where the values span a decade or more, and
  log-log where the rule fits a growth exponent, with the fitted power law over the top
  decade it was fitted on (decide/fits.py) and the band of its CI (on linear axes, the
  record's affine fit instead; a claim that fits no curve gets no line). A single point in the unit of a sweep is a horizontal reference line on
  it (fork's empty parent). Series ``NAME 4k`` and ``NAME THP`` are drawn side by side on
  one scale. cache.* sweeps over bytes carry the host's cache sizes as vertical lines.
- its controls: the A/A ratio with its interval against the band it must lie in, and
  the control series drawn as above.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from perflab.core.record import Verdict
from perflab.core.rule import Region, Rule

DECADE = 10.0  # y spans at least this factor: log axis
X_DECADES = 100.0  # x spans at least this factor: log axis
# Units of the swept variables the records name (their unit is not in the record; a name
# with "(unit)" carries its own). A label-valued x (kind, tid...) has categories, no unit.
X_UNITS = {"watched_fds": ("watched descriptors", "count"), "ready_fds": ("ready descriptors", "count"),
           "iterations": ("loop iterations", "count"), "threads": ("threads", "count"),
           "working_set_bytes": ("working set", "bytes"), "block size": ("block size", "bytes"),
           "ms": ("time since start", "ms")}


@dataclass
class Line:
    label: str
    xs: list[float]  # positions (category index for categorical panels)
    ys: list[float]
    lo: list[float]
    hi: list[float]


@dataclass
class FitLine:
    label: str
    xs: list[float]
    ys: list[float]
    band: tuple[list[float], list[float]] | None = None  # ys of the CI's two ends


@dataclass
class Panel:
    title: str
    xlabel: str
    ylabel: str
    lines: list[Line] = field(default_factory=list)
    fits: list[FitLine] = field(default_factory=list)
    categories: list[str] | None = None  # categorical x: its tick labels
    dodge: bool | None = None  # categorical: several series share a category (else one per series)
    fit_of: list[int] = field(default_factory=list)  # the line each fit belongs to
    xlog: bool = False
    ylog: bool = False
    xbytes: bool = False  # x ticks as binary sizes (4 KiB, 1 MiB)
    vlines: list[tuple[float, str]] = field(default_factory=list)
    hlines: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class Figure:
    key: str  # unique in the report: a file name for the PNG of --format md
    title: str
    panels: list[Panel]
    sharey: bool = False

    @property
    def alt(self) -> str:
        axes = "; ".join(f"{p.ylabel} against {p.xlabel}" for p in self.panels)
        return f"{self.title}: {axes}"


@dataclass
class Strip:
    label: str
    unit: str
    value: float | None
    ci: tuple[float, float] | None
    supported: Region | None
    refuted: Region | None
    outcome: str
    log: bool = False


@dataclass
class Plan:
    decision: list[Strip]
    decision_note: str  # why no regions are drawn ("" when they are)
    figures: list[Figure]  # evidence
    controls: list[Figure]  # control series
    aa: Strip | None  # the A/A control


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def x_label(name: str | None) -> str:
    if name is None:
        return "configuration (category)"
    if re.search(r"\(.+\)\s*$", name):
        return name
    what, unit = X_UNITS.get(name, (name, ""))
    return f"{what} ({unit})" if unit else f"{what} (category)"


def y_label(unit: str) -> str:
    return f"median per process ({unit or 'no unit'})"


def cache_sizes(host_caches: list[dict[str, Any]]) -> list[tuple[float, str]]:
    """Data and unified caches from sysfs (size "32K": KiB, Documentation/ABI/testing/
    sysfs-devices-system-cpu, cache/index*/size) as (bytes, "L1d 32 KiB")."""
    out = []
    for c in host_caches or []:
        if c.get("type") not in ("Data", "Unified"):
            continue
        m = re.fullmatch(r"(\d+)([KMG]?)", str(c.get("size", "")).strip())
        if not m:
            continue
        size = int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2)]
        name = f"L{c.get('level')}{'d' if c.get('type') == 'Data' else ''}"
        out.append((float(size), f"{name} {binary_size(size)}"))
    return out


def binary_size(n: float) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.3g} {unit}"
    return f"{n:.0f} B"


def spans(values: list[float], factor: float) -> bool:
    pos = [v for v in values if _num(v)]
    return bool(pos) and min(pos) > 0 and max(pos) / min(pos) >= factor


def fits_exponent(rule: Rule | None, verdict: Verdict) -> bool:
    """Whether the claim's rule decides on a growth exponent (a part of it may)."""
    words = [verdict.decision.quantity if verdict.decision else ""]
    if rule is not None:
        words += [rule.quantity, *(p.quantity for p in rule.parts)]
    return any("exponent" in w for w in words)


def _line(s) -> Line:
    pts = sorted((p for p in s.points if _num(p.x)), key=lambda p: p.x)
    return Line(s.name, [float(p.x) for p in pts], [p.median for p in pts], [p.ci[0] for p in pts],
                [p.ci[1] for p in pts])


def exponent_fit(s, line: Line) -> FitLine | None:
    """cost = C * x^e over the top decade (x from xmax/10 to xmax), C through the geometric
    mean of those points, and the lines of the CI's two exponents through the same point."""
    e = s.growth_exponent
    if e is None or e.value is None or not line.xs:
        return None
    top = [(x, y) for x, y in zip(line.xs, line.ys) if x >= line.xs[-1] / 10 and x > 0 and y > 0]
    if len(top) < 2:
        return None
    gx = math.exp(sum(math.log(x) for x, _ in top) / len(top))
    gy = math.exp(sum(math.log(y) for _, y in top) / len(top))
    xs = [top[0][0], gx, top[-1][0]]  # through the pivot: the CI's band is a bow tie crossing there
    power = lambda k: [gy * (x / gx) ** k for x in xs]  # noqa: E731
    band = (power(e.lo), power(e.hi)) if e.lo is not None and e.hi is not None else None
    ci = f" [{e.lo:.2f}, {e.hi:.2f}]" if band else ""
    return FitLine(f"{s.name}: exponent {e.value:.2f}{ci} (top decade)", xs, power(e.value), band)


def affine_fit(s, line: Line) -> FitLine | None:
    f = s.affine_fit
    if f is None or f.a is None or f.b is None or f.a.value is None or f.b.value is None or len(line.xs) < 2:
        return None
    xs = [line.xs[0], line.xs[-1]]
    return FitLine(f"{s.name}: {f.a.value:.3g} + {f.b.value:.3g}·x (r² {f.r2:.3f})", xs,
                   [f.a.value + f.b.value * x for x in xs])


def sweep_panel(title: str, series: list, x: str, unit: str, exponent: bool, cache: list[tuple[float, str]],
                refs: list) -> Panel:
    lines = [_line(s) for s in series]
    xs = [v for ln in lines for v in ln.xs]
    ys = [v for ln in lines for v in ln.ys + ln.lo + ln.hi] + [r.points[0].median for r in refs]
    xlog = spans(xs, X_DECADES) or (exponent and spans(xs, 2))
    ylog = spans(ys, DECADE) or (exponent and xlog and spans(ys, 1.01))  # log-log, unless constant
    p = Panel(title, x_label(x), y_label(unit), lines, xlog=xlog, ylog=ylog, xbytes="bytes" in x_label(x))
    for i, (s, ln) in enumerate(zip(series, lines)):
        fit = exponent_fit(s, ln) if exponent and xlog and ylog else None
        fit = fit or (affine_fit(s, ln) if exponent and not (xlog or ylog) else None)
        if fit:
            p.fits.append(fit)
            p.fit_of.append(i)
    p.vlines = cache if p.xbytes else []
    p.hlines = [(r.points[0].median, r.name) for r in refs]
    return p


def category_panel(title: str, series: list, x: str | None, unit: str) -> Panel:
    """Single points (a category per series) or labelled points (a category per label)."""
    cats: list[str] = []
    for s in series:
        for p in s.points:
            label = s.name if x is None else str(p.x)
            if label not in cats:
                cats.append(label)
    lines = []
    for s in series:
        pts = [(cats.index(s.name if x is None else str(p.x)), p) for p in s.points]
        lines.append(Line(s.name, [float(i) for i, _ in pts], [p.median for _, p in pts],
                          [p.ci[0] for _, p in pts], [p.ci[1] for _, p in pts]))
    ys = [v for ln in lines for v in ln.ys + ln.lo + ln.hi]
    return Panel(title, x_label(x) if x else "series (category)", y_label(unit), lines, categories=cats,
                 ylog=spans(ys, DECADE), dodge=x is not None)


def series_figures(v: Verdict, role: str, rule: Rule | None, prefix: str) -> list[Figure]:
    chosen = [s for s in v.series if s.role == role and not s.name.startswith("a/a:") and s.points]
    exponent = fits_exponent(rule, v)
    cache = cache_sizes(v.host.caches) if v.claim.startswith("cache.") else []
    sweeps: dict[tuple[str, str], list] = {}
    labelled: dict[tuple[str | None, str], list] = {}
    for s in chosen:
        numeric = s.x is not None and all(_num(p.x) for p in s.points)
        (sweeps if numeric else labelled).setdefault((s.x, s.unit), []).append(s)
    sweep_units = {unit for _, unit in sweeps}
    refs = {unit: labelled.pop((None, unit)) for unit in sweep_units if (None, unit) in labelled}
    figures: list[Figure] = []
    for (x, unit), group in sweeps.items():
        pairs = _side_by_side(group)
        ref = refs.get(unit, [])
        if pairs:
            left, right = pairs
            panels = [sweep_panel(s.name, [s], x, unit, exponent, cache, ref) for s in (left, right)]
            rest = [s for s in group if s not in pairs]
            figures.append(Figure(f"{prefix}-{len(figures)}", f"{left.name} and {right.name}, side by side",
                                  panels, sharey=True))
            if rest:
                figures.append(Figure(f"{prefix}-{len(figures)}", ", ".join(s.name for s in rest),
                                      [sweep_panel("", rest, x, unit, exponent, cache, ref)]))
            continue
        title = ", ".join(s.name for s in group)
        figures.append(Figure(f"{prefix}-{len(figures)}", title, [sweep_panel("", group, x, unit, exponent, cache,
                                                                               ref)]))
    for (x, unit), group in labelled.items():
        title = ", ".join(s.name for s in group)
        figures.append(Figure(f"{prefix}-{len(figures)}", title, [category_panel("", group, x, unit)]))
    return figures


def _side_by_side(group: list) -> tuple | None:
    """``NAME 4k`` and ``NAME THP`` (fork's page sizes) of one sweep, to be drawn apart."""
    by_name = {s.name: s for s in group}
    for s in group:
        if s.name.endswith(" 4k") and f"{s.name[:-3]} THP" in by_name:
            return s, by_name[f"{s.name[:-3]} THP"]
    return None


def decision_strips(v: Verdict, rule: Rule | None) -> tuple[list[Strip], str]:
    d = v.decision
    if d is None:
        return [], ""
    if rule is None:
        return [], f"claim {v.claim} is not registered in this perflab: its rule's regions cannot be drawn"
    if rule.version != d.rule_version:
        return [], (f"decided by version {d.rule_version} of the rule; this perflab has version {rule.version}, "
                    "whose regions would misdraw it")
    if not rule.parts:
        if rule.supported is None and rule.refuted is None:
            return [], ""  # exact checks: the checks table says it
        return [_strip(d.quantity, rule, d.value, d.ci, d.outcome.value)], ""
    parts = [(k, p) for k, p in d.thresholds.items() if isinstance(p, dict) and "value" in p]
    if not parts:  # a record that keeps no part (version 1): the headline part, if one is it
        lead = next((r for r in rule.parts if r.quantity == d.quantity), None)
        if lead is not None and (lead.supported or lead.refuted):
            return [_strip(d.quantity, lead, d.value, d.ci, d.outcome.value)], (
                "the record keeps only the headline part of the rule: the other parts are in words above")
        return [], "the record keeps none of the rule's parts apart: their thresholds are in words above"
    strips, missed = [], 0
    for index, (quantity, part) in enumerate(parts):
        match = part_rule(rule, quantity, index, len(parts))
        if match is None:
            missed += 1
            continue
        if match.supported is None and match.refuted is None:
            continue
        ci = tuple(part["ci"]) if part.get("ci") else None
        strips.append(_strip(quantity, match, part.get("value"), ci, str(part.get("outcome") or "")))
    note = f"{missed} part(s) of the record could not be told apart in the rule: not drawn" if missed else ""
    return strips, note if strips or note else "the rule's parts carry no regions to draw"


def part_rule(rule: Rule, quantity: str, index: int, count: int) -> Rule | None:
    """The part of ``rule`` a record's part is: the one of the same quantity; else the
    one whose name or short name the record's quantity holds; else, in a record that
    keeps every part, the one at the same place (all_of keeps them in the rule's order)."""
    for r in rule.parts:
        if r.quantity == quantity:
            return r
    words = quantity.lower()
    named = [r for r in rule.parts if (r.name and r.name.lower() in words) or (r.short and r.short.lower() in words)]
    if len(named) == 1:
        return named[0]
    if count == len(rule.parts):
        return rule.parts[index]
    return None


def _strip(label: str, rule: Rule, value: float | None, ci, outcome: str) -> Strip:
    ends = [v for r in (rule.supported, rule.refuted) if r for v in r.numbers()]
    ends += [v for v in ([value] if _num(value) else []) + list(ci or []) if _num(v)]
    return Strip(label, rule.unit, value if _num(value) else None, ci, rule.supported, rule.refuted, outcome,
                 log=spans(ends, 30))


def aa_strip(v: Verdict) -> Strip | None:
    c = v.control("a/a")
    if c is None or not c.detail.get("ci") or not c.detail.get("bounds"):
        return None
    lo, hi = c.detail["bounds"]
    passed = {True: "passed", False: "failed", None: "not evaluated"}[c.passed]
    return Strip(f"A/A: {c.detail.get('statistic', 'ratio')} of set A / set B", "", c.detail.get("ratio"),
                 tuple(c.detail["ci"]), Region(lo, hi), None, passed)


def plan(v: Verdict, rule: Rule | None, prefix: str) -> Plan:
    strips, note = decision_strips(v, rule)
    return Plan(strips, note, series_figures(v, "evidence", rule, prefix),
                series_figures(v, "control", rule, prefix + "-control"), aa_strip(v))
