"""cache.cpu-ladder's sweep and rule (CLAIMS.md revision 2).

The sweep is derived from the host: working sets from 4 KiB, half-octaves where L1 and L2
overflow, then doubling, to at least ``beyond_largest_cache`` times the largest cache
sysfs reports; then on, a size at a time, until two successive sizes differ by less than
``level_off`` (the latency has levelled off: DRAM), capped at a quarter of MemAvailable,
and at the size whose next doubling would take longer per process than the budget
allows (a working set of gigabytes takes seconds to build: the build time each process
reports predicts the next). Sizes beyond twice the largest cache are dear and their
effect is large: they are measured in the first ``DEAR_ROUNDS`` rounds only.

Decided (pure) on plateaus: a step is a rise of ``step_rise`` or more from one plateau to
the next, each rise judged round by round (decide/blocked.py); DRAM is the last plateau
where the curve levelled off. A sweep that stopped before levelling off is capped: it may
support, never refute.
"""

from __future__ import annotations

from statistics import median
from typing import Any, Mapping

from perflab.claims._cache_ladder import KIB, MIB, chase_sizes
from perflab.core.claim import Curve, Evidence
from perflab.core.record import Decision, Outcome
from perflab.core.rule import Rule, num
from perflab.decide import blocked, steps
from perflab.decide.rules import all_of, capped, decision, unmeasurable
from perflab.decide.stats import Estimate

DEAR_ROUNDS = 2  # rounds that measure a working set beyond twice the largest cache
# seconds one process of the next size may take (predicted from the last size's build):
# the budget's say in how far a still-rising curve is followed
ALLOWANCE_S = {"quick": 1.5, "default": 3.0, "rigorous": 30.0}
NO_SYSFS_LARGEST = 32 * MIB  # no cache in sysfs: sweep as if the largest were this (recorded)


def largest_cache(caches: list[Mapping[str, Any]]) -> tuple[int, str]:
    levels = steps.cache_levels(caches)
    if levels:
        name, size = levels[-1]
        return size, f"{name} {steps.human_bytes(size)} (sysfs, cpu0)"
    return NO_SYSFS_LARGEST, f"no cache size in sysfs: {steps.human_bytes(NO_SYSFS_LARGEST)} assumed"


def sweep_facts(caches: list[Mapping[str, Any]], mem_available: int | None, budget: str, rule: Rule,
                max_mib: int = 0) -> dict[str, Any]:
    """Where the sweep's numbers come from (stored with the verdict; the rule reads them)."""
    largest, source = largest_cache(caches)
    if max_mib:
        cap, cap_source = max_mib * MIB, f"--param max_mib={max_mib}"
    elif mem_available:
        cap, cap_source = int(mem_available) // 4, f"MemAvailable {int(mem_available) >> 20} MiB / 4"
    else:
        cap, cap_source = 1 << 30, "MemAvailable unknown: 1 GiB"
    base = min(int(rule["beyond_largest_cache"]) * largest, cap)
    return {"largest_cache": {"bytes": largest, "source": source},
            "base_bytes": {"value": base, "source": f"{num(rule['beyond_largest_cache'])} x the largest cache"
                                                    + (f", capped by {cap_source}" if base == cap else "")},
            "cap_bytes": {"value": cap, "source": cap_source},
            "dear_above_bytes": 2 * largest,
            "allowance_s": {"value": ALLOWANCE_S.get(budget, ALLOWANCE_S["default"]), "source": f"budget {budget}"}}


def base_sizes(facts: Mapping[str, Any]) -> tuple[int, ...]:
    return chase_sizes(int(facts["base_bytes"]["value"]))


def rounds_at(facts: Mapping[str, Any]):
    dear = int(facts["dear_above_bytes"])
    return lambda x: DEAR_ROUNDS if x > dear else None


def levelled(points: Mapping[Any, list[float]], rule: Rule) -> bool:
    """The latency no longer rises: the largest size's floor (its fastest process) is less
    than ``level_off`` times the size before's. Floors, not medians: a size beyond twice
    the largest cache has the processes of the first two rounds only, and one slow process
    (a busy host) would otherwise fake a rise, or a fall that reads as one (a symmetric
    test), and carry the sweep on to the time limit, capped "still rising" where the
    latency had levelled off (found on a synthetic host with bimodal processes)."""
    xs = sorted(x for x in points if points[x])
    if len(xs) < 2:
        return False
    a, b = min(points[xs[-2]]), min(points[xs[-1]])
    return b < rule["level_off"] * a


def extender(facts: Mapping[str, Any], rule: Rule):
    """After each round: the next doubling, while the curve is still rising beyond the
    base sweep and the next size fits the cap and the time allowance."""
    base, cap = base_sizes(facts)[-1], int(facts["cap_bytes"]["value"])
    allowance_ms = 1000.0 * float(facts["allowance_s"]["value"])

    def extend(curve: Curve, records: Mapping[Any, list[dict[str, Any]]]) -> tuple[Any, ...]:
        xs = sorted(curve.points)
        top = xs[-1] if xs else 0
        if top < base or levelled(curve.points, rule) or 2 * top > cap:
            return ()
        built = [r.get("build_ms") for r in records.get(top, []) if isinstance(r.get("build_ms"), (int, float))]
        if built and 2 * median(built) > allowance_ms:  # building twice the set takes about twice as long
            return ()
        return (2 * top,)
    return extend


