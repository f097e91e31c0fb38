"""fork and copy-on-write (CLAIMS.md section 6, `fork.*`).

Seed notes: "Right after fork the child gets a new virtual address range, but it maps to
the parent's physical memory: that should be CoW? vfork does not even copy the virtual
memory or page tables."
"""

from __future__ import annotations

import json
import random
from statistics import median
from typing import Any, Mapping

from perflab.core.claim import Checked, Claim, Curve, Evidence, Plan, SeriesSpec, Settings
from perflab.core.errors import AccessDenied, KernelFailed
from perflab.core.params import Param
from perflab.core.record import Control, Decision
from perflab.core.rule import INF, Region, Rule, exact
from perflab.decide import fits
from perflab.decide.rules import all_of, exponent_rule, ratio_rule
from perflab.claims._fork_cow import Frames, cow_checks, cow_observation
from perflab.engine.process import Child
from perflab.observe.procfs.pagemap import PAGE_SIZE, shared_frames

SOURCE = "CLAIMS.md, section 6, fixed before the first live run"

# ---------------------------------------------------------------- fork.cow

COW_PAGES = Param("pages", 256, 1, 65536, "pages the child reads, then writes", unit="pages")
COW_TIMEOUT_S = 60.0  # the cow kernel's whole life, its phases and our pagemap reads included
COW_RULE = exact(
    "every check holds: frames shared after fork and after reading, new after writing; "
    "k <= write faults <= {write_faults_factor}k+{write_faults_slack}; read faults <= {read_faults_max}",
    "any check fails",
    constants={"read_faults_max": 2, "write_faults_factor": 1.1, "write_faults_slack": 2},
    reason=f"{SOURCE} (fork.cow): one write-protect fault per page the child writes (k), with a little "
           "slack; reading pages it shares takes (almost) none",
)

def _frames(parent: int, child: int, addrs: list[int]) -> tuple[Frames, list[int | None] | None, str | None]:
    try:
        fs = shared_frames(parent, child, addrs)
    except AccessDenied as exc:
        return None, None, str(exc)
    return [(f.pfn_a, f.pfn_b) for f in fs], [f.mapcount for f in fs], None


def drive_cow(pages: int, timeout: float = COW_TIMEOUT_S) -> dict[str, Any]:
    """Run the cow kernel (an interactive engine.process.Child: its own process group,
    killed past ``timeout`` or on any exit from here), reading both processes' pagemaps
    between its phases."""
    out: dict[str, Any] = {}
    with Child(["cow", "--variant=cow", f"--pages={pages}"], timeout_s=timeout, interactive=True) as child:
        def phase(name: str) -> dict[str, Any]:
            line = child.readline(timeout)
            try:
                rec = json.loads(line)
            except ValueError:
                child.kill()  # silent, finished or babbling: nothing more will come; reap it for its status
                child.wait()
                raise child.failure(f"gave no {name!r} phase record (got {line[:200]!r})") from None
            if not isinstance(rec, dict) or rec.get("phase") != name:
                raise KernelFailed(f"cow: expected phase {name!r}, got {rec!r}")
            return rec

        forked = phase("forked")
        parent, pid, addr = forked["parent"], forked["child"], forked["addr"]
        addrs = [addr + i * PAGE_SIZE for i in range(pages)]
        out["after_fork"], out["mapcount_after_fork"], out["frames_note"] = _frames(parent, pid, addrs)
        child.send("go")
        out["read_faults"] = phase("read")["faults"]
        out["after_read"], _, _ = _frames(parent, pid, addrs)
        child.send("go")
        out["write_faults"] = phase("written")["faults"]
        out["after_write"], _, _ = _frames(parent, pid, addrs)
        child.send("go")
        done = phase("done")
        out["parent_intact"] = bool(done["parent_pages_intact"]) and done["child_status"] == 0
    return out  # leaving the Child closed its stdin, let it exit and reaped it


def _cow_observe(settings: Settings, measure) -> dict[str, Any]:
    pages = int(settings.params.get("pages", COW_PAGES.default))
    r = drive_cow(pages)
    return cow_observation(pages, r["after_fork"], r["after_read"], r["after_write"], r["read_faults"],
                           r["write_faults"], r["parent_intact"], r["mapcount_after_fork"], r["frames_note"])


