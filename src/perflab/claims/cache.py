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

import socket
from functools import lru_cache
from statistics import median
from typing import Any

from perflab.claims._cache_ladder import KIB, MIB, SERVERS, chase_sizes, ladder_decide, level_points
from perflab.claims._common import nearest, per_op, timing_args
from perflab.claims._subjects import python_subject
from perflab.core.claim import Claim, Evidence, Plan, SeriesSpec, Settings
from perflab.core.params import Param
from perflab.core.record import Decision
from perflab.core.rule import INF, Region, Rule, num
from perflab.decide import stats, steps
from perflab.decide.rules import all_of, decision, ratio_rule, unmeasurable
from perflab.observe import host
from perflab.observe.storage import describe

CHASE_TARGET_NS = 250_000  # a batch of hops lasts >= 0.25 ms: fewer hops for larger sets

MAX_MIB = Param("max_mib", 512, 64, 65536, "largest pointer-chase working set", unit="MiB")
ALLOW_DROP = Param("allow_drop_caches", 0, 0, 1,
                   "1: let cache.dentry drop the dentry and inode caches of the whole machine "
                   "(echo 2 > /proc/sys/vm/drop_caches; root)")

SOURCE = "CLAIMS.md, section 9, thresholds fixed before the first live run"
CPU_LADDER = Rule(
    quantity="DRAM / L1 pointer-chase latency (largest / smallest working set)",
    short="DRAM / L1",
    parts=(
        # the step count as an interval: steps whose rise has its CI wholly at or above the
        # rise (counted) .. steps whose CI reaches it (possible). Supported: enough counted;
        # refuted: none even possible; more samples can only move the count inside it.
        Rule(name="steps", quantity="steps between plateaus of the latency curve (counted .. possible)",
             short="steps", supported=Region(3, INF), refuted=Region(-INF, 0),
             constants={"step_rise": 1.5, "flat": 1.15, "min_points": 2},
             supported_text="{supported} steps each a rise >= {step_rise}x (CI) between plateaus "
                            "(runs of >= {min_points} sizes within {flat}x)",
             refuted_text="no step (no rise whose CI reaches {step_rise}x)",
             reason=f"{SOURCE}: a step is a rise of step_rise or more from one plateau to the next; a "
                    "plateau is a run of at least min_points sizes whose latencies lie within a factor flat of "
                    "each other, the whole run's spread bounded, not each adjacent pair's, which keeps a slow "
                    "creep from passing for one long plateau (decide/steps.py)"),
        Rule(name="DRAM / L1", quantity="DRAM / L1 pointer-chase latency (largest / smallest working set)",
             short="DRAM / L1", supported=Region(10, INF), refuted=Region(-INF, 3), reason=SOURCE),
    ),
    combine="supported if both parts support; refuted if either refutes",
    reason=f"{SOURCE}: DRAM is the largest working set, L1 the smallest; where each step sits against the "
           "sysfs cache sizes is evidence only",
)
PAGE_CACHE = Rule(quantity="4 KiB read from the device (evicted, checked with mincore) / from the page cache",
                  short="device / cache", supported=Region(10, INF), refuted=Region(-INF, 3), reason=SOURCE)
DENTRY = Rule(quantity="stat() after dropping dentries and inodes / stat() cached", short="cold / cached",
              supported=Region(5, INF), refuted=Region(-INF, 1.5), reason=SOURCE)
LADDER = Rule(
    quantity="smallest factor between adjacent layers (each layer over the one before)",
    short="adjacent factor",
    supported=Region(1.5, INF),
    refuted=Region(-INF, 1),
    supported_text="layers in order, every adjacent factor {supported} (CI)",
    refuted_text="any adjacent pair inverted beyond its CI (factor CI {refuted})",
    reason=f"{SOURCE}: each layer exists to hide the one below, so each must be markedly slower; an "
           "inversion beyond the CI contradicts the order",
)


