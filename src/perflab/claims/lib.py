"""System libraries (CLAIMS.md section 3, `lib.*`).

Seed notes: "glibc is a system library; malloc is in it. malloc is a library function,
not a system call. With MySQL, jemalloc improved scalability with the number of threads."
"""

from __future__ import annotations

import math
import os
import random
import re
import subprocess
from statistics import median
from typing import Any, Mapping

from perflab.core.claim import Check, Checked, Claim, SeriesSpec, Settings
from perflab.claims._traced import summary, traced
from perflab.core.model import Control, Decision, Outcome, Param, Series
from perflab.engine.process import kernel_path

# ---------------------------------------------------------------- lib.malloc-not-syscall

PAIRS = Param("pairs", 1_000_000, 1_000, 100_000_000, "malloc/free pairs per process", unit="pairs")
SMALL = 64  # bytes: a small block, far below the mmap threshold
LEAK_BLOCKS = 100_000  # positive control: 100,000 never-freed 64-byte blocks (6.4 MB)
NOT_SYSCALL_SUPPORTED = 0.01  # system calls per malloc below this: supported
NOT_SYSCALL_REFUTED = 0.5  # this or more: refuted


def per_malloc_check(calls: Mapping[str, int], pairs: int) -> Check:
    """The decision of lib.malloc-not-syscall on the traced region counts (pure)."""
    total = sum(calls.values())
    rate = total / pairs
    holds: bool | None
    if rate < NOT_SYSCALL_SUPPORTED:
        holds = True
    elif rate >= NOT_SYSCALL_REFUTED:
        holds = False
    else:
        holds = None
    return Check(
        f"system calls per malloc/free pair ({pairs:,} pairs of {SMALL} bytes, every block written)",
        expected=f"< {NOT_SYSCALL_SUPPORTED} (refuted at >= {NOT_SYSCALL_REFUTED})",
        observed=rate,
        holds=holds,
        note="between the markers: " + (", ".join(f"{k} {v}" for k, v in sorted(calls.items())) or "none")
        + ("" if holds is not None else "; between the two thresholds: not decided"),
    )


def brk_control(calls: Mapping[str, int] | None, blocks: int = LEAK_BLOCKS) -> Control:
    """Positive control: never-freed small blocks must grow the heap, so the same counter
    must see brk calls; a probe blind to brk (or to the region) reads 0 and fails."""
    if calls is None:
        return Control("brk-probe", "positive", None, {"reason": "not measured"})
    brk = calls.get("brk", 0)
    return Control("brk-probe", "positive", brk >= 1,
                   {"brk_calls": brk, "blocks": blocks, "block_bytes": SMALL, "expected": ">= 1 brk call"})


def _check_not_syscall(settings: Settings, measure) -> Checked:
    pairs = int(settings.params.get("pairs", PAIRS.default))
    r, rec = traced("mallocs", "--variant=pairs", f"--n={pairs}", f"--size={SMALL}")
    base, _ = traced("mallocs", "--variant=empty")
    leak, leak_rec = traced("mallocs", "--variant=leak", f"--n={LEAK_BLOCKS}", f"--size={SMALL}")
    ev = summary(r)
    check = per_malloc_check(ev["region"], pairs)
    series = Series("system calls per malloc", "call", "calls/malloc")
    for name in ("brk", "mmap", "munmap"):
        series.add(name, ev[name] / pairs)
    series.add("total", ev["region_total"] / pairs)
    evidence = {
        "pairs": {**ev, "per_malloc": {k: ev[k] / pairs for k in ("brk", "mmap", "munmap")},
                  "total_per_malloc": ev["region_total"] / pairs, "whole_run": dict(r.syscalls)},
        "empty_baseline": summary(base),
        "never_freed_control": {**summary(leak), "heap_growth_bytes": leak_rec["heap_growth_bytes"]},
        "counting": f"perflab.observe.trace ({r.mechanism}), calls between the kernel's two trace_marker() calls",
    }
    return Checked([check], [brk_control(summary(leak)["region"])], evidence, [series])


# ---------------------------------------------------------------- lib.allocator-scaling

ALLOCATORS = {  # name -> (sonames to look for, Debian package that brings it)
    "jemalloc": (("libjemalloc.so.2", "libjemalloc.so"), "libjemalloc2"),
    "tcmalloc": (("libtcmalloc_minimal.so.4", "libtcmalloc.so.4", "libtcmalloc_minimal.so"), "libtcmalloc-minimal4"),
    "mimalloc": (("libmimalloc.so.2", "libmimalloc.so.2.0", "libmimalloc.so"), "libmimalloc2.0"),
}
LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib",
            "/lib64", "/lib")
