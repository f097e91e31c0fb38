"""Truth models of the synthetic hosts (tests/synthetic_hosts.py): for each measured claim,
what its kernels would report on a host in a world, at the magnitudes of the recorded runs
of tests/fixtures/hosts/ (the AMD and Intel guests: ``Host.profile``).

A world is what is true there: ``true`` (the claim holds), ``false`` (its refutation holds),
``between`` (an effect between the two thresholds), ``edge`` (the truth on a threshold), and
a few named for what they test (``big-fixed``, ``slight``...). A model returns the kernel
record's values: "v" (the series' own) and each derived series by name, each with its kind
("time": the host's slowdown and noise apply; "rate": divided by them; "exact": counts and
flags, untouched).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from perflab.core.errors import KernelUnsupported

if TYPE_CHECKING:
    from synthetic_hosts import Host

K, M, G = 1 << 10, 1 << 20, 1 << 30

# ---- magnitudes of the recorded runs ------------------------------------------------------------
def interp(points: list[tuple[float, float]], x: float) -> float:
    """Piecewise linear in log x and log y through ``points`` (sorted), flat beyond the ends."""
    xs = [p[0] for p in points]
    if x <= xs[0]:
        return points[0][1]
    if x >= xs[-1]:
        return points[-1][1]
    i = bisect_left(xs, x)
    (x0, y0), (x1, y1) = points[i - 1], points[i]
    f = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
    return math.exp(math.log(y0) + f * (math.log(y1) - math.log(y0)))


# ns per watched fd (select, poll) and per delivered event (epoll, all ready) at N, from the
# recorded runs: flat up to 4k fds, then the step where the fd arrays outgrow L2
PER_FD = {
    "amd": {"select": [(1000, 26.4), (2000, 26.0), (4000, 26.3), (10000, 29.8), (20000, 37.6)],
            "poll": [(1000, 25.3), (2000, 24.8), (4000, 25.4), (10000, 28.9), (20000, 30.3)],
            "all-ready": [(1000, 88.6), (2000, 89.7), (4000, 94.3), (10000, 176.4), (20000, 226.4)]},
    "intel": {"select": [(1000, 22.5), (2000, 22.4), (4000, 22.3), (10000, 46.8), (20000, 56.0)],
              "poll": [(1000, 22.7), (2000, 22.8), (4000, 22.6), (10000, 51.3), (20000, 58.9)],
              "all-ready": [(1000, 52.9), (2000, 52.8), (4000, 61.5), (10000, 76.2), (20000, 99.6)]},
}
# one-ready epoll_wait, the syscall entry of a select/poll call
CALL_NS = {"amd": {"select": 450.0, "poll": 270.0, "epoll-lt": 374.0, "epoll-et": 394.0, "syscall": 164.0},
           "intel": {"select": 160.0, "poll": 105.0, "epoll-lt": 153.0, "epoll-et": 153.0, "syscall": 64.0}}
# pointer-chase latency (ns) by working set, as recorded; beyond, DRAM levels off
CHASE = {
    "amd": [(4 * K, 1.07), (32 * K, 1.07), (48 * K, 3.8), (256 * K, 3.8), (384 * K, 4.4), (512 * K, 4.8),
            (768 * K, 6.5), (1 * M, 9.0), (1.5 * M, 11.8), (2 * M, 13.3), (3 * M, 14.7), (4 * M, 15.7),
            (6 * M, 24.7), (8 * M, 60.5), (16 * M, 111.7), (32 * M, 140.2), (64 * M, 147.8), (128 * M, 155.8),
            (256 * M, 176.9), (512 * M, 182.0), (1 * G, 186.0)],
    # recorded to 512 MiB (still rising there); then levelling off at DRAM
    "intel": [(4 * K, 1.19), (48 * K, 1.19), (64 * K, 3.8), (384 * K, 3.8), (512 * K, 4.3), (768 * K, 4.7),
              (1 * M, 4.9), (1.5 * M, 8.6), (2 * M, 19.5), (3 * M, 34.6), (4 * M, 34.7), (6 * M, 35.7),
              (8 * M, 38.7), (16 * M, 44.4), (32 * M, 47.0), (64 * M, 58.4), (128 * M, 92.8), (256 * M, 171.3),
              (512 * M, 220.5), (1 * G, 238.0), (2 * G, 246.0), (4 * G, 250.0)],
}
SWITCH_NS = {"amd": {"register": 6.8, "swapcontext": 235.0, "goroutine": 140.0, "thread-futex": 2066.0,
                     "thread-pipe": 2507.0, "process-futex": 2359.0, "process-pipe": 2497.0, "asyncio": 1757.0,
                     "generator": 13.9, "python-thread": 5600.0},
             "intel": {"register": 8.1, "swapcontext": 146.0, "goroutine": 95.0, "thread-futex": 691.0,
                       "thread-pipe": 863.0, "process-futex": 856.0, "process-pipe": 904.0, "asyncio": 1400.0,
                       "generator": 8.35, "python-thread": 2011.0}}
SPACE_NS = {"amd": {"function-call": 1.07, "vdso-clock_gettime": 22.2, "process-switch": 2574.0},
            "intel": {"function-call": 0.8, "vdso-clock_gettime": 15.6, "process-switch": 924.0}}
CREATE_NS = {"amd": {"thread": 20_300.0, "fork": 116_000.0, "clone-vm": 20_000.0},
             "intel": {"thread": 6_950.0, "fork": 59_800.0, "clone-vm": 7_360.0}}
# fork: empty parent's fork (ns), cost per MiB touched (ns), a part that appears once the parent
# has memory (ns, the Intel guest's: affine from 128 MiB with an intercept); THP's
FORK = {"amd": {"empty": 137_000.0, "per_mib": 29_600.0, "bump": 0.0, "thp": 140_000.0, "thp_per_mib": 690.0},
        "intel": {"empty": 92_500.0, "per_mib": 10_600.0, "bump": 700_000.0, "thp": 129_000.0, "thp_per_mib": 710.0}}
SPAWN = {"amd": {"vfork": 30_000.0, "vfork_per_mib": 0.4, "posix_spawn": 508_000.0, "spawn_per_mib": 9.0},
         "intel": {"vfork": 10_400.0, "vfork_per_mib": 0.9, "posix_spawn": 609_000.0, "spawn_per_mib": 20.0}}
PAGES = {"amd": {"cached": 519.0, "cold": 44_500.0, "direct": 43_600.0, "hot": 518.0, "server": 25_000.0,
                 "dict": 12.4, "stat": 450.0, "stat-cold": 12_000.0},
         "intel": {"cached": 244.0, "cold": 58_200.0, "direct": 59_900.0, "hot": 245.0, "server": 18_000.0,
                   "dict": 10.3, "stat": 300.0, "stat-cold": 9_000.0}}
CHASE_BUILD_MS_PER_GIB = 1600.0  # building a Sattolo cycle: a fault per page, a random write per line


# ---- worlds -----------------------------------------------------------------------------------
@dataclass
class Ctx:
    """What a truth model may read: the host, the world, the series, x and the kernel argv
    the real plan would have run."""

    host: Host
    world: str
    series: str
    x: Any
    argv: list[str]
    rng: random.Random

    @property
    def p(self) -> str:
        return self.host.profile

    def arg(self, key: str, default: Any = None) -> Any:
        for a in self.argv:
            if a.startswith(f"--{key}="):
                return a.split("=", 1)[1]
        return default

    def syscall(self) -> float:
        return self.host.syscall_ns or CALL_NS[self.p]["syscall"]


# a truth model returns the record's values: "v" (the series' own) and each derived series by
# name, each as (value, kind): "time" takes the host's slowdown and noise, "rate" divided by
# them, "exact" (counts, flags) neither
Values = dict[str, tuple[float, str]]
Model = Callable[[Ctx], Values]


def t(v: float) -> tuple[float, str]:
    return (v, "time")


def _fixed(ctx: Ctx, call: str) -> float:
    """A call's fixed cost: the profile's, or the sandbox's system call on top."""
    return CALL_NS[ctx.p][call] + (ctx.host.syscall_ns or 0.0)


