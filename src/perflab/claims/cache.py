"""Too many caching layers (CLAIMS.md section 9, `cache.*`).

Seed notes: "application cache, web server cache, caching server, database cache,
directory cache, file metadata cache, OS buffer cache, block cache, disk controller
cache, storage array cache, on-disk cache: all to hide the slowness of disk I/O."

Kernels: ``chase`` (pointer chase over a working set: CPU caches and DRAM) and
``pagecache`` (4 KiB reads from the page cache, after eviction, with O_DIRECT; stat()
with the dentry cache warm and dropped; a GET from a loopback cache server), plus the
Python subject for an in-process dict lookup. Test files live in the scratch directory
($PERFLAB_SCRATCH_DIR, default ~/.cache/perflab; observe/storage.py).
"""

from __future__ import annotations

import math
import socket
from functools import lru_cache
from statistics import median
from typing import Any, Mapping

from perflab.observe import host
from perflab.decide import stats
from perflab.decide import steps
from perflab.core.claim import Claim, SeriesSpec, Settings
from perflab.claims._common import nearest, per_op, timing_args
from perflab.observe.storage import describe
from perflab.claims._subjects import python_subject
from perflab.core.model import Decision, Outcome, Param, Series
from perflab.decide.rules import INF, ratio_rule, region

KIB, MIB = 1 << 10, 1 << 20
MIN_SET = 4 * KIB
HALF_OCTAVES_BELOW = 8 * MIB  # 1.5 x 2^k points below this, powers of two above
CHASE_TARGET_NS = 250_000  # a batch of hops lasts >= 0.25 ms: fewer hops for larger sets

MAX_MIB = Param("max_mib", 512, 64, 65536, "largest pointer-chase working set", unit="MiB")
ALLOW_DROP = Param("allow_drop_caches", 0, 0, 1,
                   "1: let cache.dentry drop the dentry and inode caches of the whole machine "
                   "(echo 2 > /proc/sys/vm/drop_caches; root)")

STEP_RISE = 1.5  # CLAIMS.md: a step is a rise of 1.5x or more
LADDER_SUPPORTED, LADDER_REFUTED = 10.0, 3.0  # DRAM / L1
ORDER_FACTOR = 1.5  # cache.ladder: each layer >= 1.5x the one before


# ---- cache.cpu-ladder ------------------------------------------------------------------------
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


def max_bytes(settings: Settings) -> int:
    return int(settings.params.get("max_mib", MAX_MIB.default)) * MIB


def chase_argv(settings: Settings, nbytes: int) -> list[str]:
    return ["chase", *timing_args(settings, ["--variant=chase", f"--bytes={nbytes}", f"--target-ns={CHASE_TARGET_NS}"])]


def _cpu_ladder_plan(settings: Settings) -> list[SeriesSpec]:
    return [SeriesSpec(name="chase", x="working_set_bytes", unit="ns/hop", xs=chase_sizes(max_bytes(settings)),
                       argv=lambda x: chase_argv(settings, x), value=per_op, timeout_s=120.0)]


def _pool(series: Series, xs) -> list[float]:
    return [v for x in xs for v in series.points[x]]