SCALING_SUPPORTED = 1.2  # other allocator's scaling over glibc's, at T = cores
SCALING_REFUTED = (0.9, 1.1)
CORES_FOR_REFUTATION = 8  # the source's effect was seen with more cores (CLAIMS.md)
RUN_MS = Param("ms", 30, 5, 10_000, "time each measured phase runs", unit="ms")
MAX_BLOCK = 256  # small objects: 16 .. 256 bytes


def _ldconfig() -> dict[str, str]:
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[str, str] = {}
    # "libjemalloc.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/libjemalloc.so.2": 64-bit
    # entries first (a 32-bit library would not load, and dladdr would show it)
    lines = sorted(out.splitlines(), key=lambda ln: "64" not in ln.split("=>")[0])
    for line in lines:
        m = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
        if m:
            found.setdefault(m.group(1), m.group(3))
    return found


def find_allocators() -> tuple[dict[str, str], dict[str, str]]:
    """({name: library path} found on this host, {name: apt package} for the others)."""
    cache = _ldconfig()
    found, missing = {}, {}
    for name, (sonames, package) in ALLOCATORS.items():
        path = next((cache[s] for s in sonames if s in cache), None)
        if path is None:
            path = next((os.path.join(d, s) for s in sonames for d in LIB_DIRS if os.path.exists(os.path.join(d, s))), None)
        if path:
            found[name] = os.path.realpath(path)
        else:
            missing[name] = package
    return found, missing


def thread_counts(cores: int) -> tuple[int, ...]:
    """1, 2, 4, ... up to 2 x cores, with the core count itself included."""
    xs, t = {1, cores, 2 * cores}, 2
    while t < 2 * cores:
        xs.add(t)
        t *= 2
    return tuple(sorted(xs))


PATTERNS = ("thread-local", "cross-thread")


def series_name(allocator: str, pattern: str) -> str:
    return f"{allocator} {pattern}"


def preload_name(allocator: str, pattern: str) -> str:
    return f"{allocator} {pattern} preload verified"


def _same_lib(got: str, want: str | None) -> bool:
    if want is None:  # glibc: malloc must resolve into libc itself
        return bool(re.search(r"/libc(-[0-9.]+)?\.so", got))
    return os.path.realpath(got) == want or os.path.basename(os.path.realpath(got)) == os.path.basename(want)


def _plan_scaling(settings: Settings) -> list[SeriesSpec]:
    cores = int(settings.host.get("cores_online") or os.cpu_count() or 1)
    ms = int(settings.params.get("ms", RUN_MS.default))
    found, _missing = find_allocators()
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
                     lambda r, lib=lib: 1.0 if _same_lib(r["malloc_library"], lib) else 0.0),
                    (f"{alloc} {pattern} per thread", "pairs per s per thread",
                     lambda r: float(r["ops_per_s_per_thread"])),
                    *(((f"{alloc} ring only", "transfers per s", lambda r: float(r["ring_only_ops_per_s"])),)
                      if p == 1 else ()),
                ),
                timeout_s=30.0,
            ))
    return specs


def _allocators_in(series: Mapping[str, Series]) -> list[str]:
    return [name[: -len(" thread-local")] for name in series if name.endswith(" thread-local")]


def verified(series: Mapping[str, Series], alloc: str, pattern: str) -> bool:
    s = series.get(preload_name(alloc, pattern))
    vals = [v for pts in (s.points.values() if s else ()) for v in pts]
    return bool(vals) and all(v == 1.0 for v in vals)


def scaling_estimate(one: list[float], many: list[float], g_one: list[float], g_many: list[float],
                     conf: float, rng: random.Random, n_boot: int) -> tuple[float, float, float]:
    """(value, lo, hi): [median(many)/median(one)] / [glibc's same], percentile bootstrap
    resampling the four sets of per-process throughputs independently."""
    def stat(a, b, c, d):
        return (median(b) / median(a)) / (median(d) / median(c))

    value = stat(one, many, g_one, g_many)
    reps = []
    for _ in range(n_boot):
        reps.append(stat(*[[rng.choice(s) for _ in s] for s in (one, many, g_one, g_many)]))
    reps.sort()
    alpha = (1 - conf) / 2
    lo = reps[max(0, int(math.floor(alpha * (n_boot - 1))))]
    hi = reps[min(n_boot - 1, int(math.ceil((1 - alpha) * (n_boot - 1))))]
    return value, lo, hi


def _outcome(lo: float, hi: float) -> Outcome:
    if lo >= SCALING_SUPPORTED:
        return Outcome.SUPPORTED
    if SCALING_REFUTED[0] <= lo and hi <= SCALING_REFUTED[1]:
        return Outcome.REFUTED
    return Outcome.INCONCLUSIVE


