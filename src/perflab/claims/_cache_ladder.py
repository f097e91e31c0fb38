"""cache.ladder's pure parts: the working sets that sit inside each cache level, the
words of each row, and the rule on the table of layers (cache.py plans and measures).

Also the pointer-chase sweep both chase claims share (cache.cpu-ladder's curve and
cache.ladder's CPU rows), so their samples are shared too.
"""

from __future__ import annotations

import math
from statistics import median
from typing import Any, Mapping

from perflab.core.claim import Evidence
from perflab.core.record import Decision, Outcome
from perflab.decide import blocked, steps
from perflab.decide.rules import combined_reason, decision, unmeasurable
from perflab.core.rule import Rule

KIB, MIB = 1 << 10, 1 << 20
MIN_SET = 4 * KIB
HALF_OCTAVES_BELOW = 8 * MIB  # 1.5 x 2^k points below this, powers of two above

LAYERS = ("L1", "L2", "L3", "DRAM", "page-cache-hit", "cache-server", "device")
BESIDE = ("dict-lookup", "page-cache-hot")
# the loopback cache servers cache.ladder's plan looks for: (port, kernel variant, name,
# the protocol's ping and the start of its answer)
SERVERS = ((11211, "memcached", "memcached", b"version\r\n", b"VERSION"),
           (6379, "redis", "Redis", b"PING\r\n", b"+PONG"))