def io_linear(call: str) -> Model:
    def model(ctx: Ctx) -> Values:
        n = int(ctx.x)
        if ctx.world == "edge":  # a top-decade exponent of exactly the supported bound, 0.8
            return {"v": t(40.0 * n ** 0.8)}
        walk = {"true": n * interp(PER_FD[ctx.p][call], n),  # the recorded cost per fd, its step included
                "false": 0.002 * n,  # a kernel that keeps a ready list: no walk
                "between": 120 * n ** 0.65}[ctx.world]  # a walk whose cost per fd falls with N
        return {"v": t(_fixed(ctx, call) + walk)}
    return model


def _epoll_lt(ctx: Ctx, n: int) -> float:
    fixed = _fixed(ctx, "epoll-lt")
    return {"true": fixed, "false": fixed + 25.0 * n, "between": fixed * n ** 0.2,
            "edge": fixed * n ** 0.1}[ctx.world]


def _spin(n: int) -> float:
    return 0.1 + 1.08 * n


def epoll_flat(ctx: Ctx) -> Values:
    n = int(ctx.x)
    if ctx.series == "spin-control":
        return {"v": t(_spin(n))}
    return {"v": t(_epoll_lt(ctx, n))}


def needs_edge(ctx: Ctx) -> Values:
    """The claim: LT grows with N and ET does not (true); Linux: neither grows (false)."""
    n = int(ctx.x)
    fixed = _fixed(ctx, "epoll-lt")
    if ctx.series == "spin-control":
        return {"v": t(_spin(n))}
    if ctx.series == "epoll-et":
        return {"v": t(_fixed(ctx, "epoll-et"))}
    return {"v": t({"true": fixed + 25.0 * n, "false": fixed, "between": fixed * n ** 0.2,
                    "edge": fixed * n ** 0.3}[ctx.world])}