def cpu_ladder_decide(series: Mapping[str, Series], conf, rng, n_boot, caches=None) -> Decision:
    """At least 3 steps (a rise of >= 1.5x between consecutive plateaus, on the CI of the
    ratio of the plateaus' pooled samples) and DRAM / L1 >= 10 supported; no step whose
    CI reaches 1.5x, or DRAM / L1 < 3, refuted. DRAM is the largest working set, L1 the
    smallest. Where each step sits against the sysfs cache sizes is evidence only."""
    s = series["chase"]
    quantity = "DRAM / L1 pointer-chase latency (largest / smallest working set)"
    thresholds: dict[str, Any] = {
        "supported": f">= 3 steps each a rise >= {STEP_RISE}x (CI) and DRAM / L1 >= {LADDER_SUPPORTED:g}",
        "refuted": f"no step (no rise whose CI reaches {STEP_RISE}x) or DRAM / L1 < {LADDER_REFUTED:g}",
    }
    xs = sorted(x for x in s.points if s.points[x])
    if len(xs) < 2:
        return Decision(Outcome.INCONCLUSIVE, quantity, None, None, thresholds, reason="fewer than 2 working sets")
    try:
        dram_l1 = stats.ratio_of_medians(s.points[xs[-1]], s.points[xs[0]], conf=conf, n_boot=n_boot, rng=rng)
    except ValueError as exc:
        return Decision(Outcome.INCONCLUSIVE, quantity, None, None, thresholds, reason=str(exc))
    curve = {x: median(s.points[x]) for x in xs}
    found = []
    for t in steps.transitions(curve, min_points=steps.MIN_POINTS):
        try:
            est = stats.ratio_of_medians(_pool(s, t.high.xs), _pool(s, t.low.xs), conf=conf, n_boot=n_boot, rng=rng)
        except ValueError:
            continue
        found.append((t, est))
    confirmed = [(t, e) for t, e in found if e.lo >= STEP_RISE]
    possible = [(t, e) for t, e in found if e.hi >= STEP_RISE]
    if dram_l1.hi < LADDER_REFUTED or not possible:
        outcome = Outcome.REFUTED
    elif len(confirmed) >= 3 and dram_l1.lo >= LADDER_SUPPORTED:
        outcome = Outcome.SUPPORTED
    else:
        outcome = Outcome.INCONCLUSIVE
    step_list = [t for t, _ in confirmed]
    levels = steps.cache_levels(caches if caches is not None else host.caches())
    evidence = {
        "steps": [{**t.to_dict(), "rise_ci": [e.lo, e.hi], "counted": e.lo >= STEP_RISE} for t, e in found],
        "steps_counted": len(confirmed),
        "dram_over_l1": {"value": dram_l1.value, "ci": [dram_l1.lo, dram_l1.hi]},
        "levels (sysfs, cpu0)": steps.match_levels(step_list, levels),
        "page size": "base pages (MADV_NOHUGEPAGE on the working set; the kernel checks AnonHugePages = 0)",
    }
    text = ", ".join(f"x{e.value:.2g} at {steps.human_bytes(t.at)}" for t, e in confirmed) or "none"
    placed = "; ".join(f"{r['level']} {steps.human_bytes(r['bytes'])}: {'step found' if r['step_found'] else 'no step'}"
                       for r in evidence["levels (sysfs, cpu0)"])
    reason = f"{len(confirmed)} step(s) of >= {STEP_RISE}x: {text}" + (f" (sysfs: {placed})" if placed else "")
    return Decision(outcome, quantity, dram_l1.value, (dram_l1.lo, dram_l1.hi), thresholds, reason=reason,
                    evidence=evidence)


# ---- cache.page-cache ----------------------------------------------------------------------
def pagecache_argv(settings: Settings, variant: str) -> list[str]:
    return ["pagecache", *timing_args(settings, [f"--variant={variant}"])]


def _page_cache_plan(settings: Settings) -> list[SeriesSpec]:
    return [SeriesSpec(name=v, x=None, unit="ns/read", xs=(None,), argv=lambda _x, v=v: pagecache_argv(settings, v),
                       value=per_op) for v in ("cached", "cold", "direct")]


def page_cache_decide(series: Mapping[str, Series], conf, rng, n_boot, storage=None) -> Decision:
    d = ratio_rule(series["cold"].points.get(None, []), series["cached"].points.get(None, []),
                   "4 KiB read from the device (evicted, checked with mincore) / from the page cache",
                   region(10, INF), region(-INF, 3), conf, rng, n_boot)
    info = storage if storage is not None else describe()
    ev: dict[str, Any] = {"storage": info}
    if series.get("direct") and series["direct"].points.get(None) and series["cached"].points.get(None):
        ev["O_DIRECT / cached"] = median(series["direct"].points[None]) / median(series["cached"].points[None])
    d.evidence.update(ev)
    if info.get("note"):
        d.reason = "; ".join(r for r in (d.reason, info["note"]) if r)
    return d


# ---- cache.dentry ----------------------------------------------------------------------------
def _dentry_plan(settings: Settings) -> list[SeriesSpec]:
    allow = int(settings.params.get("allow_drop_caches", 0))
    return [
        SeriesSpec(name="cached", x=None, unit="ns/stat", xs=(None,),
                   argv=lambda _x: pagecache_argv(settings, "dentry-cached"), value=per_op),
        SeriesSpec(name="cold", x=None, unit="ns/stat", xs=(None,),
                   argv=lambda _x: ["pagecache", *timing_args(settings, ["--variant=dentry-cold", f"--allow-drop={allow}",
                                                                          "--reads=1"])],
                   value=per_op),
    ]