def chase_sizes(max_bytes: int) -> tuple[int, ...]:
    """4 KiB, 6 KiB, 8 KiB, 12 KiB, ... (2^k and 1.5 x 2^k) up to 8 MiB, then powers of two
    up to max_bytes: half-octave resolution where L1 and L2 overflow, octaves above, where
    every point costs a build of the whole set (a page fault per 4 KiB)."""
    xs = []
    p = MIN_SET
    while p <= max_bytes:
        xs.append(p)
        if p < HALF_OCTAVES_BELOW and p * 3 // 2 <= max_bytes:
            xs.append(p * 3 // 2)
        p *= 2
    return tuple(xs)


def level_points(caches, xs: tuple[int, ...]) -> dict[str, tuple[int, str]]:
    """Working set for each CPU row: twice the level below's size (4 KiB for L1), so the
    level below overflows, but no more than the geometric middle between the two sizes,
    so the level itself holds the set with room to spare (a last-level cache is shared,
    and a VM may get only part of it): the sweep point nearest that, on a log scale.
    DRAM is the largest working set. Rows sysfs does not report are left out, L1 excepted
    (4 KiB then). Sweep points are shared with cache.cpu-ladder, so are its samples."""
    levels = [(n, b) for n, b in steps.cache_levels(caches)]
    out: dict[str, tuple[int, str]] = {}
    lower = MIN_SET
    for name, size in levels:
        row = "L1" if name.startswith("L1") else name
        if row in out:
            continue
        target = min(2 * lower, math.sqrt(lower * size))
        x = min((v for v in xs if v <= size), key=lambda v: abs(math.log(v / target)), default=xs[0])
        out[row] = (x, f"{steps.human_bytes(x)} working set inside {name} ({steps.human_bytes(size)})")
        lower = size
    if "L1" not in out:
        out["L1"] = (xs[0], f"{steps.human_bytes(xs[0])} working set (sysfs reports no L1 data cache)")
    largest = levels[-1][1] if levels else 0
    out["DRAM"] = (xs[-1], f"{steps.human_bytes(xs[-1])} working set"
                   + (f" ({xs[-1] / largest:.0f}x the largest cache)" if largest else ""))
    return {k: out[k] for k in ("L1", "L2", "L3", "DRAM") if k in out}


# ---- the words of the table, from the plan's facts -----------------------------------------
def server_note(server: Mapping[str, Any] | None) -> str:
    if server:
        return f"{server['name']} on 127.0.0.1:{server['port']}"
    none = ", ".join(f"no {label} on 127.0.0.1:{port}" for port, _variant, label, _ping, _answer in SERVERS)
    return f"no cache server running: {none} (checked with a connect)"


def ladder_notes(facts: Mapping[str, Any]) -> dict[str, str]:
    """Why a layer is not in the table: no cache server found, or a level sysfs lacks."""
    notes = {"cache-server": server_note(facts.get("cache_server"))}
    names = {n if not n.startswith("L1") else "L1" for n, _ in steps.cache_levels(facts.get("caches") or [])}
    for row in ("L2", "L3"):
        if row not in names:
            notes[row] = "sysfs reports no such cache level"
    return notes


def ladder_what(facts: Mapping[str, Any]) -> dict[str, str]:
    """What each row measures (the DRAM row's size follows --param max_mib)."""
    what = {row: f"pointer chase, {why}" for row, why in (facts.get("rows") or {}).items()}
    server = facts.get("cache_server")
    file_kib = (facts.get("page_cache_file_kib") or {}).get("value")
    file_text = f"a {steps.human_bytes(file_kib * KIB)} cached file" if file_kib else "a cached file"
    what.update({
        "page-cache-hit": f"4 KiB pread of a page drawn at random over {file_text} (its pages come from DRAM)",
        "page-cache-hot": "4 KiB pread of the same cached page again and again (L1/L2 and the system call)",
        "cache-server": f"4 KiB GET from {server_note(server)} (TCP loopback)" if server else "",
        "device": "4 KiB pread after eviction (checked with mincore), readahead off",
        "dict-lookup": "Python dict lookup (1,000 str keys), in-process",
    })
    return {k: v for k, v in what.items() if v}


# ---- the rule ----------------------------------------------------------------------------------
def ladder_decide(ev: Evidence, rule: Rule) -> Decision:
    """The layers in CLAIMS.md's order; each adjacent factor (the ratio of medians, this
    layer over the one before) is judged on its CI by the rule's regions: every one
    supported supports, any one refuted (inverted beyond its CI) refutes. The decision
    value is the smallest adjacent factor."""
    series = ev.series
    notes, what = ladder_notes(ev.facts), ladder_what(ev.facts)
    present = [n for n in LAYERS if n in series and series[n].points.get(None)]
    table: list[dict[str, Any]] = []
    factors = []
    for i, name in enumerate(present):
        row: dict[str, Any] = {"layer": name, "median_ns": median(series[name].points[None])}
        if name in what:
            row["what"] = what[name]
        if i:
            prev = present[i - 1]
            try:  # round by round: both layers measured in every round
                est = blocked.ratio_ci(series[name].points[None], series[prev].points[None], ev.conf)
            except ValueError as exc:
                return unmeasurable(rule, str(exc))
            row["factor_over_previous"] = {"value": est.value, "ci": [est.lo, est.hi], "previous": prev}
            factors.append((decision(rule, est, f"{name} / {prev}"), prev, name))
        table.append(row)
    for name in LAYERS:
        if name not in present:
            table.append({"layer": name, "median_ns": None, "not measured": notes.get(name, "not measured here")})
    outside = {"dict-lookup": "an in-process cache", "page-cache-hot": "a hot page, served from the CPU caches"}
    for name in BESIDE:
        if name in series and series[name].points.get(None):
            table.append({"layer": name, "median_ns": median(series[name].points[None]),
                          "outside the order": outside[name], **({"what": what[name]} if name in what else {})})
    evidence = {"table": table}
    if not factors:
        d = unmeasurable(rule, "fewer than 2 layers measured")
        d.evidence = evidence
        return d
    parts = [d for d, _, _ in factors]
    inverted = [f"{b} < {a}" for d, a, b in factors if d.outcome is Outcome.REFUTED]
    low = min(parts, key=lambda d: d.value)
    why = None
    if inverted:
        outcome = Outcome.REFUTED
    elif all(d.outcome is Outcome.SUPPORTED for d in parts):
        outcome = Outcome.SUPPORTED
    else:
        outcome, why = Outcome.INCONCLUSIVE, combined_reason(parts)
    text = " < ".join(f"{r['layer']} {_ns(r['median_ns'])}" for r in table if r.get("median_ns") is not None
                      and r["layer"] in LAYERS)
    reason = text + (f"; inverted: {', '.join(inverted)}" if inverted else "")
    missing = [f"{r['layer']}: {r['not measured']}" for r in table if "not measured" in r]
    if missing:
        reason += "; " + "; ".join(missing)
    return Decision(outcome, rule.quantity, low.value, low.ci, rule.thresholds(), reason=reason, inconclusive=why,
                    rule_version=rule.version, evidence=evidence)


def _ns(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.3g} ms"
    if v >= 1e3:
        return f"{v / 1e3:.3g} us"
    return f"{v:.3g} ns"
