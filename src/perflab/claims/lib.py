"""System libraries (CLAIMS.md section 3, `lib.*`).

Seed notes: "glibc is a system library; malloc is in it. malloc is a library function,
not a system call. With MySQL, jemalloc improved scalability with the number of threads."
"""

from __future__ import annotations

import os
from statistics import median
from typing import Any, Mapping

from perflab.claims._lib_allocators import ALLOCATORS, find_allocators, same_lib, scaling_estimate, thread_counts
from perflab.claims._traced import BRK_PROBE, probe_holds, summary, traced
from perflab.core.claim import Check, Checked, Claim, Curve, Evidence, Plan, SeriesSpec, Settings
from perflab.core.params import Param
from perflab.core.record import Control, Decision, Outcome, Reason
from perflab.core.rule import INF, Region, Rule, exact
from perflab.engine.process import kernel_path

__all__ = ["ALLOCATORS", "CLAIMS", "find_allocators", "scaling_estimate", "thread_counts"]

# ---------------------------------------------------------------- lib.malloc-not-syscall

PAIRS = Param("pairs", 1_000_000, 1_000, 100_000_000, "malloc/free pairs per process", unit="pairs")
SMALL = 64  # bytes: a small block, far below the mmap threshold
LEAK_BLOCKS = 100_000  # positive control: 100,000 never-freed 64-byte blocks (6.4 MB)

NOT_SYSCALL = exact(
    "system calls per malloc/free pair < {supported_below}",
    "system calls per malloc/free pair >= {refuted_from}",
    constants={"supported_below": 0.01, "refuted_from": 0.5},
    reason="CLAIMS.md, section 3 (lib.malloc-not-syscall), fixed before the first live run: a malloc that "
           "entered the kernel would make one call per pair, glibc's tcache none; a rate in between is not "
           "decided",
)


def per_malloc_check(calls: Mapping[str, int], pairs: int, rule: Rule) -> Check:
    """The decision of lib.malloc-not-syscall on the traced region counts (pure)."""
    below, refuted = rule["supported_below"], rule["refuted_from"]
    total = sum(calls.values())
    rate = total / pairs
    holds: bool | None
    if rate < below:
        holds = True
    elif rate >= refuted:
        holds = False
    else:
        holds = None
    return Check(
        f"system calls per malloc/free pair ({pairs:,} pairs of {SMALL} bytes, every block written)",
        expected=f"< {below:g} (refuted at >= {refuted:g})",
        observed=rate,
        holds=holds,
        note="between the markers: " + (", ".join(f"{k} {v}" for k, v in sorted(calls.items())) or "none")
        + ("" if holds is not None else "; between the two thresholds: not decided"),
        inconclusive=None if holds is not None else "between",
    )


def brk_control(calls: Mapping[str, int] | None, blocks: int = LEAK_BLOCKS) -> Control:
    """Positive control: never-freed small blocks must grow the heap, so the same counter
    must see brk calls; a probe blind to brk (or to the region) reads 0 and fails."""
    if calls is None:
        return Control("brk-probe", "positive", None, {"reason": "not measured"})
    brk = calls.get("brk", 0)
    return Control("brk-probe", "positive", probe_holds(BRK_PROBE, brk),
                   {"brk_calls": brk, "blocks": blocks, "block_bytes": SMALL,
                    "expected": f"{BRK_PROBE.supported.text()} brk calls"})


def _not_syscall_observe(settings: Settings, measure) -> dict[str, Any]:
    pairs = int(settings.params.get("pairs", PAIRS.default))
    pairs_run, _ = traced("mallocs", "--variant=pairs", f"--n={pairs}", f"--size={SMALL}")
    base, _ = traced("mallocs", "--variant=empty")
    leak, leak_rec = traced("mallocs", "--variant=leak", f"--n={LEAK_BLOCKS}", f"--size={SMALL}")
    return {"pairs": pairs, "traced": pairs_run, "empty": base, "never_freed_blocks": LEAK_BLOCKS,
            "never_freed": {**leak, "heap_growth_bytes": leak_rec["heap_growth_bytes"]}}


def _not_syscall_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    pairs, ev, leak = obs["pairs"], obs["traced"], obs["never_freed"]
    check = per_malloc_check(ev["region"], pairs, rule)
    series = Curve("system calls per malloc", "call", "calls/malloc")
    for name in ("brk", "mmap", "munmap"):
        series.add(name, ev[name] / pairs)
    series.add("total", ev["region_total"] / pairs)
    evidence = {
        "pairs": {**summary(ev), "per_malloc": {k: ev[k] / pairs for k in ("brk", "mmap", "munmap")},
                  "total_per_malloc": ev["region_total"] / pairs, "whole_run": ev["whole_run"]},
        "empty_baseline": summary(obs["empty"]),
        "never_freed_control": summary(leak),
        "counting": f"perflab.observe.trace ({ev['mechanism']}), calls between the kernel's two trace_marker() calls",
    }
    return Checked([check], [brk_control(leak["region"], obs["never_freed_blocks"])], evidence, [series])