def host_caches(settings: Settings) -> list[dict[str, Any]]:
    """The cache levels sysfs reports (the host facts, else read now): a plan's fact."""
    caches = settings.host.get("caches")
    return list(caches if caches is not None else host.caches())


# ---- cache.cpu-ladder ------------------------------------------------------------------------
def max_bytes(settings: Settings) -> int:
    return int(settings.params.get("max_mib", MAX_MIB.default)) * MIB


def chase_argv(settings: Settings, nbytes: int) -> list[str]:
    return ["chase", *timing_args(settings, ["--variant=chase", f"--bytes={nbytes}", f"--target-ns={CHASE_TARGET_NS}"])]


def _cpu_ladder_plan(settings: Settings) -> Plan:
    return Plan([SeriesSpec(name="chase", x="working_set_bytes", unit="ns/hop", xs=chase_sizes(max_bytes(settings)),
                            argv=lambda x: chase_argv(settings, x), value=per_op, timeout_s=120.0)],
                {"caches": host_caches(settings)})


def _pool(points, xs) -> list[float]:
    return [v for x in xs for v in points[x]]


def cpu_ladder_decide(ev: Evidence, rule: Rule) -> Decision:
    """Two parts (CPU_LADDER): the steps (a rise of step_rise or more between consecutive
    plateaus, on the CI of the ratio of the plateaus' pooled samples) and DRAM / L1 (the
    largest working set over the smallest). Where each step sits against the sysfs cache
    sizes (the plan's facts) is evidence only."""
    s = ev.series["chase"]
    step_rule, ratio_part = rule.part("steps"), rule.part("DRAM / L1")
    xs = sorted(x for x in s.points if s.points[x])
    if len(xs) < 2:
        return unmeasurable(rule, "fewer than 2 working sets")
    try:
        dram_l1 = stats.ratio_of_medians(s.points[xs[-1]], s.points[xs[0]], conf=ev.conf, n_boot=ev.n_boot,
                                         rng=ev.rng)
    except ValueError as exc:
        return unmeasurable(rule, str(exc))
    curve = {x: median(s.points[x]) for x in xs}
    rise = step_rule["step_rise"]
    try:
        transitions = steps.transitions(curve, flat=step_rule["flat"], min_points=int(step_rule["min_points"]))
    except ValueError as exc:  # a latency that is not positive and finite
        return unmeasurable(rule, str(exc))
    found = []
    for t in transitions:
        try:
            est = stats.ratio_of_medians(_pool(s.points, t.high.xs), _pool(s.points, t.low.xs), conf=ev.conf,
                                         n_boot=ev.n_boot, rng=ev.rng)
        except ValueError:
            continue
        found.append((t, est))
    confirmed = [(t, e) for t, e in found if e.lo >= rise]
    possible = [(t, e) for t, e in found if e.hi >= rise]
    count = stats.Estimate(float(len(confirmed)), float(len(confirmed)), float(len(possible)), ev.conf)
    d = all_of([decision(step_rule, count), decision(ratio_part, dram_l1)], rule, lead=1)
    levels = steps.cache_levels(ev.facts.get("caches") or [])
    evidence = {
        "steps": [{**t.to_dict(), "rise_ci": [e.lo, e.hi], "counted": e.lo >= rise} for t, e in found],
        "steps_counted": len(confirmed),
        "dram_over_l1": {"value": dram_l1.value, "ci": [dram_l1.lo, dram_l1.hi]},
        "levels (sysfs, cpu0)": steps.match_levels([t for t, _ in confirmed], levels),
        "page size": "base pages (MADV_NOHUGEPAGE on the working set; the kernel checks AnonHugePages = 0)",
    }
    text = ", ".join(f"x{e.value:.2g} at {steps.human_bytes(t.at)}" for t, e in confirmed) or "none"
    placed = "; ".join(f"{r['level']} {steps.human_bytes(r['bytes'])}: {'step found' if r['step_found'] else 'no step'}"
                       for r in evidence["levels (sysfs, cpu0)"])
    d.reason = f"{len(confirmed)} step(s) of >= {num(rise)}x: {text}" + (f" (sysfs: {placed})" if placed else "")
    d.evidence = evidence
    return d


