"""What malloc does (CLAIMS.md section 5, `malloc.*`).

Seed notes: "malloc searches the heap for a free region of the requested size and
returns it (no system call?). If there is none, it grows the heap with brk(). When is
the heap first allocated? Copied from the parent at fork? And for init?"
"""

from __future__ import annotations

from typing import Any, Mapping

from perflab.core.claim import Check, Checked, Claim, Settings
from perflab.core.errors import EnvironmentRefused
from perflab.claims._traced import summary, traced
from perflab.core.model import Control, Series
from perflab.engine.process import kernel_path
from perflab.observe.procfs.parse import parse_maps

KIB = 1024
MIB = 1024 * KIB

# ---------------------------------------------------------------- malloc.brk-grows-heap

# (block size, blocks): all below the 128 KiB mmap threshold, 6.4 to 64 MiB of heap each
BRK_CASES = ((64, 100_000), (4 * KIB, 4_000), (64 * KIB, 1_000))
BRK_STEP_SUPPORTED = 64 * KIB  # mean heap growth per brk at least this: supported


def brk_checks(cases: list[dict[str, Any]]) -> list[Check]:
    """Decision of malloc.brk-grows-heap (pure). Each case: size, blocks, brk, mmap (calls
    between the markers), growth (bytes the program break moved)."""
    checks = []
    for c in cases:
        brk, blocks, growth = c["brk"], c["blocks"], c["growth"]
        per_brk = growth / brk if brk else float("inf")
        if brk >= blocks:
            holds: bool | None = False
        elif per_brk >= BRK_STEP_SUPPORTED:
            holds = True
        else:
            holds = None
        checks.append(Check(
            f"malloc({c['size']}) x {blocks:,}, never freed: mean heap growth per brk",
            expected=f">= {BRK_STEP_SUPPORTED // KIB} KiB per brk (refuted by a brk per allocation)",
            observed=per_brk,
            holds=holds,
            note=f"{brk} brk calls for {blocks:,} allocations; the break moved {growth:,} bytes"
            + ("" if holds is not None else "; below 64 KiB but fewer brk than allocations: not decided"),
        ))
        checks.append(Check(
            f"malloc({c['size']}) x {blocks:,}: no mmap",
            expected=0,
            observed=c["mmap"],
            holds=True if c["mmap"] == 0 else None,
            note="" if c["mmap"] == 0 else "mmap seen below the threshold: not supported (not a refutation in CLAIMS.md)",
        ))
    return checks


def _check_brk(settings: Settings, measure) -> Checked:
    cases, evidence = [], {}
    series = Series("heap growth per brk", "block size", "bytes/brk")
    for size, blocks in BRK_CASES:
        r, rec = traced("mallocs", "--variant=leak", f"--n={blocks}", f"--size={size}")
        ev = summary(r)
        steps = rec["steps"]
        cases.append({"size": size, "blocks": blocks, "brk": ev["brk"], "mmap": ev["mmap"],
                      "growth": rec["heap_growth_bytes"]})
        if ev["brk"]:
            series.add(size, rec["heap_growth_bytes"] / ev["brk"])
        evidence[f"malloc({size}) x {blocks}"] = {
            **ev, "heap_growth_bytes": rec["heap_growth_bytes"],
            "growth_steps": {"count": len(steps), "distinct": sorted(set(steps))[:20],
                             "first": steps[:5]},
        }
    control = Control("brk-probe", "positive", all(c["brk"] >= 1 for c in cases),
                      {"expected": ">= 1 brk call in every case (the heap did grow)",
                       "brk_calls": [c["brk"] for c in cases]})
    evidence["counting"] = "perflab.observe.trace between the markers; heap growth from sbrk(0) before and after"
    return Checked(brk_checks(cases), [control], evidence, [series])


# ---------------------------------------------------------------- malloc.mmap-threshold