def _dentry_decide(series: Mapping[str, Series], conf, rng, n_boot) -> Decision:
    return ratio_rule(series["cold"].points.get(None, []), series["cached"].points.get(None, []),
                      "stat() after dropping dentries and inodes / stat() cached",
                      region(5, INF), region(-INF, 1.5), conf, rng, n_boot)


# ---- cache.ladder ----------------------------------------------------------------------------
LAYERS = ("L1", "L2", "L3", "DRAM", "page-cache-hit", "cache-server", "device")
BESIDE = ("dict-lookup",)
SERVERS = ((11211, "memcached", b"version\r\n", b"VERSION"), (6379, "redis", b"PING\r\n", b"+PONG"))


@lru_cache(maxsize=1)
def cache_server() -> tuple[int, str] | None:
    """A memcached (11211) or Redis (6379) answering on 127.0.0.1, checked with a connect
    and the protocol's own ping; the first found, or None."""
    for port, name, ping, answer in SERVERS:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.settimeout(0.5)
                s.sendall(ping)
                if s.recv(64).startswith(answer):
                    return port, name
        except OSError:
            continue
    return None


def server_note() -> str:
    found = cache_server()
    if found:
        return f"{found[1]} on 127.0.0.1:{found[0]}"
    return "no cache server running: no memcached on 127.0.0.1:11211, no Redis on 127.0.0.1:6379 (checked with a connect)"


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


def _ladder_plan(settings: Settings) -> list[SeriesSpec]:
    xs = chase_sizes(max_bytes(settings))
    specs = []
    for row, (x, _why) in level_points(settings.host.get("caches") or [], xs).items():
        specs.append(SeriesSpec(name=row, x=None, unit="ns", xs=(None,), argv=lambda _x, x=x: chase_argv(settings, x),
                                value=per_op, timeout_s=120.0))
    specs.append(SeriesSpec(name="page-cache-hit", x=None, unit="ns", xs=(None,),
                            argv=lambda _x: pagecache_argv(settings, "cached"), value=per_op))
    found = cache_server()
    if found:
        port, name = found
        specs.append(SeriesSpec(name="cache-server", x=None, unit="ns", xs=(None,),
                                # 5 ms batches: a round trip is tens of microseconds, and the
                                # server's first replies (thread wake-ups) are slower still
                                argv=lambda _x: ["pagecache", *timing_args(settings, [f"--variant={name}-get", f"--port={port}",
                                                                                      "--target-ns=5000000"])],
                                value=per_op))
    specs.append(SeriesSpec(name="device", x=None, unit="ns", xs=(None,),
                            argv=lambda _x: pagecache_argv(settings, "cold"), value=per_op))
    specs.append(SeriesSpec(name="dict-lookup", x=None, unit="ns", xs=(None,),
                            argv=lambda _x: python_subject("dict-lookup", *timing_args(settings, [])), value=per_op))
    return specs