# ---------------------------------------------------------------- lib.allocator-scaling

SCALING = Rule(
    quantity="scaling (throughput at T = cores threads / at 1) of another allocator over glibc's",
    short="scaling over glibc's",
    supported=Region(1.2, INF),
    refuted=Region(0.9, 1.1),
    # the source's effect was seen on machines with more cores: with fewer, no effect is
    # not a refutation (a capped host could hide it)
    constants={"refute_above_cores": 8},
    supported_text="scaling over glibc's {supported} at T = cores in some pattern",
    refuted_text="scaling over glibc's {refuted} in both patterns (only with more than {refute_above_cores} cores)",
    version=2,
    reason="CLAIMS.md, section 3 (lib.allocator-scaling), fixed before the first live run: per pattern, "
           "clearly better scaling than glibc's supports, about the same refutes; the source (MySQL with "
           "jemalloc) saw the effect on machines with more than refute_above_cores cores. Revision 2: no "
           "allocator other than glibc's is skipped with the install line (a comparison without its other "
           "side), T is the number of CPUs this process may use, and a refutation needs more than 8 of them",
)
RUN_MS = Param("ms", 30, 5, 10_000, "time each measured phase runs", unit="ms")
MAX_BLOCK = 256  # small objects: 16 .. 256 bytes
PATTERNS = ("thread-local", "cross-thread")


def series_name(allocator: str, pattern: str) -> str:
    return f"{allocator} {pattern}"


def preload_name(allocator: str, pattern: str) -> str:
    return f"{allocator} {pattern} preload verified"


def cpus_allowed(host: Mapping[str, Any]) -> int:
    """T: the CPUs this process may run on (sched_getaffinity(2)), not the cores online."""
    allowed = host.get("cpus_allowed")
    return len(allowed) if allowed else int(host.get("cores_online") or len(os.sched_getaffinity(0)))


def nothing_to_compare(facts: Mapping[str, Any]) -> str | None:
    """Why there is no comparison (no allocator but glibc's), with the install line."""
    if facts.get("allocators_found"):
        return None
    missing = facts.get("missing_packages") or {}
    return ("no allocator other than glibc's is installed: nothing to compare glibc with"
            + (f" (apt-get install {' '.join(missing.values())})" if missing else ""))


def recorded_scaling_facts(v) -> dict[str, Any]:
    """An older record's facts: the allocators it measured beside glibc (its series), the
    packages it named for the others (its evidence) and T (its decision's cores)."""
    derived = v.evidence.get("derived") or {}
    measured = {s.name[: -len(" thread-local")] for s in v.series if s.name.endswith(" thread-local")} - {"glibc"}
    found = dict(derived.get("allocators_found") or {a: a for a in measured})
    missing = {k: str(cmd).split()[-1] for k, cmd in (derived.get("not_installed") or {}).items()}
    cores = (v.decision.thresholds.get("cores") if v.decision else None) or len(v.host.cpus_allowed or []) or 1
    return {"cores": int(cores), "allocators_found": found, "missing_packages": missing}


def _plan_scaling(settings: Settings) -> Plan:
    cores = cpus_allowed(settings.host)
    ms = int(settings.params.get("ms", RUN_MS.default))
    found, missing = find_allocators()
    kernel = str(kernel_path("mallocs"))
    specs = []
    for alloc, lib in [("glibc", None), *found.items()]:
        env = ["/usr/bin/env", f"LD_PRELOAD={lib}"] if lib else ["/usr/bin/env", "-u", "LD_PRELOAD"]
        for p, pattern in enumerate(PATTERNS):
            specs.append(SeriesSpec(
                name=series_name(alloc, pattern), x="threads", unit="malloc/free pairs per s",
                xs=thread_counts(cores),
                argv=lambda t, env=env, p=p: [*env, kernel, "--variant=scaling", f"--threads={t}",
                                              f"--pattern={p}", f"--ms={ms}", f"--size={MAX_BLOCK}"],
                value=lambda r: float(r["ops_per_s"]),
                derived=(
                    (preload_name(alloc, pattern), "1 = malloc resolved into the allocator",
                     lambda r, lib=lib: 1.0 if same_lib(r["malloc_library"], lib) else 0.0),
                    (f"{alloc} {pattern} per thread", "pairs per s per thread",
                     lambda r: float(r["ops_per_s_per_thread"])),
                    *(((f"{alloc} ring only", "transfers per s", lambda r: float(r["ring_only_ops_per_s"])),)
                      if p == 1 else ()),
                ),
                timeout_s=30.0,
            ))
    # what the rule needs from the host: the allocators found (measured beside glibc), the
    # packages of the others (the install line) and the cores (T = cores; a refutation
    # needs enough of them)
    return Plan(specs, {"cores": cores, "cores_source": "CPUs this process may use (sched_getaffinity)",
                        "allocators_found": found, "missing_packages": missing})