def all_ready(ctx: Ctx) -> Values:
    ready = int(ctx.arg("ready"))
    fixed = _fixed(ctx, "epoll-lt")
    if ctx.world == "false":  # a wait that returns a fixed batch, whatever is ready
        cost = fixed + 2000.0 + 0.01 * ready
    elif ctx.world == "between":
        cost = fixed + 300.0 * ready ** 0.55
    elif ctx.world == "edge":  # a top-decade exponent of exactly the supported bound, 0.8
        cost = 50.0 * ready ** 0.8
    else:  # the recorded cost per delivered event, stepping up beyond 4k
        cost = fixed + ready * interp(PER_FD[ctx.p]["all-ready"], ready)
    out = {"v": t(cost)}
    if ctx.series == "epoll-all-ready":
        out["epoll-all-ready-per-event"] = t(cost / ready)
    return out


def fork_cost(ctx: Ctx) -> Values:
    f = FORK[ctx.p]
    mib = int(ctx.arg("mib"))
    thp = ctx.arg("thp") == "1"
    empty, per, bump = f["empty"], f["per_mib"], f["bump"] * min(1.0, mib / 128)
    if ctx.world == "big-fixed":  # process creation dear, page tables cheap: 1 ms + 8 us per MiB
        empty, per, bump = 1_000_000.0, 8_000.0, 0.0
    elif ctx.world == "huge-fixed":  # 3 ms + 3 us per MiB: the growth is there, smaller than 5x at 1 GiB
        empty, per, bump = 3_000_000.0, 3_000.0, 0.0
    elif ctx.world == "false":  # page tables shared on fork (an on-demand fork): no growth
        per, bump = 2.0, 0.0
    elif ctx.world == "edge":  # the largest size (1 GiB) costs exactly 5x the empty parent
        per, bump = 4 * empty / 1024, 0.0
    if thp:
        cost = f["thp"] + (f["thp_per_mib"] if ctx.world != "false" else 0.0) * mib
        return {"v": t(cost), "THP backing": (1.0, "exact")}
    if ctx.world == "between":  # grows, but as the square root of memory: net exponent 0.5
        return {"v": t(empty + 150_000.0 * math.sqrt(mib))}
    return {"v": t(empty + per * mib + bump)}


def vfork(ctx: Ctx) -> Values:
    s = SPAWN[ctx.p]
    mib = int(ctx.arg("mib"))
    v, spawn = s["vfork"] + s["vfork_per_mib"] * mib, s["posix_spawn"] + s["spawn_per_mib"] * mib
    if ctx.world == "false":  # posix_spawn implemented with fork (an old libc): it copies page tables
        spawn += FORK[ctx.p]["per_mib"] * mib
    elif ctx.world == "slight":  # vfork grows by 1/830 of its cost per MiB: 2.2x at 1 GiB, 1.2x at 150 MiB
        v = s["vfork"] * (1 + mib / 830)
    elif ctx.world == "between":  # vfork 1.5x at 1 GiB
        v = s["vfork"] * (1 + 0.5 * mib / 1024)
    elif ctx.world == "edge":  # vfork exactly 1.25x at 1 GiB
        v = s["vfork"] * (1 + 0.25 * mib / 1024)
    return {"v": t(v), "posix_spawn": t(spawn)}