def ladder_decide(series: Mapping[str, Series], conf, rng, n_boot, notes: Mapping[str, str] | None = None,
                  what: Mapping[str, str] | None = None) -> Decision:
    """The layers in CLAIMS.md's order, each >= 1.5x the one before (CI of the ratio of
    medians) supported; any adjacent pair inverted beyond its CI (the ratio's CI wholly
    below 1) refuted. The decision value is the smallest adjacent factor."""
    notes, what = dict(notes or {}), dict(what or {})
    quantity = "smallest factor between adjacent layers (each layer over the one before)"
    thresholds: dict[str, Any] = {
        "supported": f"every adjacent factor >= {ORDER_FACTOR:g} (CI)",
        "refuted": "any adjacent pair inverted beyond its CI (factor CI < 1)",
    }
    present = [n for n in LAYERS if n in series and series[n].points.get(None)]
    table: list[dict[str, Any]] = []
    factors = []
    for i, name in enumerate(present):
        row: dict[str, Any] = {"layer": name, "median_ns": median(series[name].points[None])}
        if name in what:
            row["what"] = what[name]
        if i:
            prev = present[i - 1]
            try:
                est = stats.ratio_of_medians(series[name].points[None], series[prev].points[None],
                                             conf=conf, n_boot=n_boot, rng=rng)
            except ValueError as exc:
                return Decision(Outcome.INCONCLUSIVE, quantity, None, None, thresholds, reason=str(exc))
            row["factor_over_previous"] = {"value": est.value, "ci": [est.lo, est.hi], "previous": prev}
            factors.append((est, prev, name))
        table.append(row)
    for name in LAYERS:
        if name not in present:
            table.append({"layer": name, "median_ns": None, "not measured": notes.get(name, "not measured here")})
    for name in BESIDE:
        if name in series and series[name].points.get(None):
            table.append({"layer": name, "median_ns": median(series[name].points[None]),
                          "outside the order": "an in-process cache", **({"what": what[name]} if name in what else {})})
    evidence = {"table": table}
    if not factors:
        return Decision(Outcome.INCONCLUSIVE, quantity, None, None, thresholds, reason="fewer than 2 layers measured",
                        evidence=evidence)
    inverted = [f"{b} < {a}" for est, a, b in factors if est.hi < 1]
    low = min(factors, key=lambda f: f[0].value)[0]
    if inverted:
        outcome = Outcome.REFUTED
    elif all(est.lo >= ORDER_FACTOR for est, _, _ in factors):
        outcome = Outcome.SUPPORTED
    else:
        outcome = Outcome.INCONCLUSIVE
    text = " < ".join(f"{r['layer']} {_ns(r['median_ns'])}" for r in table if r.get("median_ns") is not None
                      and r["layer"] in LAYERS)
    reason = text + (f"; inverted: {', '.join(inverted)}" if inverted else "")
    missing = [f"{r['layer']}: {r['not measured']}" for r in table if "not measured" in r]
    if missing:
        reason += "; " + "; ".join(missing)
    return Decision(outcome, quantity, low.value, (low.lo, low.hi), thresholds, reason=reason, evidence=evidence)


def _ns(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.3g} ms"
    if v >= 1e3:
        return f"{v / 1e3:.3g} us"
    return f"{v:.3g} ns"


def _ladder_notes() -> dict[str, str]:
    notes = {"cache-server": server_note()}
    names = {n if not n.startswith("L1") else "L1" for n, _ in steps.cache_levels(host.caches())}
    for row in ("L2", "L3"):
        if row not in names:
            notes[row] = "sysfs reports no such cache level"
    return notes


def _ladder_what() -> dict[str, str]:
    """What each row measures (the DRAM row's size follows --param max_mib)."""
    rows = level_points(host.caches(), chase_sizes(MAX_MIB.default * MIB))
    what = {row: f"pointer chase, {why}" for row, (_x, why) in rows.items() if row != "DRAM"}
    what["DRAM"] = "pointer chase over the largest working set (--param max_mib, default 512 MiB)"
    found = cache_server()
    what.update({
        "page-cache-hit": "4 KiB pread of a cached file page",
        "cache-server": f"4 KiB GET from {found[1]} on 127.0.0.1:{found[0]} (TCP loopback)" if found else "",
        "device": "4 KiB pread after eviction (checked with mincore), readahead off",
        "dict-lookup": "Python dict lookup (1,000 str keys), in-process",
    })
    return {k: v for k, v in what.items() if v}