def allocators(ev: Evidence) -> list[str]:
    """glibc and the allocators the plan found (ev.facts), in the order measured."""
    return ["glibc", *(ev.facts.get("allocators_found") or {})]


def cores_of(ev: Evidence) -> int:
    """T = cores: the plan's fact (the sweep runs to 2 x cores)."""
    return int(ev.facts["cores"])


def verified(series: Mapping[str, Curve], alloc: str, pattern: str) -> bool:
    s = series.get(preload_name(alloc, pattern))
    vals = [v for pts in (s.points.values() if s else ()) for v in pts]
    return bool(vals) and all(v == 1.0 for v in vals)


def _pattern(outs: list[tuple[Outcome, Reason | None]]) -> tuple[Outcome, Reason | None]:
    """One pattern: supported if an allocator supports, refuted if every one refutes."""
    if any(o is Outcome.SUPPORTED for o, _ in outs):
        return Outcome.SUPPORTED, None
    if outs and all(o is Outcome.REFUTED for o, _ in outs):
        return Outcome.REFUTED, None
    undecided = [why for o, why in outs if o is Outcome.INCONCLUSIVE]
    return Outcome.INCONCLUSIVE, (Reason.BETWEEN if undecided and all(w is Reason.BETWEEN for w in undecided)
                                  else Reason.NOISY)


def decide_scaling(ev: Evidence, rule: Rule) -> Decision:
    series = ev.series
    cores = cores_of(ev)
    thresholds: dict[str, Any] = {**rule.thresholds(), "cores": cores}
    quantity = f"scaling (throughput at {cores} threads / at 1) of another allocator over glibc's"
    others = allocators(ev)[1:]
    if not others:  # the claim's skip rule says so before any decision: kept for a direct call
        return Decision(Outcome.INCONCLUSIVE, quantity, None, None, thresholds,
                        reason=nothing_to_compare(ev.facts) or "no other allocator", inconclusive=Reason.CAPPED,
                        rule_version=rule.version)
    per_pattern: dict[str, tuple[Outcome, Reason | None]] = {}
    best: tuple[float, float, float] | None = None
    reasons = []
    for pattern in PATTERNS:
        g = series[series_name("glibc", pattern)].points
        if not verified(series, "glibc", pattern) or 1 not in g or cores not in g:
            reasons.append(f"{pattern}: glibc not measured or not verified")
            per_pattern[pattern] = (Outcome.INCONCLUSIVE, Reason.NOISY)
            continue
        outs = []
        for a in others:
            curve = series.get(series_name(a, pattern))
            if not verified(series, a, pattern):
                reasons.append(f"{a} {pattern}: LD_PRELOAD did not take effect (dladdr of malloc), not used")
                continue
            if curve is None or 1 not in curve.points or cores not in curve.points:
                continue
            s = curve.points
            try:
                est = scaling_estimate(s[1], s[cores], g[1], g[cores], ev.conf)
            except ValueError as exc:
                reasons.append(f"{a} {pattern}: {exc}")
                continue
            out, why = rule.judge(est[1], est[2])
            thresholds[f"{a} {pattern}"] = {"value": est[0], "ci": [est[1], est[2]], "outcome": out.value}
            outs.append((out, why))
            if best is None or est[0] > best[0]:
                best = est
        per_pattern[pattern] = _pattern(outs)
    outcomes = [o for o, _ in per_pattern.values()]
    why = None
    if Outcome.SUPPORTED in outcomes:
        out = Outcome.SUPPORTED
    elif all(o is Outcome.REFUTED for o in outcomes):
        need = rule["refute_above_cores"]
        if cores <= need:
            out, why = Outcome.INCONCLUSIVE, Reason.CAPPED
            reasons.append(f"no effect on {cores} CPUs, but the source saw it with more than "
                           f"{need:g}: a refutation needs such a machine")
        else:
            out = Outcome.REFUTED
    else:
        undecided = [w for o, w in per_pattern.values() if o is Outcome.INCONCLUSIVE]
        out = Outcome.INCONCLUSIVE
        why = Reason.BETWEEN if all(w is Reason.BETWEEN for w in undecided) else Reason.NOISY
        need = rule["refute_above_cores"]
        cis = [v["ci"] for v in thresholds.values() if isinstance(v, dict) and "ci" in v]
        if (cores <= need and rule.supported and rule.refuted and cis and max(hi for _, hi in cis) < rule.supported.lo
                and any(lo <= rule.refuted.hi for lo, _ in cis)):
            # no interval reaches support, one reaches the refutation this host may not give:
            # more samples cannot decide here, a machine with more CPUs can (the cap, not noise)
            why = Reason.CAPPED
            reasons.append(f"no interval reaches {rule.supported.lo:g} on {cores} CPUs, and a refutation needs "
                           f"more than {need:g}")
    thresholds["patterns"] = {p: o.value for p, (o, _w) in per_pattern.items()}
    value, ci = (best[0], (best[1], best[2])) if best else (None, None)
    return Decision(out, quantity, value, ci, thresholds, reason="; ".join(reasons), inconclusive=why,
                    rule_version=rule.version)