def decide_scaling(series: Mapping[str, Series], conf, rng, n_boot) -> Decision:
    allocs = _allocators_in(series)
    any_series = series[series_name("glibc", "thread-local")]
    threads = sorted(any_series.points)
    cores = threads[-1] // 2 if threads[-1] >= 2 else 1
    thresholds: dict[str, Any] = {
        "supported": f"scaling over glibc's >= {SCALING_SUPPORTED} at T = cores in some pattern",
        "refuted": f"within [{SCALING_REFUTED[0]}, {SCALING_REFUTED[1]}] in both patterns, on >= {CORES_FOR_REFUTATION} cores",
        "cores": cores,
    }
    quantity = f"scaling (throughput at {cores} threads / at 1) of another allocator over glibc's"
    others = [a for a in allocs if a != "glibc"]
    if not others:
        return Decision(Outcome.INCONCLUSIVE, quantity, None, None, thresholds,
                        reason="no other allocator is installed here: nothing to compare glibc with")
    per_pattern: dict[str, Outcome] = {}
    best: tuple[float, float, float] | None = None
    reasons = []
    for pattern in PATTERNS:
        g = series[series_name("glibc", pattern)].points
        if not verified(series, "glibc", pattern) or 1 not in g or cores not in g:
            reasons.append(f"{pattern}: glibc not measured or not verified")
            per_pattern[pattern] = Outcome.INCONCLUSIVE
            continue
        outs = []
        for a in others:
            s = series[series_name(a, pattern)].points
            if not verified(series, a, pattern):
                reasons.append(f"{a} {pattern}: LD_PRELOAD did not take effect (dladdr of malloc), not used")
                continue
            if 1 not in s or cores not in s:
                continue
            est = scaling_estimate(s[1], s[cores], g[1], g[cores], conf, rng, n_boot)
            out = _outcome(est[1], est[2])
            thresholds[f"{a} {pattern}"] = {"value": est[0], "ci": [est[1], est[2]], "outcome": out.value}
            outs.append(out)
            if best is None or est[0] > best[0]:
                best = est
        if outs and Outcome.SUPPORTED in outs:
            per_pattern[pattern] = Outcome.SUPPORTED
        elif outs and all(o is Outcome.REFUTED for o in outs):
            per_pattern[pattern] = Outcome.REFUTED
        else:
            per_pattern[pattern] = Outcome.INCONCLUSIVE
    if Outcome.SUPPORTED in per_pattern.values():
        out = Outcome.SUPPORTED
    elif all(o is Outcome.REFUTED for o in per_pattern.values()):
        if cores < CORES_FOR_REFUTATION:
            out = Outcome.INCONCLUSIVE
            reasons.append(f"no effect on {cores} cores, but the source saw it with more than "
                           f"{CORES_FOR_REFUTATION}: a refutation needs such a machine")
        else:
            out = Outcome.REFUTED
    else:
        out = Outcome.INCONCLUSIVE
    thresholds["patterns"] = {p: o.value for p, o in per_pattern.items()}
    value, ci = (best[0], (best[1], best[2])) if best else (None, None)
    return Decision(out, quantity, value, ci, thresholds, reason="; ".join(reasons))


def preload_control(series: Mapping[str, Series], conf, rng, n_boot) -> Control:
    """Positive control: in every measured process malloc resolved (dladdr) into the
    library that was meant to serve it: glibc's libc, or the LD_PRELOADed allocator."""
    status = {f"{a} {p}": verified(series, a, p) for a in _allocators_in(series) for p in PATTERNS}
    return Control("preload-verified", "positive", all(status.values()) if status else None,
                   {"verified": status, "probe": "dladdr(dlsym(RTLD_DEFAULT, \"malloc\")) in the measured process"})


def _derive_scaling(series: Mapping[str, Series]) -> dict[str, Any]:
    found, missing = find_allocators()
    table: dict[str, Any] = {}
    for a in _allocators_in(series):
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
    return {"allocators_found": found, "not_installed": {k: f"apt-get install {v}" for k, v in missing.items()},
            "table": table}


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
        thresholds={"supported": f"system calls per malloc < {NOT_SYSCALL_SUPPORTED}",
                    "refuted": f">= {NOT_SYSCALL_REFUTED}"},
        check=_check_not_syscall,
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
        thresholds={"supported": f"scaling ratio over glibc's >= {SCALING_SUPPORTED} at T = cores (some pattern)",
                    "refuted": f"within [{SCALING_REFUTED[0]}, {SCALING_REFUTED[1]}] in both patterns "
                               f"(only with >= {CORES_FOR_REFUTATION} cores)"},
        plan=_plan_scaling,
        decide=decide_scaling,
        params=(RUN_MS,),
        aa=("glibc thread-local", 1),
        # whole processes run at ~11 instead of ~20 M pairs/s now and then on this VM
        # (host interference; ASLR off changes nothing), so the A/A needs more of them
        aa_per_round=8,
        positive=preload_control,
        derive=_derive_scaling,
    ),
]