CLAIMS = [
    Claim(
        id="cache.cpu-ladder",
        statement="memory latency rises in distinct steps as the working set outgrows each cache level",
        seed_point="9. caching layers all the way down, to hide the slowness of the level below",
        mechanism=(
            "Each level of the hierarchy holds a limited number of lines: a working set that "
            "fits a level is served at its latency; one that outgrows it misses there and pays "
            "the next level's (roughly 4-5 cycles for L1, 12-15 for L2, 40-50 for L3, 100 ns and "
            "more for DRAM). A pointer chase makes every load depend on the previous one, so "
            "latencies cannot overlap, and a random single cycle (Sattolo's algorithm) defeats "
            "the prefetchers, so each hop pays the full latency of the level the set lives in. "
            "Working sets use base pages (MADV_NOHUGEPAGE, madvise(2)): beyond the TLBs' reach "
            "(a few MiB of 4 KiB pages) a hop also pays a page walk, which can show as a step "
            "of its own. Cache sizes are those the kernel reports in "
            "/sys/devices/system/cpu/cpu0/cache/index*/ (Documentation/ABI/testing/"
            "sysfs-devices-system-cpu); on a VM the host's other tenants share the last level."
        ),
        kernel="chase",
        thresholds={"supported": f">= 3 steps each >= {STEP_RISE}x and DRAM >= {LADDER_SUPPORTED:g}x L1",
                    "refuted": f"no step, or DRAM < {LADDER_REFUTED:g}x L1"},
        plan=_cpu_ladder_plan,
        decide=lambda series, conf, rng, n_boot: cpu_ladder_decide(series, conf, rng, n_boot),
        params=(MAX_MIB,),
        aa=("chase", lambda settings: nearest(chase_sizes(max_bytes(settings)), 16 * KIB)),
    ),
    Claim(
        id="cache.page-cache",
        statement="a 4 KiB read served by the page cache is much faster than one that goes to the device",
        seed_point="9. OS buffer cache, block cache: all to hide the slowness of disk I/O",
        mechanism=(
            "read(2) of a cached page finds it in the file's page cache (the address_space's "
            "xarray; filemap_read in mm/filemap.c) and copies it out: a system call and a 4 KiB "
            "copy. A page that is not cached makes the kernel allocate a page, submit a block "
            "read and sleep until the device completes it. The test file is written, fsynced "
            "and evicted with posix_fadvise(POSIX_FADV_DONTNEED) (mm/fadvise.c), eviction checked "
            "with mincore(2) before every cold read; POSIX_FADV_RANDOM turns readahead off so "
            "each read brings in one page. O_DIRECT (open(2)) bypasses the page cache "
            "altogether. A virtual disk's reads may be served by the host's page cache, which "
            "makes the device look faster than a real one."
        ),
        kernel="pagecache",
        thresholds={"supported": "device / cache >= 10", "refuted": "<= 3"},
        plan=_page_cache_plan,
        decide=lambda series, conf, rng, n_boot: page_cache_decide(series, conf, rng, n_boot),
        aa=("cached", None),
        # cached 4 KiB reads: cheap processes whose values spread 1.4x (p90/p10) in the host's
        # slow stretches, where 3 A/A pairs per round failed; 8 per round (~2 s more)
        aa_per_round=8,
    ),
    Claim(
        id="cache.dentry",
        statement="a path lookup (stat) hits the dentry and inode caches; after dropping them the same "
        "stat is much slower",
        seed_point="9. directory cache, file metadata cache",
        mechanism=(
            "Path walking (fs/namei.c) looks each component up in the dentry cache (d_lookup, "
            "fs/dcache.c), whose dentries point to cached inodes (fs/inode.c): a cached stat(2) "
            "never calls the filesystem. Writing 2 to /proc/sys/vm/drop_caches frees every "
            "unused dentry and inode (Documentation/admin-guide/sysctl/vm.rst), so the next "
            "walk calls the filesystem's lookup for every component (ext4_lookup, reading the "
            "directory and inode-table blocks, which stay in the page cache) and rebuilds them. "
            "It affects the whole machine, so it runs only with --param allow_drop_caches=1, "
            "as root; the drop is checked in /proc/sys/fs/dentry-state before every cold stat."
        ),
        kernel="pagecache",
        thresholds={"supported": "cold / cached >= 5", "refuted": "<= 1.5"},
        plan=_dentry_plan,
        decide=_dentry_decide,
        params=(ALLOW_DROP,),
        aa=("cached", None),
    ),
    Claim(
        id="cache.ladder",
        statement="every caching layer of this machine in one table, each much slower than the one before: "
        "L1, L2, L3, DRAM, page cache hit, loopback cache server, device",
        seed_point="9. application cache, caching server, OS buffer cache, block cache, on-disk cache",
        mechanism=(
            "Each layer exists to hide the latency of the one below it, so each should be "
            "markedly slower: CPU caches and DRAM (pointer chase, see cache.cpu-ladder), a page "
            "cache hit (a system call and a copy, see cache.page-cache), a cache server on "
            "loopback (a TCP round trip through the network stack and a context switch to the "
            "server, memcached or Redis where one runs), and the device. An in-process cache "
            "(a Python dict lookup) is shown beside them, outside the order: it is what an "
            "application's own cache costs."
        ),
        kernel="chase",
        sources=('kernels/pagecache.c', 'subjects/pyswitch.py'),
        thresholds={"supported": f"layers in order, each >= {ORDER_FACTOR:g}x the one before (CI)",
                    "refuted": "any adjacent pair inverted beyond its CI"},
        plan=_ladder_plan,
        decide=lambda series, conf, rng, n_boot: ladder_decide(series, conf, rng, n_boot, notes=_ladder_notes(),
                                                               what=_ladder_what()),
        params=(MAX_MIB,),
        aa=("L1", None),
    ),
]