THRESHOLD = 128 * KIB  # M_MMAP_THRESHOLD's default (mallopt(3))
THRESHOLD_SIZES = (64 * KIB, 120 * KIB, 128 * KIB, 256 * KIB, MIB, 4 * MIB, 64 * MIB)
REPEATED = 8  # malloc/free cycles in one process


def threshold_checks(cases: list[dict[str, Any]]) -> list[Check]:
    """Decision of malloc.mmap-threshold (pure). Each case: size, cycles, mmap, munmap
    (between the markers). Every size >= 128 KiB must make one mmap and one munmap per
    allocation, in fresh processes and in repeated cycles."""
    checks = []
    for c in cases:
        if c["size"] < THRESHOLD:
            continue
        want = c["cycles"]
        ok = c["mmap"] >= want and c["munmap"] >= want
        how = "fresh process, 1 allocation" if want == 1 else f"{want} malloc/free cycles in one process"
        checks.append(Check(
            f"malloc({c['size'] // KIB} KiB): {how}",
            expected=f"{want} mmap and {want} munmap",
            observed={"mmap": c["mmap"], "munmap": c["munmap"], "served_from_heap": c.get("in_heap")},
            holds=ok,
            note="" if ok else f"{want - min(c['mmap'], want)} of {want} allocations were served without their own mmap",
        ))
    return checks