def thread_cheaper(ctx: Ctx) -> Values:
    c = CREATE_NS[ctx.p]
    if ctx.series == "fork":
        ratio = {"true": c["fork"] / c["thread"], "false": 0.9, "between": 1.3, "edge": 1.5}[ctx.world]
        return {"v": t(c["thread"] * ratio)}
    return {"v": t(c[ctx.series])}


def process_switch(ctx: Ctx) -> Values:
    s = SWITCH_NS[ctx.p]
    if ctx.series == "same-cpu-switches":
        return {"v": (1.0, "exact")}
    kind, mech = ctx.series.split("-", 1)
    if kind == "thread":
        return {"v": t(s[ctx.series])}
    ratio = {"true": 2.0, "false": None, "between": 1.35, "edge": 1.5}[ctx.world]
    return {"v": t(s[ctx.series] if ratio is None else s[f"thread-{mech}"] * ratio)}


def switch_cheaper(ctx: Ctx) -> Values:
    s = SWITCH_NS[ctx.p]
    if ctx.series == "same-cpu-switches":
        return {"v": (1.0, "exact")}
    if ctx.series == "register":
        # a user-level switch that enters the kernel twice (a signal mask saved and restored)
        ratio = {"true": None, "false": 2.0, "between": 6.0, "edge": 10.0}[ctx.world]
        return {"v": t(s["register"] if ratio is None else s["thread-futex"] / ratio)}
    return {"v": t(s[ctx.series])}


def asyncio_cheaper(ctx: Ctx) -> Values:
    s = SWITCH_NS[ctx.p]
    if ctx.series == "same-cpu-switches":
        return {"v": (1.0, "exact")}
    if ctx.series == "asyncio":
        # true: an event loop with a JIT (a twentieth of a thread switch); false: CPython's, as recorded
        ratio = {"true": 20.0, "false": None, "between": 6.0, "edge": 3.0}[ctx.world]
        return {"v": t(s["asyncio"] if ratio is None else s["thread-futex"] / ratio)}
    return {"v": t(s[ctx.series])}


def syscall_in_context(ctx: Ctx) -> Values:
    if ctx.series == "context-switches":
        calls = int(ctx.arg("calls"))
        per_call = {"true": 3e-6, "false": 1.0, "between": 0.05, "edge": 0.001}[ctx.world]
        mean = per_call * calls
        seen = 0.0 if ctx.host.blind_switch_counter else max(0.0, round(ctx.rng.gauss(mean, math.sqrt(mean))))
        return {"v": (seen / calls, "exact")}
    if ctx.series == "switch-probe-control":
        return {"v": (0.0 if ctx.host.blind_switch_counter else 1.0, "exact")}
    if ctx.series == "syscall-getppid":
        return {"v": t(ctx.syscall())}
    return {"v": t(SPACE_NS[ctx.p][ctx.series])}


def page_cache(ctx: Ctx) -> Values:
    p = PAGES[ctx.p]
    if ctx.series == "cached":
        return {"v": t(p["cached"])}
    ratio = {"true": None, "false": 2.2, "between": 6.0, "edge": 10.0}[ctx.world]
    return {"v": t(p[ctx.series] if ratio is None else p["cached"] * ratio)}


def dentry(ctx: Ctx) -> Values:
    p = PAGES[ctx.p]
    if ctx.series == "cached":
        return {"v": t(p["stat"])}
    if ctx.arg("allow-drop") != "1":
        raise KernelUnsupported("dropping the dentry and inode caches affects the whole machine: opt in with "
                                "--param allow_drop_caches=1 (needs root)")
    if not ctx.host.facts.get("root"):
        raise KernelUnsupported("writing /proc/sys/vm/drop_caches needs root: Permission denied")
    ratio = {"true": None, "false": 1.2, "between": 3.0, "edge": 5.0}[ctx.world]
    return {"v": t(p["stat-cold"] if ratio is None else p["stat"] * ratio)}


def chase_ns(ctx: Ctx, nbytes: int, world: str | None = None) -> float:
    curve = CHASE[ctx.p]
    world = world or ctx.world
    if world == "false":  # a chase the hardware sees through (or one flat memory): no step
        return 1.1 * (1 + 0.05 * math.log2(nbytes / (4 * K)) / 20)
    if world == "between":  # no L3: L1, L2, then DRAM, two steps
        return interp([(4 * K, 1.1), (32 * K, 1.1), (48 * K, 3.8), (512 * K, 3.8), (2 * M, 90.0), (1 * G, 95.0)],
                      nbytes)
    if world == "edge":  # three steps of exactly 1.5x (L1, L2, L3, DRAM at 1.1 * 1.5^k ns)
        return interp([(4 * K, 1.1), (32 * K, 1.1), (48 * K, 1.65), (1 * M, 1.65), (1.5 * M, 2.475),
                       (32 * M, 2.475), (48 * M, 3.7125), (1 * G, 3.7125)], nbytes)
    return interp(curve, nbytes)