def _cow_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    pages = obs["pages"]
    series = Curve("child's minor faults per page", "access", "faults/page")
    series.add("read", obs["read_faults"] / pages)
    series.add("write", obs["write_faults"] / pages)

    def summ(s):
        return None if s is None else {k: s[k] for k in ("shared", "pages", "first")}

    evidence = {
        "pages": pages,
        "frames_after_fork": summ(obs["after_fork"]),
        "kpagecount_after_fork": obs["kpagecount_after_fork"],
        "frames_after_read": summ(obs["after_read"]),
        "frames_after_write": summ(obs["after_write"]),
        "read_faults": obs["read_faults"],
        "write_faults": obs["write_faults"],
        "faults_per_written_page": obs["write_faults"] / pages,
        "frames_note": obs["frames_note"] or "PFNs from /proc/PID/pagemap, map counts from /proc/kpagecount",
        "faults": "getrusage(RUSAGE_SELF).ru_minflt in the child around each phase",
    }
    if obs["after_fork"] is None:
        control = Control("frame-probe", "positive", None, {"reason": obs["frames_note"]})
    else:
        present = obs["after_fork"]["present"]
        control = Control("frame-probe", "positive", present == pages,
                          {"expected": "every page the parent wrote is present with a PFN", "present": present})
    return Checked(cow_checks(obs, rule), [control], evidence, [series])


# ---------------------------------------------------------------- fork.cost-grows-with-memory

MAX_MIB = Param("max_mib", 1024, 64, 16384, "largest parent memory touched", unit="MiB")
REPS = 3  # timed fork+exit+wait per process after a cold one: a 1 GiB touch costs more than the forks
SMALL_REPS = 15  # at the smallest size and the empty parent a fork is cheap: more per process (fork_reps)
VFORK_REPS = 15  # vfork (~30 us) and posix_spawn (~0.5 ms) are cheap: more per process
FORK_COST = Rule(
    quantity="growth exponent (4 KiB pages) and largest / empty parent",
    short="exponent and largest / empty parent",
    parts=(
        Rule(name="exponent",
             quantity="growth exponent of fork 4k over the top decade of parent memory touched (MiB)",
             short="growth exponent", supported=Region(0.8, 1.25), refuted=Region(-INF, 0.3),
             reason=f"{SOURCE} (fork.cost-grows-with-memory): roughly linear in the parent's resident memory"),
        Rule(name="largest / empty",
             quantity="fork latency at the largest size / empty parent", short="largest size / empty parent",
             supported=Region(5, INF),
             reason=f"{SOURCE} (fork.cost-grows-with-memory); only the exponent refutes"),
    ),
    reason=SOURCE,
)


