"""lib.*, malloc.* and fork.*: count analysis, fits and every decision both ways (and
the middle), on synthetic observations; nothing here runs a kernel."""

from __future__ import annotations

import random

import pytest

from conftest import synthetic
from perflab.engine import registry
from perflab.claims import fork, lib, malloc
from perflab.core.model import Outcome, Series
from perflab.decide.rules import exact_rule

CONF, NBOOT = 0.975, 400


def decide(claim_id: str, *series: Series):
    claim = next(c for c in registry.all_claims() if c.id == claim_id)
    return claim.decide({s.name: s for s in series}, CONF, random.Random(7), NBOOT)


def outcome(checks) -> Outcome:
    return exact_rule(checks).outcome


# ---------------------------------------------------------------- lib.malloc-not-syscall
@pytest.mark.parametrize("calls,expected", [
    ({"brk": 2, "getrandom": 1}, Outcome.SUPPORTED),            # what glibc does here: 3e-6 per pair
    ({"brk": 4000, "mmap": 4000}, Outcome.SUPPORTED),            # 0.008: just below 0.01
    ({"brk": 20_000}, Outcome.INCONCLUSIVE),                     # 0.02: between the thresholds
    ({"mmap": 500_000, "munmap": 500_000}, Outcome.REFUTED),     # malloc as a system call: 1 per pair
    ({"brk": 500_000}, Outcome.REFUTED),                         # exactly 0.5
])
def test_not_syscall_rule(calls, expected):
    assert outcome([lib.per_malloc_check(calls, 1_000_000)]) is expected


def test_brk_control_rejects_a_blind_probe():
    assert lib.brk_control({"brk": 60}).passed is True
    assert lib.brk_control({}).passed is False  # a probe that sees no brk where the heap grew
    assert lib.brk_control(None).passed is None


# ---------------------------------------------------------------- lib.allocator-scaling
def scaling_series(alloc: str, pattern: str, cores: int, eff: float, seed: int = 1) -> list[Series]:
    """Throughput at T threads: linear up to `cores` with per-thread efficiency eff^log2(T)."""
    def cost(t):
        return 2e7 * min(t, cores) * (eff ** (min(t, cores).bit_length() - 1))
    s = synthetic(lib.series_name(alloc, pattern), lib.thread_counts(cores), cost, n=12, noise=0.02,
                  seed=seed, x="threads", unit="ops/s")
    ok = Series(lib.preload_name(alloc, pattern), "threads", "1")
    for t, vals in s.points.items():
        for _ in vals:
            ok.add(t, 1.0)
    return [s, ok]


def scaling(cores: int, glibc: tuple[float, float], other: tuple[float, float], verified: bool = True) -> list[Series]:
    out = []
    for a, (alloc, effs) in enumerate((("glibc", glibc), ("jemalloc", other))):
        for p, (pattern, eff) in enumerate(zip(lib.PATTERNS, effs)):
            out += scaling_series(alloc, pattern, cores, eff, seed=10 * a + p)
    if not verified:
        for s in out:
            if s.name == lib.preload_name("jemalloc", "cross-thread"):
                s.points = {t: [0.0] * len(v) for t, v in s.points.items()}
    return out


@pytest.mark.parametrize("cores,glibc,other,expected", [
    (16, (1.0, 0.5), (1.0, 1.0), Outcome.SUPPORTED),     # cross-thread: glibc collapses, jemalloc scales
    (16, (1.0, 1.0), (1.0, 1.0), Outcome.REFUTED),       # no difference in either pattern, enough cores
    (16, (1.0, 0.87), (1.0, 1.0), Outcome.SUPPORTED),    # one pattern supports: (1/0.87)^4 = 1.75
    (2, (1.0, 0.5), (1.0, 1.0), Outcome.SUPPORTED),      # the effect already shows on 2 cores
    (2, (1.0, 1.0), (1.0, 1.0), Outcome.INCONCLUSIVE),   # no effect on 2 cores: never refuted there
])
def test_scaling_rule(cores, glibc, other, expected):
    d = decide("lib.allocator-scaling", *scaling(cores, glibc, other))
    assert d.outcome is expected, d