def preload_control(ev: Evidence) -> Control:
    """Positive control: in every measured process malloc resolved (dladdr) into the
    library that was meant to serve it: glibc's libc, or the LD_PRELOADed allocator."""
    status = {f"{a} {p}": verified(ev.series, a, p) for a in allocators(ev) for p in PATTERNS}
    return Control("preload-verified", "positive", all(status.values()) if status else None,
                   {"verified": status, "probe": "dladdr(dlsym(RTLD_DEFAULT, \"malloc\")) in the measured process"})


def _derive_scaling(ev: Evidence) -> dict[str, Any]:
    series = ev.series
    table: dict[str, Any] = {}
    for a in allocators(ev):
        for p in PATTERNS:
            pts = series[series_name(a, p)].points
            m = {t: median(v) for t, v in sorted(pts.items())}
            table[f"{a} {p}"] = {
                "ops_per_s": m,
                "scaling": {t: v / m[1] for t, v in m.items()} if 1 in m and m[1] else None,
            }
        ring = series.get(f"{a} ring only")
        if ring:
            table[f"{a} ring only"] = {"transfers_per_s": {t: median(v) for t, v in sorted(ring.points.items())}}
    missing = ev.facts.get("missing_packages") or {}
    return {"allocators_found": dict(ev.facts.get("allocators_found") or {}),
            "not_installed": {k: f"apt-get install {v}" for k, v in missing.items()}, "table": table}


CLAIMS = [
    Claim(
        id="lib.malloc-not-syscall",
        statement="a million small malloc/free calls make almost no system calls",
        seed_point="3. malloc is a library function, not a system call",
        mechanism=(
            "malloc(3) and free(3) are glibc functions (malloc/malloc.c): a small free()d "
            "chunk goes to the thread's tcache or a fastbin and the next malloc of that "
            "size takes it back, all in user space. The kernel is entered only to get more "
            "address space: brk(2) to grow the main heap (sysmalloc) and mmap(2) for large "
            "blocks or new arenas. A kernel makes a million malloc(64)/write/free pairs "
            "between two trace markers and perflab.observe.trace counts every system call between "
            "them; a never-freed run of small blocks, which must grow the heap, shows the "
            "same counter does see brk."
        ),
        kernel="mallocs",
        rule=NOT_SYSCALL,
        observe=_not_syscall_observe,
        judge=_not_syscall_judge,
        params=(PAIRS,),
    ),
    Claim(
        id="lib.allocator-scaling",
        statement="jemalloc (and tcmalloc, mimalloc where installed) scale better with threads than glibc malloc",
        seed_point="3. with MySQL, jemalloc improved scalability with the number of threads",
        mechanism=(
            "glibc's malloc gives each thread a tcache and, under contention, extra arenas "
            "(up to 8 x cores, M_ARENA_MAX in mallopt(3)), but a freed block goes back to "
            "the arena it came from under that arena's mutex (malloc/arena.c, _int_free). "
            "jemalloc (thread caches, per-CPU arenas), tcmalloc (per-thread/per-CPU caches "
            "over central free lists) and mimalloc (per-thread heaps with a separate "
            "concurrent free list per page for frees from other threads) avoid shared locks "
            "on the fast path. Throughput of 16..256-byte malloc/free pairs is measured at "
            "1 .. 2 x cores threads, each allocator loaded with LD_PRELOAD (ld.so(8)) and "
            "verified in the measured process with dladdr(3); scaling = throughput at T "
            "threads over throughput at 1, compared with glibc's."
        ),
        kernel="mallocs",
        rule=SCALING,
        plan=_plan_scaling,
        decide=decide_scaling,
        skip=nothing_to_compare,
        recorded_facts=recorded_scaling_facts,
        params=(RUN_MS,),
        aa=("glibc thread-local", 1),
        positive=preload_control,
        derive=_derive_scaling,
    ),
]