# ---- cache.page-cache ----------------------------------------------------------------------
def pagecache_argv(settings: Settings, variant: str) -> list[str]:
    return ["pagecache", *timing_args(settings, [f"--variant={variant}"])]


def _page_cache_plan(settings: Settings) -> Plan:
    return Plan([SeriesSpec(name=v, x=None, unit="ns/read", xs=(None,), argv=lambda _x, v=v: pagecache_argv(settings, v),
                            value=per_op) for v in ("cached", "cold", "direct")],
                {"storage": describe()})  # the scratch directory and the device its reads go to


def page_cache_decide(ev: Evidence, rule: Rule) -> Decision:
    series = ev.series
    d = ratio_rule(series["cold"].points.get(None, []), series["cached"].points.get(None, []), rule, ev)
    info = dict(ev.facts.get("storage") or {})
    extra: dict[str, Any] = {"storage": info}
    if series.get("direct") and series["direct"].points.get(None) and series["cached"].points.get(None):
        extra["O_DIRECT / cached"] = median(series["direct"].points[None]) / median(series["cached"].points[None])
    d.evidence.update(extra)
    if info.get("note"):
        d.reason = "; ".join(r for r in (d.reason, info["note"]) if r)
    return d


# ---- cache.dentry ----------------------------------------------------------------------------
def _dentry_plan(settings: Settings) -> Plan:
    allow = int(settings.params.get("allow_drop_caches", 0))
    return Plan([
        SeriesSpec(name="cached", x=None, unit="ns/stat", xs=(None,),
                   argv=lambda _x: pagecache_argv(settings, "dentry-cached"), value=per_op),
        SeriesSpec(name="cold", x=None, unit="ns/stat", xs=(None,),
                   argv=lambda _x: ["pagecache", *timing_args(settings, ["--variant=dentry-cold", f"--allow-drop={allow}",
                                                                          "--reads=1"])],
                   value=per_op),
    ])


def _dentry_decide(ev: Evidence, rule: Rule) -> Decision:
    return ratio_rule(ev.series["cold"].points.get(None, []), ev.series["cached"].points.get(None, []), rule, ev)


# ---- cache.ladder ----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def cache_server() -> tuple[int, str] | None:
    """A memcached (11211) or Redis (6379) answering on 127.0.0.1, checked with a connect
    and the protocol's own ping; the first found, or None. The plan's: a decision reads
    only what it found (Plan.facts)."""
    for port, name, _label, ping, answer in SERVERS:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.settimeout(0.5)
                s.sendall(ping)
                if s.recv(64).startswith(answer):
                    return port, name
        except OSError:
            continue
    return None


def _ladder_plan(settings: Settings) -> Plan:
    xs = chase_sizes(max_bytes(settings))
    caches = host_caches(settings)
    rows = level_points(caches, xs)
    specs = []
    for row, (x, _why) in rows.items():
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
    facts = {"caches": caches, "rows": {row: why for row, (_x, why) in rows.items()},
             "cache_server": {"port": found[0], "name": found[1]} if found else None}
    return Plan(specs, facts)


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
        rule=CPU_LADDER,
        plan=_cpu_ladder_plan,
        decide=cpu_ladder_decide,
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
        rule=PAGE_CACHE,
        plan=_page_cache_plan,
        decide=page_cache_decide,
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
        rule=DENTRY,
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
        sources=("pagecache",),  # its page-cache, server and device rows; the Python subject: _subjects
        rule=LADDER,
        plan=_ladder_plan,
        decide=ladder_decide,
        params=(MAX_MIB,),
        aa=("L1", None),
    ),
]
