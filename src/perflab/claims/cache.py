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

from perflab.claims._cache_ladder import KIB, MIB, SERVERS, ladder_decide, level_points
from perflab.claims._cache_sweep import base_sizes, cpu_ladder_decide, extender, rounds_at, sweep_facts
from perflab.claims._common import per_op, timing_args
from perflab.claims._subjects import python_subject
from perflab.core.claim import Claim, Evidence, Plan, SeriesSpec, Settings
from perflab.core.params import Param
from perflab.core.record import Decision
from perflab.core.rule import INF, Region, Rule
from perflab.decide import steps
from perflab.decide.rules import ratio_rule
from perflab.observe import host
from perflab.observe.storage import describe

CHASE_TARGET_NS = 250_000  # a batch of hops lasts >= 0.25 ms: fewer hops for larger sets

MAX_MIB = Param("max_mib", 0, 0, 65536, "largest pointer-chase working set (0: a quarter of MemAvailable; "
                "the sweep stops earlier where the latency levels off)", unit="MiB",
                check=lambda v: None if v == 0 or v >= 64 else "must be 0 or at least 64")
ALLOW_DROP = Param("allow_drop_caches", 0, 0, 1,
                   "1: let cache.dentry drop the dentry and inode caches of the whole machine "
                   "(echo 2 > /proc/sys/vm/drop_caches; root)")

SOURCE = "CLAIMS.md, section 9, thresholds fixed before the first live run"
CPU_LADDER_REVISION_2 = (
    "CLAIMS.md revision 2: the sweep runs until the latency levels off beyond the last cache, not to a fixed "
    "512 MiB (at least beyond_largest_cache x the largest cache sysfs reports, then on until two successive "
    "sizes differ by less than level_off, capped at a quarter of MemAvailable); steps are counted between "
    "plateaus, not adjacent points; DRAM is the last plateau. On an Intel Xeon guest (sysfs L3 480 MiB) "
    "latency was still rising at 512 MiB (35, 47, 93, 171, 220 ns at 8..512 MiB), so only 2 steps were seen")
CPU_LADDER = Rule(
    quantity="DRAM / L1 pointer-chase latency (the last plateau / the smallest working set)",
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
             refuted_text="no step (no rise whose CI reaches {step_rise}x) on a curve of plateaus",
             version=2,
             reason=f"{SOURCE}: a step is a rise of step_rise or more from one plateau to the next; a "
                    "plateau is a run of at least min_points sizes whose latencies lie within a factor flat of "
                    "each other, the whole run's spread bounded, not each adjacent pair's, which keeps a slow "
                    "creep from passing for one long plateau (decide/steps.py). Version 2: a jagged curve with "
                    "no plateaus is noise (inconclusive, noisy), not the absence of steps"),
        Rule(name="DRAM / L1", quantity="DRAM (the last plateau) / L1 (the smallest working set)",
             short="DRAM / L1", supported=Region(10, INF), refuted=Region(-INF, 3), version=2,
             reason=CPU_LADDER_REVISION_2),
    ),
    constants={"beyond_largest_cache": 4, "level_off": 1.15},
    combine="supported if both parts support; refuted if either refutes (not when the sweep was capped "
            "before the latency levelled off)",
    version=2,
    reason=CPU_LADDER_REVISION_2 + f". {SOURCE}: where each step sits against the sysfs cache sizes is evidence only",
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
    version=2,
    reason=f"{SOURCE}: each layer exists to hide the one below, so each must be markedly slower; an "
           "inversion beyond the CI contradicts the order. CLAIMS.md revision 2: the page cache hit is a "
           "random 4 KiB read over a cached file larger than twice the last cache, so that the page comes "
           "from DRAM as the layer is meant (re-reading one hot page, served from L1/L2, cost 245 ns on an "
           "Intel Xeon guest against 220-252 ns for a DRAM load, which inverted the ladder for a reason that "
           "is not the layer's); the hot page is shown beside, outside the order",
)


def host_caches(settings: Settings) -> list[dict[str, Any]]:
    """The cache levels sysfs reports (the host facts, else read now): a plan's fact."""
    caches = settings.host.get("caches")
    return list(caches if caches is not None else host.caches())


# ---- cache.cpu-ladder ------------------------------------------------------------------------
def chase_argv(settings: Settings, nbytes: int) -> list[str]:
    return ["chase", *timing_args(settings, ["--variant=chase", f"--bytes={nbytes}", f"--target-ns={CHASE_TARGET_NS}"])]