def why_capped(points: Mapping[Any, list[float]], facts: Mapping[str, Any]) -> dict[str, Any] | None:
    """None when the sweep levelled off; else which limit stopped it."""
    xs = sorted(x for x in points if points[x])
    top = xs[-1]
    cap = int(facts["cap_bytes"]["value"])
    if 2 * top > cap:
        return {"limit": facts["cap_bytes"]["source"], "value": steps.human_bytes(cap),
                "why": f"latency still rising at {steps.human_bytes(top)}: the next size exceeds the cap"}
    return {"limit": "time per process", "value": f"{facts['allowance_s']['value']:g} s ({facts['allowance_s']['source']})",
            "why": f"latency still rising at {steps.human_bytes(top)}: the next size would take longer to build than "
                   "the budget allows per process (--rigorous sweeps further)"}


def cpu_ladder_decide(ev: Evidence, rule: Rule) -> Decision:
    """Two parts: the steps between plateaus (each rise judged round by round), and DRAM
    (the last plateau, where the curve levelled off; else the largest set, capped) over L1
    (the smallest set). Where each step sits against the sysfs sizes is evidence only."""
    s = ev.series["chase"]
    step_rule, ratio_part = rule.part("steps"), rule.part("DRAM / L1")
    xs = sorted(x for x in s.points if s.points[x])
    if len(xs) < 2:
        return unmeasurable(rule, "fewer than 2 working sets")
    curve = {x: median(s.points[x]) for x in xs}
    rise = step_rule["step_rise"]
    try:
        plateaus = steps.plateaus(curve, flat=step_rule["flat"], min_points=int(step_rule["min_points"]))
        transitions = steps.transitions(curve, flat=step_rule["flat"], min_points=int(step_rule["min_points"]))
    except ValueError as exc:  # a latency that is not positive and finite
        return unmeasurable(rule, str(exc))
    found = []
    for t in transitions:
        try:
            est = blocked.ratio_ci(blocked.pool([s.points[x] for x in t.high.xs]),
                                   blocked.pool([s.points[x] for x in t.low.xs]), ev.conf)
        except ValueError:
            continue
        found.append((t, est))
    confirmed = [(t, e) for t, e in found if e.lo >= rise]
    possible = [(t, e) for t, e in found if e.hi >= rise]
    covered = sum(len(p.xs) for p in plateaus)
    cap = None if levelled(s.points, rule) else why_capped(s.points, ev.facts)
    dram_xs = list(plateaus[-1].xs) if plateaus and cap is None and plateaus[-1].last == xs[-1] else [xs[-1]]
    try:
        dram_l1 = blocked.ratio_ci(blocked.pool([s.points[x] for x in dram_xs]), s.points[xs[0]], ev.conf)
    except ValueError as exc:
        return unmeasurable(rule, str(exc))
    if not found and 2 * covered < len(xs):  # a jagged curve, no plateau to speak of: noise, not "no step"
        d_steps = unmeasurable(step_rule, f"only {covered} of {len(xs)} sizes lie on a plateau: too noisy to count steps")
    else:
        d_steps = decision(step_rule, Estimate(float(len(confirmed)), float(len(confirmed)), float(len(possible)),
                                               ev.conf))
    d = capped(all_of([d_steps, decision(ratio_part, dram_l1)], rule, lead=1), cap, block=Outcome.REFUTED,
               undecided_too=True)
    levels = steps.cache_levels(ev.facts.get("caches") or [])
    evidence = {
        "steps": [{**t.to_dict(), "rise_ci": [e.lo, e.hi], "counted": e.lo >= rise} for t, e in found],
        "steps_counted": len(confirmed),
        "dram": {"working_sets": dram_xs, "levelled_off": cap is None, **({"capped": cap} if cap else {})},
        "dram_over_l1": {"value": dram_l1.value, "ci": [dram_l1.lo, dram_l1.hi]},
        "levels (sysfs, cpu0)": steps.match_levels([t for t, _ in confirmed], levels),
        "page size": "base pages (MADV_NOHUGEPAGE on the working set; the kernel checks AnonHugePages = 0)",
    }
    text = ", ".join(f"x{e.value:.2g} at {steps.human_bytes(t.at)}" for t, e in confirmed) or "none"
    placed = "; ".join(f"{r['level']} {steps.human_bytes(r['bytes'])}: {'step found' if r['step_found'] else 'no step'}"
                       for r in evidence["levels (sysfs, cpu0)"])
    d.reason = "; ".join(r for r in (f"{len(confirmed)} step(s) of >= {num(rise)}x: {text}"
                                     + (f" (sysfs: {placed})" if placed else ""), d.reason) if r)
    d.evidence = evidence
    return d


__all__ = ["KIB", "base_sizes", "cpu_ladder_decide", "extender", "levelled", "rounds_at", "sweep_facts"]