def test_scaling_inconclusive_between_thresholds():
    # cross-thread ratio 1/0.96^4 = 1.18, thread-local 1.0: neither >= 1.2 nor both refuted
    d = decide("lib.allocator-scaling", *scaling(16, (1.0, 0.96), (1.0, 1.0)))
    assert d.outcome is Outcome.INCONCLUSIVE, d


def test_scaling_needs_verified_preload():
    d = decide("lib.allocator-scaling", *scaling(16, (1.0, 0.5), (1.0, 1.0), verified=False))
    assert d.outcome is not Outcome.SUPPORTED and "did not take effect" in d.reason
    series = {s.name: s for s in scaling(16, (1.0, 0.5), (1.0, 1.0), verified=False)}
    assert lib.preload_control(series, CONF, random.Random(1), NBOOT).passed is False


def test_scaling_without_other_allocators_is_inconclusive():
    only = [s for s in scaling(2, (1.0, 1.0), (1.0, 1.0)) if s.name.startswith("glibc")]
    d = decide("lib.allocator-scaling", *only)
    assert d.outcome is Outcome.INCONCLUSIVE and "no other allocator" in d.reason


def test_scaling_estimate_is_ratio_of_ratios():
    v, lo, hi = lib.scaling_estimate([1.0] * 5, [2.0] * 5, [1.0] * 5, [1.0] * 5, 0.95, random.Random(1), 200)
    assert v == lo == hi == 2.0


def test_thread_counts():
    assert lib.thread_counts(2) == (1, 2, 4)
    assert lib.thread_counts(6) == (1, 2, 4, 6, 8, 12)
    assert lib.thread_counts(16)[-1] == 32 and 16 in lib.thread_counts(16)


# ---------------------------------------------------------------- malloc.brk-grows-heap
def brk_case(size=64, blocks=100_000, brk=60, mmap=0, growth=60 * 135_168):
    return {"size": size, "blocks": blocks, "brk": brk, "mmap": mmap, "growth": growth}


@pytest.mark.parametrize("case,expected", [
    (brk_case(), Outcome.SUPPORTED),                                    # 132 KiB steps, no mmap
    (brk_case(brk=100_000, growth=100_000 * 80), Outcome.REFUTED),      # a brk per allocation
    (brk_case(brk=1000, growth=1000 * 8192), Outcome.INCONCLUSIVE),     # 8 KiB steps: neither
    (brk_case(mmap=3), Outcome.INCONCLUSIVE),                           # mmap below the threshold
])
def test_brk_rule(case, expected):
    assert outcome(malloc.brk_checks([case])) is expected


# ---------------------------------------------------------------- malloc.mmap-threshold
def thr(size, cycles, mmap, munmap=None):
    return {"size": size, "cycles": cycles, "mmap": mmap, "munmap": mmap if munmap is None else munmap}


def test_threshold_supported_when_every_large_block_is_mmapped():
    cases = [thr(64 << 10, 1, 0), thr(256 << 10, 1, 1), thr(256 << 10, 8, 8), thr(1 << 20, 8, 8)]
    assert outcome(malloc.threshold_checks(cases)) is Outcome.SUPPORTED


def test_threshold_refuted_by_the_dynamic_threshold():
    # glibc: the first free of an mmapped 256 KiB block raises the threshold; 7 of 8 from the heap
    checks = malloc.threshold_checks([thr(256 << 10, 1, 1), thr(256 << 10, 8, 1)])
    assert outcome(checks) is Outcome.REFUTED
    failed = [c for c in checks if c.holds is False]
    assert len(failed) == 1 and "8 malloc/free cycles" in failed[0].name and "7 of 8" in failed[0].note


def test_threshold_ignores_small_sizes_and_counts_munmap():
    assert malloc.threshold_checks([thr(64 << 10, 1, 0)]) == []
    assert outcome(malloc.threshold_checks([thr(128 << 10, 1, 1, munmap=0)])) is Outcome.REFUTED
    assert outcome([]) is Outcome.INCONCLUSIVE  # nothing evaluated decides nothing