def ladder_sweep(settings: Settings) -> dict[str, Any]:
    """The chase sweep's numbers from this host (both chase claims share them)."""
    return sweep_facts(host_caches(settings), settings.host.get("mem_available_bytes"), settings.budget.name,
                       CPU_LADDER, int(settings.params.get("max_mib", 0)))


def _cpu_ladder_plan(settings: Settings) -> Plan:
    facts = {"caches": host_caches(settings), **ladder_sweep(settings)}
    return Plan([SeriesSpec(name="chase", x="working_set_bytes", unit="ns/hop", xs=base_sizes(facts),
                            argv=lambda x: chase_argv(settings, x), value=per_op, timeout_s=300.0,
                            rounds_at=rounds_at(facts), extend=extender(facts, CPU_LADDER))], facts)


def recorded_sweep_facts(v) -> dict[str, Any]:
    """An older record's sweep facts: from the host it ran on, as its plan reads them."""
    budget = next((p for p in ("quick", "rigorous") if f"--budget {p}" in v.rerun), "default")
    caches = list(v.host.caches or [])
    return {"caches": caches, **sweep_facts(caches, v.host.mem_available_bytes, budget, CPU_LADDER)}


def recorded_storage_facts(v) -> dict[str, Any]:
    """An older record's storage description: its rule's evidence kept it."""
    return {"storage": dict((v.evidence.get("rule") or {}).get("storage") or {})}


def _cpu_ladder_aa(settings: Settings) -> int:
    """The A/A inside the ladder, not on its L1 plateau (issue 11, "control what decides"),
    and in the middle of a plateau, not on an edge where a process's page placement
    decides which level a set lives in (measured here at 2 MiB, twice the L2: processes
    spread 4.8x): the sweep point nearest the geometric middle of the L1d and L2 sizes."""
    levels = dict((n if not n.startswith("L1") else "L1", b) for n, b in steps.cache_levels(host_caches(settings)))
    l1, l2 = levels.get("L1", 32 * KIB), levels.get("L2", 1024 * KIB)
    return min(base_sizes(ladder_sweep(settings)), key=lambda x: abs(math.log(x / math.sqrt(l1 * l2))))


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


def hit_file_kib(settings: Settings, sweep: Mapping[str, Any]) -> tuple[int, str]:
    """The page-cache hit's file: twice the largest cache (so its pages come from DRAM),
    at least 4 MiB, at most the sweep's cap (a quarter of MemAvailable)."""
    largest = int(sweep["largest_cache"]["bytes"])
    size = min(max(2 * largest, 4 * MIB), int(sweep["cap_bytes"]["value"]))
    return size // KIB, f"2 x the largest cache ({sweep['largest_cache']['source']}), read at random pages"


def _ladder_plan(settings: Settings) -> Plan:
    sweep = ladder_sweep(settings)
    xs = base_sizes(sweep)
    caches = host_caches(settings)
    rows = level_points(caches, xs)
    specs = []
    for row, (x, _why) in rows.items():
        specs.append(SeriesSpec(name=row, x=None, unit="ns", xs=(None,), argv=lambda _x, x=x: chase_argv(settings, x),
                                value=per_op, timeout_s=300.0))
    kib, kib_source = hit_file_kib(settings, sweep)
    for name, variant in (("page-cache-hit", "cached-random"), ("page-cache-hot", "cached-hot")):
        specs.append(SeriesSpec(name=name, x=None, unit="ns", xs=(None,), value=per_op, timeout_s=300.0,
                                argv=lambda _x, v=variant: ["pagecache", *timing_args(settings, [f"--variant={v}",
                                                                                                 f"--file-kib={kib}"])]))
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
             "cache_server": {"port": found[0], "name": found[1]} if found else None,
             "page_cache_file_kib": {"value": kib, "source": kib_source}, **sweep}
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
        recorded_facts=recorded_sweep_facts,
        params=(MAX_MIB,),
        aa=("chase", _cpu_ladder_aa),
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
        recorded_facts=recorded_storage_facts,
        aa=("cached", None),
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
        plan_changed={2: "revision 2 measures the page-cache hit at random pages of a file twice the largest cache "
                         "(from DRAM), where version 1 re-read a few hot pages"},
        params=(MAX_MIB,),
        # the A/A on a layer of the ladder's middle (the L1 row is too steady to tell anything)
        aa=lambda settings: ("L2" if "L2" in level_points(host_caches(settings), base_sizes(ladder_sweep(settings)))
                             else "L1", None),
    ),
]