def sizes(max_mib: int) -> tuple[int, ...]:
    """Parent memory in MiB: max/64, then four points in the top decade (max/8, /4, /2, max)."""
    return tuple(sorted({max(1, max_mib // d) for d in (64, 8, 4, 2, 1)}))


def thp_available(host: Mapping[str, Any]) -> bool:
    return host.get("thp") in ("always", "madvise")


def fork_reps(mib: int, max_mib: int) -> int:
    """Timed forks per process. Within one process the forks of a small parent have a heavy
    tail (measured here at 16 MiB: 520-560 us typically, single forks up to 2.9 ms), so the
    median of 3 moved by 40% between processes and the A/A, which runs at the smallest size,
    failed under load. The smallest size and the empty parent lie outside the top decade the
    exponent is fitted on, and 15 forks of them cost < 20 ms: they get 15. Every size in the
    top decade keeps 3 (touching 1 GiB costs more than the forks), so the fit compares
    medians of the same number of forks."""
    return SMALL_REPS if mib <= max(1, max_mib // 64) else REPS


def _forkcost(variant: str, mib: int, thp: int, settings: Settings) -> list[str]:
    # not pinned: a fork costs 0.1 to 100 ms, far above the timer's resolution, and a
    # pinned parent and child share their CPU with whatever else runs there
    reps = fork_reps(mib, int(settings.params.get("max_mib", MAX_MIB.default)))
    return ["forkcost", f"--variant={variant}", f"--mib={mib}", f"--thp={thp}", f"--reps={reps}", "--cpu=-1"]


def _plan_fork(settings: Settings) -> Plan:
    xs = sizes(int(settings.params.get("max_mib", MAX_MIB.default)))
    per = lambda r: float(median(r["per_op_ns"]))  # noqa: E731
    specs = [
        SeriesSpec("fork 4k", "parent memory touched (MiB)", "ns", xs,
                   lambda m: _forkcost("fork", m, 0, settings), per, timeout_s=120.0),
        SeriesSpec("fork empty parent", None, "ns", (None,),
                   lambda _m: _forkcost("fork", 0, 0, settings), per),
    ]
    if thp_available(settings.host):
        specs.append(SeriesSpec("fork THP", "parent memory touched (MiB)", "ns", xs,
                                lambda m: _forkcost("fork", m, 1, settings), per, timeout_s=120.0,
                                derived=(("THP backing", "fraction of the memory on huge pages",
                                          lambda r: r["anon_huge_kib"] / 1024 / max(1, r["mib"])),)))
    return Plan(specs)


def decide_fork(ev: Evidence, rule: Rule) -> Decision:
    s = ev.series["fork 4k"]
    d1 = exponent_rule(s, rule.part("exponent"), ev)
    big = max(s.points) if s.points else None
    empty = ev.series["fork empty parent"].points.get(None, [])
    d2 = ratio_rule(s.points.get(big, []), empty, rule.part("largest / empty"), ev,
                    quantity=f"fork latency at {big} MiB / empty parent")
    return all_of([d1, d2], rule)


def _fit(series: Curve) -> dict[str, Any] | None:
    pts = {x: v for x, v in series.points.items() if isinstance(x, (int, float)) and x > 0}
    if len(pts) < 3:
        return None
    fit = fits.affine_fit(pts, conf=0.95, n_boot=400, rng=random.Random(0))
    return {"ns_per_mib": fit.b.value, "ns_per_mib_ci": [fit.b.lo, fit.b.hi], "intercept_ns": fit.a.value,
            "r2": fit.r2, "ns_per_4k_page": fit.b.value / 256}


def _derive_fork(ev: Evidence) -> dict[str, Any]:
    series = ev.series
    out: dict[str, Any] = {"fork_4k_fit": _fit(series["fork 4k"])}
    empty = series["fork empty parent"].points.get(None)
    if empty:
        out["empty_parent_ns"] = median(empty)
    thp = series.get("fork THP")
    if thp is None:
        out["fork_THP"] = "not measured: transparent huge pages are not available here"
        return out
    out["fork_THP_fit"] = _fit(thp)
    big = max(thp.points)
    s4 = series["fork 4k"].points.get(big)
    if s4:
        out[f"4k_over_THP_at_{big}_MiB"] = median(s4) / median(thp.points[big])
    backing = series.get("THP backing")
    if backing:
        out["THP_backing_fraction"] = {x: median(v) for x, v in sorted(backing.points.items())}
    out["reading"] = ("with THP a 2 MiB page is one PMD entry: fork copies 512x fewer page-table entries and "
                      "takes 512x fewer page references (copy_huge_pmd), so the slope falls by about that much")
    return out


# ---------------------------------------------------------------- fork.vfork-constant

SPAWNS = ("vfork", "posix_spawn")


def _flat(name: str) -> Rule:
    return Rule(name=name, quantity=f"{name} latency at the largest / at the smallest parent memory",
                short=f"{name} largest / smallest", supported=Region(0.8, 1.25), refuted=Region(2.0, INF),
                reason=f"{SOURCE} (fork.vfork-constant)")


VFORK = Rule(quantity="largest / smallest parent memory, vfork and posix_spawn", short="largest / smallest",
             parts=tuple(_flat(name) for name in SPAWNS), reason=SOURCE)


def _plan_vfork(settings: Settings) -> Plan:
    xs = (0, *sizes(int(settings.params.get("max_mib", MAX_MIB.default))))
    return Plan([SeriesSpec(
        "vfork", "parent memory touched (MiB)", "ns", xs,
        # pinned (the child inherits the mask): unpinned, a vfork child woken on the other
        # CPU made vfork bimodal here (39 or 75 us per process, against 31 us pinned)
        lambda m: ["forkcost", "--variant=spawn", f"--mib={m}", "--thp=0", f"--reps={VFORK_REPS}",
                   f"--cpu={settings.cpu}"],
        lambda r: float(median(r["vfork_ns"])), timeout_s=120.0,
        derived=(("posix_spawn", "ns", lambda r: float(median(r["per_op_ns"]))),),
    )])


def decide_vfork(ev: Evidence, rule: Rule) -> Decision:
    parts = []
    for name in SPAWNS:
        pts = ev.series[name].points
        lo, hi = min(pts), max(pts)
        parts.append(ratio_rule(pts[hi], pts[lo], rule.part(name), ev,
                                quantity=f"{name} latency at {hi} MiB / at {lo} MiB"))
    return all_of(parts, rule)


def _derive_vfork(ev: Evidence) -> dict[str, Any]:
    return {name: {x: median(v) for x, v in sorted(ev.series[name].points.items())} for name in SPAWNS}


CLAIMS = [
    Claim(
        id="fork.cow",
        statement="after fork, child and parent share physical pages until one of them writes",
        seed_point="6. right after fork the child maps the parent's physical memory: copy-on-write?",
        mechanism=(
            "fork(2) copies the parent's page tables (dup_mmap -> copy_page_range in mm/memory.c) "
            "but not its private pages: copy_present_pte() write-protects the PTE in both and "
            "takes a reference on the same page (mapcount 2). A read in the child needs nothing; "
            "the first write to a page takes a write-protect fault, and do_wp_page() -> "
            "wp_page_copy() gives the writer a new page (or reuses it when it is no longer "
            "shared). Evidence: /proc/PID/pagemap PFNs of both processes and /proc/kpagecount "
            "(Documentation/admin-guide/mm/pagemap.rst, root), read between the child's phases, "
            "and the child's minor faults (getrusage) while it reads and while it writes k pages."
        ),
        kernel="cow",
        rule=COW_RULE,
        observe=_cow_observe,
        judge=_cow_judge,
        params=(COW_PAGES,),
    ),
    Claim(
        id="fork.cost-grows-with-memory",
        statement="fork latency grows with the parent's resident memory, roughly linearly (4 KiB pages)",
        seed_point="6. fork copies the virtual memory and page tables (vfork does not)",
        mechanism=(
            "fork(2) copies every page-table entry of the parent's private mappings "
            "(copy_page_range -> copy_pte_range in mm/memory.c) and takes a reference on each "
            "present page, so its cost grows with resident 4 KiB pages; with transparent huge "
            "pages a 2 MiB page is one PMD entry (copy_huge_pmd), 512 times fewer. The kernel "
            "maps and writes M MiB (madvise MADV_NOHUGEPAGE, or MADV_HUGEPAGE for the THP "
            "series, madvise(2)), then times fork + the child's _exit + waitpid."
        ),
        kernel="forkcost",
        rule=FORK_COST,
        plan=_plan_fork,
        decide=decide_fork,
        params=(MAX_MIB,),
        aa=("fork 4k", lambda s: sizes(int(s.params.get("max_mib", MAX_MIB.default)))[0]),
        # fork's latency on this VM wanders +-15% over seconds (one process timing 16 MiB forks
        # in a loop saw 550-790 us, and 1.0-1.3 ms stretches): at 3 per round the A/A's 90% CI
        # reached past 1.10 in one run of five here and in three runs in a row on CI; 6 per
        # round narrow it by sqrt(2), for ~2 s (8 runs of 8 passed here)
        aa_per_round=6,
        derive=_derive_fork,
    ),
    Claim(
        id="fork.vfork-constant",
        statement="vfork (and posix_spawn) latency does not grow with the parent's memory",
        seed_point="6. vfork does not even copy the virtual memory or page tables",
        mechanism=(
            "vfork(2) is clone(CLONE_VM | CLONE_VFORK): the child runs on the parent's mm "
            "(copy_mm shares it when CLONE_VM is set, kernel/fork.c), so no page table is copied, "
            "and the parent sleeps until the child execs or exits. glibc's posix_spawn(3) uses "
            "the same clone flags (sysdeps/unix/sysv/linux/spawni.c) and then execs. Timed: "
            "vfork + _exit + waitpid, and posix_spawn of /bin/true + waitpid, from the same "
            "parent after it wrote M MiB."
        ),
        kernel="forkcost",
        rule=VFORK,
        plan=_plan_vfork,
        decide=decide_vfork,
        params=(MAX_MIB,),
        aa=("vfork", 0),
        derive=_derive_vfork,
    ),
]