def cpu_ladder(ctx: Ctx) -> Values:
    nbytes = int(ctx.arg("bytes"))
    return {"v": t(chase_ns(ctx, nbytes)), "build_ms": t(CHASE_BUILD_MS_PER_GIB * nbytes / G)}


def dram_row_ns(ctx: Ctx) -> float:
    """Latency at cache.ladder's DRAM row: the sweep's largest base size on this host."""
    from perflab.claims import _cache_sweep, cache

    facts = _cache_sweep.sweep_facts(ctx.host.facts["caches"], ctx.host.facts["mem_available_bytes"], "default",
                                     cache.CPU_LADDER)
    return interp(CHASE[ctx.p], _cache_sweep.base_sizes(facts)[-1])


def ladder(ctx: Ctx) -> Values:
    p = PAGES[ctx.p]
    dram = dram_row_ns(ctx)
    if ctx.series in ("L1", "L2", "L3", "DRAM"):
        return {"v": t(chase_ns(ctx, int(ctx.arg("bytes")), "true")), "build_ms": t(1.0)}
    if ctx.series == "page-cache-hit":
        # a system call, the page's lookup and a 4 KiB copy from DRAM
        hit = ctx.syscall() + 300.0 + 2 * dram
        if ctx.world == "false":  # a page-cache hit below DRAM: the order of the layers inverted
            hit = 100.0
        elif ctx.world == "between":  # a page-cache hit only 1.2x DRAM
            hit = dram * 1.2
        elif ctx.world == "edge":  # a page-cache hit exactly 1.5x DRAM
            hit = dram * 1.5
        return {"v": t(hit)}
    if ctx.series == "page-cache-hot":
        return {"v": t(p["hot"])}
    if ctx.series == "cache-server":
        return {"v": t(p["server"])}
    if ctx.series == "device":
        return {"v": t(p["cold"])}
    if ctx.series == "dict-lookup":
        return {"v": t(p["dict"])}
    raise KeyError(ctx.series)


# lib.allocator-scaling: throughput (pairs/s) at T threads on `cpus` CPUs
def _ops(alloc: str, pattern: str, threads: int, cpus: int, world: str) -> float:
    par = min(threads, cpus)
    one = 20e6
    if pattern == "thread-local":
        return one * par * (0.97 if alloc != "glibc" else 1.0)
    # cross-thread: glibc's frees go back to the owning arena under its lock: it collapses
    glibc = one if par == 1 else one * 0.47 * par ** 0.35
    if alloc == "glibc" or world == "false":
        return glibc
    if world == "between":
        return glibc * (1.15 if par > 1 else 1.0)
    return one * (0.85 * par ** 0.9 if par > 1 else 1.0)


def allocator_scaling(ctx: Ctx) -> Values:
    alloc, pattern = ctx.series.split(" ", 1)
    cpus = len(ctx.host.facts["cpus_allowed"])
    threads = int(ctx.x)
    ops = _ops(alloc, pattern, threads, cpus, ctx.world)
    out = {"v": (ops, "rate"), f"{alloc} {pattern} preload verified": (1.0, "exact"),
           f"{alloc} {pattern} per thread": (ops / threads, "rate")}
    if pattern == "cross-thread":
        out[f"{alloc} ring only"] = (5e8 / max(1, min(threads, cpus)), "rate")
    return out


MODELS: dict[str, Model] = {
    "io.select-linear": io_linear("select"),
    "io.poll-linear": io_linear("poll"),
    "io.epoll-flat": epoll_flat,
    "io.epoll-needs-edge": needs_edge,
    "io.epoll-all-ready": all_ready,
    "fork.cost-grows-with-memory": fork_cost,
    "fork.vfork-constant": vfork,
    "task.thread-cheaper": thread_cheaper,
    "task.process-switch-dearer": process_switch,
    "green.switch-cheaper": switch_cheaper,
    "green.asyncio-cheaper": asyncio_cheaper,
    "space.syscall-in-context": syscall_in_context,
    "cache.page-cache": page_cache,
    "cache.dentry": dentry,
    "cache.cpu-ladder": cpu_ladder,
    "cache.ladder": ladder,
    "lib.allocator-scaling": allocator_scaling,
}