# ---------------------------------------------------------------- malloc.thread-arenas
MAPS = (
    "55d000000000-55d000001000 r-xp 00000000 fd:01 123 /usr/bin/mallocs\n"
    "55d000100000-55d000121000 rw-p 00000000 00:00 0 [heap]\n"
    "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
    "7f0000021000-7f0004000000 ---p 00000000 00:00 0 \n"
    "7f1000000000-7f1000200000 r-xp 00000000 fd:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
)


@pytest.mark.parametrize("thread_block,mmaps,expected", [
    (0x7F0000000900, 1, Outcome.SUPPORTED),     # an mmap'd arena
    (0x55D000100900, 0, Outcome.REFUTED),       # the thread's block in the main heap
    (0x7F0000000900, None, Outcome.INCONCLUSIVE),  # no system call counter here
])
def test_arena_rule(thread_block, mmaps, expected):
    rec = {"maps": MAPS, "main_block": 0x55D000100010, "thread_block": thread_block}
    assert outcome(malloc.arena_checks(rec, mmaps)) is expected


# ---------------------------------------------------------------- malloc.heap-after-exec
def subject(heap_at_main=0, block_in_heap=1):
    return {"heap_at_main": heap_at_main, "block_in_heap": block_in_heap}


@pytest.mark.parametrize("rec,brk_total,brk_region,expected", [
    (subject(), 3, 2, Outcome.SUPPORTED),                     # dynamic: no heap until malloc's brk
    (subject(heap_at_main=1), 5, 0, Outcome.SUPPORTED),       # static: TLS set-up's sbrk before main
    (subject(heap_at_main=1), 0, 0, Outcome.REFUTED),         # a heap before any brk: inherited?
    (subject(block_in_heap=0), 3, 2, Outcome.REFUTED),
])
def test_subject_rule(rec, brk_total, brk_region, expected):
    assert outcome(malloc.subject_checks("s", rec, brk_total, brk_region)) is expected


def test_probe_and_fork_rules():
    gone = {"probe": 0x55D000100900, "probe_mapped": 0, "probe_cookie": 0}
    assert malloc.probe_check("x", gone).holds is True
    assert malloc.probe_check("x", {**gone, "probe_mapped": 1, "probe_cookie": 1}).holds is False
    child = {"child_heap": 1, "child_heap_lo": 1, "child_heap_hi": 9, "parent_heap_lo": 1, "parent_heap_hi": 9,
             "child_sees_cookie": 1, "child_pfn": 77, "parent_pfn": 77}
    assert outcome(malloc.fork_checks(child)) is Outcome.SUPPORTED
    assert outcome(malloc.fork_checks({**child, "child_pfn": 0, "parent_pfn": 0})) is Outcome.INCONCLUSIVE
    assert outcome(malloc.fork_checks({**child, "child_pfn": 78})) is Outcome.REFUTED


# ---------------------------------------------------------------- fork.cow
K = 256
SHARED = [(1000 + i, 1000 + i) for i in range(K)]
NEW = [(1000 + i, 5000 + i) for i in range(K)]


@pytest.mark.parametrize("args,expected", [
    ((SHARED, SHARED, NEW, 0, K, True), Outcome.SUPPORTED),
    ((SHARED, SHARED, NEW, 0, int(1.1 * K + 2), True), Outcome.SUPPORTED),  # at the upper bound
    ((NEW, NEW, NEW, 0, K, True), Outcome.REFUTED),          # fork copied the pages (no sharing)
    ((SHARED, SHARED, SHARED, 0, K, True), Outcome.REFUTED),  # writes did not get new frames
    ((SHARED, SHARED, NEW, 3, K, True), Outcome.REFUTED),     # reading faulted
    ((SHARED, SHARED, NEW, 0, K - 1, True), Outcome.REFUTED),  # fewer faults than pages written
    ((SHARED, SHARED, NEW, 0, 2 * K, True), Outcome.REFUTED),  # twice as many
    ((None, None, None, 0, K, True), Outcome.INCONCLUSIVE),   # no root: frames not evaluated
])
def test_cow_rule(args, expected):
    assert outcome(fork.cow_checks(K, *args)) is expected