def _check_threshold(settings: Settings, measure) -> Checked:
    cases = []
    fresh = Series("mmap calls per allocation, fresh process", "block size (KiB)", "mmap/allocation")
    repeated = Series(f"mmap calls per allocation, {REPEATED} cycles", "block size (KiB)", "mmap/allocation")
    for size in THRESHOLD_SIZES:
        for cycles, s in ((1, fresh), (REPEATED, repeated)):
            r, rec = traced("mallocs", "--variant=threshold", f"--size={size}", f"--cycles={cycles}")
            ev = summary(r)
            cases.append({"size": size, "cycles": cycles, "mmap": ev["mmap"], "munmap": ev["munmap"],
                          "brk": ev["brk"], "in_heap": rec["in_heap"]})
            s.add(size // KIB, ev["mmap"] / cycles)
    checks = threshold_checks(cases)
    failed = [c.name for c in checks if c.holds is False]
    evidence = {
        "cases": cases,
        "not_served_by_own_mmap": failed,
        "why": "glibc's dynamic threshold (mallopt(3), M_MMAP_THRESHOLD; malloc/malloc.c: in free(), "
        "munmap_chunk of a chunk larger than mp_.mmap_threshold raises the threshold to that chunk's size "
        "unless mp_.no_dyn_threshold is set, up to DEFAULT_MMAP_THRESHOLD_MAX = 32 MiB on 64-bit): after "
        "the first free of an mmapped block, later ones of that size come from the heap",
    }
    control = Control("mmap-probe", "positive",
                      any(c["mmap"] >= 1 for c in cases if c["cycles"] == 1 and c["size"] >= THRESHOLD),
                      {"expected": "the counter sees at least one mmap for a fresh allocation >= 128 KiB"})
    return Checked(checks, [control], evidence, [fresh, repeated])


# ---------------------------------------------------------------- malloc.thread-arenas


def _name(path: str) -> str:
    """A maps path as shown in reports: "heap mapping" for [heap] (brackets are markup
    in the terminal report), "(anonymous)" for none."""
    if not path:
        return "(anonymous)"
    return f"{path.strip('[]')} mapping" if path.startswith("[") else path


def mapping_of(maps: list, addr: int):
    return next((m for m in maps if m.start <= addr < m.end), None)


def arena_checks(rec: Mapping[str, Any], thread_mmaps: int | None) -> list[Check]:
    """Decision of malloc.thread-arenas (pure): the kernel's record (addresses, maps
    text) and the mmap calls traced around the thread's first malloc."""
    maps = parse_maps(rec["maps"])
    main_m = mapping_of(maps, rec["main_block"])
    thr_m = mapping_of(maps, rec["thread_block"])

    def desc(m):
        return None if m is None else f"{m.start:x}-{m.end:x} {m.perms} {_name(m.path)}"

    checks = [
        Check("the main thread's block is in the heap mapping", "heap mapping", desc(main_m),
              holds=main_m is not None and main_m.path == "[heap]"),
        Check("the second thread's block is not in the heap mapping", "outside the heap mapping", desc(thr_m),
              holds=thr_m is not None and thr_m.path != "[heap]"),
        Check("the second thread's block is in an anonymous mapping (an mmap'd arena)", "anonymous mapping",
              desc(thr_m), holds=thr_m is not None and not thr_m.path and thr_m.inode == 0),
    ]
    if thread_mmaps is None:
        checks.append(Check("the thread's first malloc called mmap (a new arena)", ">= 1", None, None,
                            "system calls could not be counted here"))
    else:
        checks.append(Check("the thread's first malloc called mmap (a new arena)", ">= 1", thread_mmaps,
                            holds=thread_mmaps >= 1))
    return checks


def _check_arenas(settings: Settings, measure) -> Checked:
    r, rec = traced("mallocs", "--variant=arenas")
    ev = summary(r)
    checks = arena_checks(rec, ev["mmap"])
    maps = parse_maps(rec["maps"])
    control = Control("maps-probe", "positive", any(m.path == "[heap]" for m in maps),
                      {"expected": "/proc/self/maps shows the main heap of a process that malloc'd"})
    evidence = {"main_block": hex(rec["main_block"]), "thread_block": hex(rec["thread_block"]),
                "program_break": hex(rec["brk"]), "thread_region_calls": ev,
                "maps": [f"{m.start:x}-{m.end:x} {m.perms} {_name(m.path)}" for m in maps]}
    return Checked(checks, [control], evidence)


# ---------------------------------------------------------------- malloc.heap-after-exec


def _static_available() -> str | None:
    """None if the statically linked subject was built, else why not (setup.py skips a
    kernel whose own flags fail, e.g. -static without libc.a; nothing compiles at run time)."""
    try:
        kernel_path("heapexec_static")
    except EnvironmentRefused:
        return ("heapexec_static was not built: static linking needs libc.a (Debian package libc6-dev) "
                "when perflab is built; the statically linked part is not evaluated")
    return None


def subject_checks(label: str, rec: Mapping[str, Any], brk_total: int, brk_region: int) -> list[Check]:
    """Pure: a freshly exec'd subject's [heap] is made by its own brk. brk_total: brk calls
    over the whole run (from execve); brk_region: those between main's entry and the end."""
    before_main = brk_total - brk_region
    heap0 = bool(rec["heap_at_main"])
    if heap0:
        h1 = Check(f"{label}: a heap mapping at main's entry was made by the program's own brk before main",
                   ">= 1 brk call between execve and main", before_main, holds=before_main >= 1,
                   note="static glibc sets up its TLS with sbrk before main (csu/libc-tls.c)")
    else:
        h1 = Check(f"{label}: no heap mapping at main's entry", "none", "none", holds=True,
                   note=f"{before_main} brk call(s) before main did not grow the break (brk(NULL) queries)")
    h2 = Check(f"{label}: after the program's first malloc its block is in a heap mapping made by its own brk",
               "block in the heap mapping, >= 1 brk since execve",
               {"block_in_heap": bool(rec["block_in_heap"]), "brk_calls": brk_total},
               holds=bool(rec["block_in_heap"]) and brk_total >= 1)
    return [h1, h2]


def probe_check(label: str, rec: Mapping[str, Any]) -> Check:
    """Pure: the parent's heap block (address and cookie) is gone after execve."""
    survived = bool(rec["probe_mapped"]) and bool(rec["probe_cookie"])
    return Check(f"{label}: the pre-exec heap block at {rec['probe']:#x} does not survive execve",
                 "not mapped, or mapped without the parent's contents",
                 {"mapped": bool(rec["probe_mapped"]), "holds_cookie": bool(rec["probe_cookie"])},
                 holds=not survived)


def fork_checks(rec: Mapping[str, Any]) -> list[Check]:
    """Pure: a forked child has the parent's heap (range, contents) on the same frames."""
    same_range = bool(rec["child_heap"]) and (rec["child_heap_lo"], rec["child_heap_hi"]) == (
        rec["parent_heap_lo"], rec["parent_heap_hi"])
    checks = [
        Check("forked child: the parent's heap mapping (range and contents)", "same range, cookie readable",
              {"range_same": same_range, "cookie": bool(rec["child_sees_cookie"])},
              holds=same_range and bool(rec["child_sees_cookie"])),
    ]
    cp, pp = rec["child_pfn"], rec["parent_pfn"]
    if cp is None or pp is None or cp <= 0 or pp <= 0:
        checks.append(Check("forked child: the heap page is the parent's physical frame (copy-on-write)",
                            "same PFN", {"child": cp, "parent": pp}, None,
                            "page frame numbers need CAP_SYS_ADMIN (root): pagemap hides them"))
    else:
        checks.append(Check("forked child: the heap page is the parent's physical frame (copy-on-write)",
                            "same PFN", {"child": cp, "parent": pp}, holds=cp == pp))
    return checks


def _check_heap_exec(settings: Settings, measure) -> Checked:
    checks, evidence = [], {}
    static_why = _static_available()
    subjects = [("dynamically linked", "heapexec", 0)]
    if static_why is None:
        subjects.append(("statically linked", "heapexec_static", 1))
    for label, kernel, target in subjects:
        r, rec = traced(kernel, "--variant=subject")
        brk_total, brk_region = r.calls("brk"), summary(r)["brk"]
        checks += subject_checks(label, rec, brk_total, brk_region)
        parent = measure(["heapexec", "--variant=exec-parent", f"--target={target}"], 30.0)
        checks.append(probe_check(f"{label}, exec'd from a process with a heap", parent))
        evidence[label] = {
            "heap_at_main": bool(rec["heap_at_main"]), "brk_before_main": brk_total - brk_region,
            "brk_after_main": brk_region, "heap_after_malloc": [hex(rec["heap_lo"]), hex(rec["heap_hi"])],
            "exec_parent_probe": {k: parent[k] for k in ("probe", "probe_mapped", "probe_cookie")},
            "mechanism": r.mechanism,
        }
    if static_why is not None:
        checks.append(Check("statically linked subject", "evaluated", None, None, static_why))
    child = measure(["heapexec", "--variant=fork-child"], 30.0)
    checks += fork_checks(child)
    evidence["forked child"] = dict(child)
    control = Control("heap-probe", "positive",
                      all(bool(evidence[label]["heap_after_malloc"]) for label, _k, _t in subjects)
                      and bool(child["parent_heap"]),
                      {"expected": "the maps probe sees a heap mapping once malloc has run (subjects and the fork parent)"})
    return Checked(checks, [control], evidence)


CLAIMS = [
    Claim(
        id="malloc.brk-grows-heap",
        statement="small allocations come from the heap; brk() is called only when it must grow, in large steps",
        seed_point="5. if there is no free region, malloc grows the heap with brk()",
        mechanism=(
            "glibc's main arena lives in the brk heap. When its top chunk cannot serve a "
            "request below the mmap threshold, sysmalloc() (malloc/malloc.c) calls "
            "MORECORE (sbrk) for the request plus M_TOP_PAD (128 KiB by default, mallopt(3)), "
            "rounded to pages, so one brk(2) serves many allocations. The kernel makes "
            "never-freed allocations of 64 B, 4 KiB and 64 KiB between trace markers; the "
            "brk and mmap calls are counted there and the program break is followed with sbrk(0)."
        ),
        kernel="mallocs",
        thresholds={"supported": "mean heap growth per brk >= 64 KiB and no mmap",
                    "refuted": "a brk per allocation"},
        check=_check_brk,
    ),
    Claim(
        id="malloc.mmap-threshold",
        statement="malloc serves every allocation of 128 KiB or more with its own mmap() and munmap()s it on free",
        seed_point="5. large allocations: M_MMAP_THRESHOLD",
        mechanism=(
            "A request of at least mp_.mmap_threshold (M_MMAP_THRESHOLD, 128 KiB by default) "
            "that the top chunk cannot serve is mmap'd by sysmalloc() and munmap'd by free() "
            "(munmap_chunk). But the threshold is dynamic (mallopt(3)): freeing an mmapped "
            "chunk raises mp_.mmap_threshold to its size (and the trim threshold to twice "
            "that), up to DEFAULT_MMAP_THRESHOLD_MAX (32 MiB on 64-bit), unless the program "
            "set M_MMAP_THRESHOLD itself (mp_.no_dyn_threshold). The kernel allocates, writes "
            "and frees sizes from 64 KiB to 64 MiB, once in a fresh process and in repeated "
            "cycles, and perflab.observe.trace counts mmap and munmap between markers."
        ),
        kernel="mallocs",
        thresholds={"supported": "every allocation >= 128 KiB made its own mmap and munmap in every case",
                    "refuted": "any did not (the evidence names which)"},
        check=_check_threshold,
    ),
    Claim(
        id="malloc.thread-arenas",
        statement="threads other than the main one allocate from separate mmap'd arenas, not the brk heap",
        seed_point="5. malloc searches the heap (which heap, with threads?)",
        mechanism=(
            "glibc gives a thread that finds the main arena contended, or has none yet, an "
            "arena of its own (arena_get2 -> _int_new_arena in malloc/arena.c): a "
            "HEAP_MAX_SIZE (64 MiB) aligned region reserved with mmap(PROT_NONE) and made "
            "writable with mprotect as it grows, up to M_ARENA_MAX (8 x cores) arenas. Only "
            "the main arena uses brk. The kernel mallocs in main and in a second thread, "
            "then reads /proc/self/maps; the thread's first malloc is traced between markers."
        ),
        kernel="mallocs",
        thresholds={"supported": "every check holds (addresses and mappings)", "refuted": "any check fails"},
        check=_check_arenas,
    ),
    Claim(
        id="malloc.heap-after-exec",
        statement="a freshly exec'd program's heap mapping is its own, made by its own first brk; nothing of the "
        "parent's heap survives execve(); a forked child shares the parent's heap copy-on-write",
        seed_point="5. when is the heap first allocated? copied from the parent at fork? and for init?",
        mechanism=(
            "execve(2) replaces the whole address space (exec_mmap in fs/exec.c drops the old "
            "mm); binfmt_elf sets mm->start_brk = mm->brk past the bss (randomized, "
            "arch_randomize_brk) without mapping anything there, so the heap mapping (the vma "
            "between start_brk and brk, which fs/proc/task_mmu.c labels as the heap) appears only when the program's own "
            "brk(2) moves the break: glibc's first malloc in a dynamic program, or static "
            "glibc's TLS set-up before main. fork(2) copies the mm (dup_mmap): the child has "
            "the same heap range and contents on the parent's frames, write-protected for "
            "copy-on-write. Evidence: a dynamically and a statically linked subject's maps at "
            "main's entry and after its first malloc, their traced brk calls, a probe of a "
            "parent's heap block across execve, and a forked child's view with PFNs."
        ),
        kernel="heapexec",
        thresholds={"supported": "every check holds",
                    "refuted": "a heap mapping present before the program's first brk, or parent heap contents "
                               "readable after exec"},
        check=_check_heap_exec,
    ),
]