def test_cow_without_root_says_so():
    checks = fork.cow_checks(K, None, None, None, 0, K, True)
    unevaluated = [c for c in checks if c.holds is None]
    assert unevaluated and all("root" in c.note for c in unevaluated)
    assert all(c.holds is True for c in checks if c.holds is not None)  # fault counts alone still checked


# ---------------------------------------------------------------- fork.cost-grows-with-memory
def fork_series(cost, empty_ns=110_000.0, name="fork 4k"):
    xs = fork.sizes(1024)
    s = synthetic(name, xs, cost, n=5, noise=0.04, seed=3, x="MiB")
    e = synthetic("fork empty parent", (None,), lambda _x: empty_ns, n=5, noise=0.04, seed=4, x=None)
    return s, e


def test_sizes_top_decade_has_enough_points():
    xs = fork.sizes(1024)
    assert xs == (16, 128, 256, 512, 1024)
    assert sum(1 for x in xs if x >= 1024 / 10) >= 3


@pytest.mark.parametrize("cost,empty,expected", [
    (lambda m: 500_000 + 55_000 * m, 110_000.0, Outcome.SUPPORTED),   # what fork does here (~55 us/MiB)
    (lambda m: 200_000 + 10 * m, 110_000.0, Outcome.REFUTED),          # flat: exponent ~0
    (lambda m: 500_000 + 55_000 * m, 20e6, Outcome.INCONCLUSIVE),      # linear but the largest < 5x empty
    (lambda m: 1_000 * m ** 1.6, 110_000.0, Outcome.INCONCLUSIVE),     # superlinear: exponent above 1.25
    (lambda m: 3e6 * m ** 0.55, 110_000.0, Outcome.INCONCLUSIVE),      # between 0.3 and 0.8
])
def test_fork_cost_rule(cost, empty, expected):
    d = decide("fork.cost-grows-with-memory", *fork_series(cost, empty))
    assert d.outcome is expected, d


def test_fork_fit_slope():
    s, _ = fork_series(lambda m: 500_000 + 55_000 * m)
    fit = fork._fit(s)
    assert fit["ns_per_mib_ci"][0] <= 55_000 * 1.05 and fit["ns_per_mib_ci"][1] >= 55_000 * 0.95
    assert 45_000 < fit["ns_per_mib"] < 65_000 and fit["r2"] > 0.95


# ---------------------------------------------------------------- fork.vfork-constant
def vfork_series(vf, sp):
    xs = (0, *fork.sizes(1024))
    return (synthetic("vfork", xs, vf, n=5, noise=0.03, seed=5, x="MiB"),
            synthetic("posix_spawn", xs, sp, n=5, noise=0.03, seed=6, x="MiB"))


@pytest.mark.parametrize("vf,sp,expected", [
    (lambda m: 31_000.0, lambda m: 530_000.0, Outcome.SUPPORTED),
    (lambda m: 31_000.0 + 55_000 * m, lambda m: 530_000.0, Outcome.REFUTED),    # vfork copying page tables
    (lambda m: 31_000.0, lambda m: 530_000.0 + 1_000 * m, Outcome.REFUTED),     # spawn through fork
    (lambda m: 31_000.0 * (1 + m / 1024 * 0.5), lambda m: 530_000.0, Outcome.INCONCLUSIVE),  # 1.5x
])
def test_vfork_rule(vf, sp, expected):
    d = decide("fork.vfork-constant", *vfork_series(vf, sp))
    assert d.outcome is expected, d


def test_static_subject_missing_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("PERFLAB_KERNEL_DIR", str(tmp_path))  # no kernels built there
    why = malloc._static_available()
    assert why and "libc.a" in why and "not evaluated" in why


def test_static_kernel_asks_for_static_build():
    from pathlib import Path

    src = Path(malloc.__file__).resolve().parent.parent / "kernels" / "heapexec_static.c"
    assert src.read_text().splitlines()[0] == "// perflab-build: -static"
