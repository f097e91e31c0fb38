"""What malloc does (CLAIMS.md section 5, `malloc.*`).

Seed notes: "malloc searches the heap for a free region of the requested size and
returns it (no system call?). If there is none, it grows the heap with brk(). When is
the heap first allocated? Copied from the parent at fork? And for init?"

Every claim here is structural: ``observe`` traces the ``mallocs`` / ``heapexec``
kernels (claims/_traced.py) and keeps what it saw as plain data; ``judge`` (pure) turns
that into the exact checks, with the numbers of the claim's rule.
"""

from __future__ import annotations

from typing import Any, Mapping

from perflab.claims._malloc_exec import fork_checks, probe_check, subject_checks
from perflab.claims._traced import BRK_PROBE, MMAP_PROBE, probe_holds, summary, traced
from perflab.core.claim import Check, Checked, Claim, Curve, Settings
from perflab.core.errors import EnvironmentRefused
from perflab.core.record import Control
from perflab.core.rule import Rule, exact
from perflab.engine.process import kernel_path
from perflab.observe.procfs.parse_maps import parse_maps

KIB = 1024
MIB = 1024 * KIB
SOURCE = "CLAIMS.md, section 5, fixed before the first live run"

# ---------------------------------------------------------------- malloc.brk-grows-heap

BRK_RULE = exact(
    "mean heap growth per brk >= {step_kib} KiB and no mmap",
    "{brk_per_allocation} brk per allocation (or more)",
    constants={"step_kib": 64, "brk_per_allocation": 1},
    reason=f"{SOURCE} (malloc.brk-grows-heap): sysmalloc grows the heap by the request plus M_TOP_PAD "
           "(128 KiB by default), so large steps show brk serving many allocations at once",
)
# (block size, blocks): all below the 128 KiB mmap threshold, 6.4 to 64 MiB of heap each
BRK_CASES = ((64, 100_000), (4 * KIB, 4_000), (64 * KIB, 1_000))


def brk_checks(cases: list[Mapping[str, Any]], rule: Rule) -> list[Check]:
    """Decision of malloc.brk-grows-heap (pure). Each case: size, blocks, brk, mmap (calls
    between the markers), growth (bytes the program break moved)."""
    step_kib, per_alloc = rule["step_kib"], rule["brk_per_allocation"]
    checks = []
    for c in cases:
        brk, blocks, growth = c["brk"], c["blocks"], c["growth"]
        per_brk = growth / brk if brk else float("inf")
        if brk >= per_alloc * blocks:
            holds: bool | None = False
        elif per_brk >= step_kib * KIB:
            holds = True
        else:
            holds = None
        checks.append(Check(
            f"malloc({c['size']}) x {blocks:,}, never freed: mean heap growth per brk",
            expected=f">= {step_kib:g} KiB per brk (refuted by a brk per allocation)",
            observed=per_brk,
            holds=holds,
            note=f"{brk} brk calls for {blocks:,} allocations; the break moved {growth:,} bytes"
            + ("" if holds is not None else f"; below {step_kib:g} KiB but fewer brk than allocations: not decided"),
            inconclusive=None if holds is not None else "between",
        ))
        checks.append(Check(
            f"malloc({c['size']}) x {blocks:,}: no mmap",
            expected=0,
            observed=c["mmap"],
            holds=True if c["mmap"] == 0 else None,
            note="" if c["mmap"] == 0 else "mmap seen below the threshold: not supported (not a refutation in CLAIMS.md)",
            inconclusive=None if c["mmap"] == 0 else "between",
        ))
    return checks


def _brk_observe(settings: Settings, measure) -> dict[str, Any]:
    cases = []
    for size, blocks in BRK_CASES:
        counts, rec = traced("mallocs", "--variant=leak", f"--n={blocks}", f"--size={size}")
        steps = rec["steps"]
        cases.append({"size": size, "blocks": blocks, "trace": counts, "growth": rec["heap_growth_bytes"],
                      "growth_steps": {"count": len(steps), "distinct": sorted(set(steps))[:20], "first": steps[:5]}})
    return {"cases": cases}


def _brk_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    cases, evidence = [], {}
    series = Curve("heap growth per brk", "block size", "bytes/brk")
    for c in obs["cases"]:
        t = c["trace"]
        cases.append({"size": c["size"], "blocks": c["blocks"], "brk": t["brk"], "mmap": t["mmap"],
                      "growth": c["growth"]})
        if t["brk"]:
            series.add(c["size"], c["growth"] / t["brk"])
        evidence[f"malloc({c['size']}) x {c['blocks']}"] = {
            **summary(t), "heap_growth_bytes": c["growth"], "growth_steps": c["growth_steps"]}
    control = Control("brk-probe", "positive", all(probe_holds(BRK_PROBE, c["brk"]) for c in cases),
                      {"expected": f"{BRK_PROBE.supported.text()} brk calls in every case (the heap did grow)",
                       "brk_calls": [c["brk"] for c in cases]})
    evidence["counting"] = "perflab.observe.trace between the markers; heap growth from sbrk(0) before and after"
    return Checked(brk_checks(cases, rule), [control], evidence, [series])


# ---------------------------------------------------------------- malloc.mmap-threshold

THRESHOLD_RULE = exact(
    "every allocation >= {threshold_kib} KiB made its own mmap and munmap in every case",
    "any did not (the evidence names which)",
    constants={"threshold_kib": 128},  # M_MMAP_THRESHOLD's default (mallopt(3))
    reason=f"{SOURCE} (malloc.mmap-threshold): the claim as users state it, at glibc's documented default",
)
THRESHOLD = int(THRESHOLD_RULE["threshold_kib"]) * KIB  # the plan's sizes lie around it
THRESHOLD_SIZES = (THRESHOLD // 2, THRESHOLD - 8 * KIB, THRESHOLD, 2 * THRESHOLD, MIB, 4 * MIB, 64 * MIB)
REPEATED = 8  # malloc/free cycles in one process


def threshold_checks(cases: list[Mapping[str, Any]], rule: Rule) -> list[Check]:
    """Decision of malloc.mmap-threshold (pure). Each case: size, cycles, mmap, munmap
    (between the markers). Every size >= the threshold must make one mmap and one munmap
    per allocation, in fresh processes and in repeated cycles."""
    threshold = rule["threshold_kib"] * KIB
    checks = []
    for c in cases:
        if c["size"] < threshold:
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


def _threshold_observe(settings: Settings, measure) -> dict[str, Any]:
    cases = []
    for size in THRESHOLD_SIZES:
        for cycles in (1, REPEATED):
            counts, rec = traced("mallocs", "--variant=threshold", f"--size={size}", f"--cycles={cycles}")
            cases.append({"size": size, "cycles": cycles, "mmap": counts["mmap"], "munmap": counts["munmap"],
                          "brk": counts["brk"], "in_heap": rec["in_heap"]})
    return {"cases": cases, "repeated": REPEATED}


def _threshold_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    cases, repeated = obs["cases"], obs["repeated"]
    threshold_kib = rule["threshold_kib"]
    fresh = Curve("mmap calls per allocation, fresh process", "block size (KiB)", "mmap/allocation")
    cycled = Curve(f"mmap calls per allocation, {repeated} cycles", "block size (KiB)", "mmap/allocation")
    for c in cases:
        (fresh if c["cycles"] == 1 else cycled).add(c["size"] // KIB, c["mmap"] / c["cycles"])
    checks = threshold_checks(cases, rule)
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
                      any(probe_holds(MMAP_PROBE, c["mmap"]) for c in cases
                          if c["cycles"] == 1 and c["size"] >= threshold_kib * KIB),
                      {"expected": f"the counter sees {MMAP_PROBE.supported.text()} mmap calls for a fresh "
                                   f"allocation >= {threshold_kib:g} KiB"})
    return Checked(checks, [control], evidence, [fresh, cycled])


# ---------------------------------------------------------------- malloc.thread-arenas

ARENA_RULE = exact(
    "every check holds (addresses and mappings; the thread's first malloc made >= {arena_mmaps} mmap)",
    "any check fails",
    constants={"arena_mmaps": 1},
    reason=f"{SOURCE} (malloc.thread-arenas): a new arena is reserved with mmap (_int_new_arena)",
)


def _name(path: str) -> str:
    """A maps path as shown in reports: "heap mapping" for [heap] (brackets are markup
    in the terminal report), "(anonymous)" for none."""
    if not path:
        return "(anonymous)"
    return f"{path.strip('[]')} mapping" if path.startswith("[") else path


def mapping_of(maps: list, addr: int):
    return next((m for m in maps if m.start <= addr < m.end), None)


def arena_checks(rec: Mapping[str, Any], thread_mmaps: int | None, rule: Rule) -> list[Check]:
    """Decision of malloc.thread-arenas (pure): the kernel's record (addresses, maps
    text) and the mmap calls traced around the thread's first malloc."""
    maps = parse_maps(rec["maps"])
    main_m = mapping_of(maps, rec["main_block"])
    thr_m = mapping_of(maps, rec["thread_block"])
    need = rule["arena_mmaps"]

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
    name = "the thread's first malloc called mmap (a new arena)"
    if thread_mmaps is None:
        checks.append(Check(name, f">= {need:g}", None, None, "system calls could not be counted here"))
    else:
        checks.append(Check(name, f">= {need:g}", thread_mmaps, holds=thread_mmaps >= need))
    return checks


def _arenas_observe(settings: Settings, measure) -> dict[str, Any]:
    counts, rec = traced("mallocs", "--variant=arenas")
    return {"record": {k: rec[k] for k in ("main_block", "thread_block", "brk", "maps")}, "thread_calls": counts}


def _arenas_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    rec, ev = obs["record"], obs["thread_calls"]
    checks = arena_checks(rec, None if ev is None else ev["mmap"], rule)
    maps = parse_maps(rec["maps"])
    control = Control("maps-probe", "positive", any(m.path == "[heap]" for m in maps),
                      {"expected": "/proc/self/maps shows the main heap of a process that malloc'd"})
    evidence = {"main_block": hex(rec["main_block"]), "thread_block": hex(rec["thread_block"]),
                "program_break": hex(rec["brk"]), "thread_region_calls": None if ev is None else summary(ev),
                "maps": [f"{m.start:x}-{m.end:x} {m.perms} {_name(m.path)}" for m in maps]}
    return Checked(checks, [control], evidence)


# ---------------------------------------------------------------- malloc.heap-after-exec

HEAP_EXEC_RULE = exact(
    "every check holds: each subject's heap mapping made by >= {own_brk_calls} brk of its own, no parent "
    "heap block after execve, a forked child on the parent's heap and frames",
    "a heap mapping present before the program's first brk, or parent heap contents readable after exec",
    constants={"own_brk_calls": 1},
    reason=f"{SOURCE} (malloc.heap-after-exec)",
)


def _static_available() -> str | None:
    """None if the statically linked subject was built, else why not (setup.py skips a
    kernel whose own flags fail, e.g. -static without libc.a; nothing compiles at run time)."""
    try:
        kernel_path("heapexec_static")
    except EnvironmentRefused:
        return ("heapexec_static was not built: static linking needs libc.a (Debian package libc6-dev) "
                "when perflab is built; the statically linked part is not evaluated")
    return None


SUBJECT_FIELDS = ("heap_at_main", "heap_after_malloc", "heap_lo", "heap_hi", "block_in_heap")


def _heap_exec_observe(settings: Settings, measure) -> dict[str, Any]:
    static_why = _static_available()
    kernels = [("dynamically linked", "heapexec", 0)]
    if static_why is None:
        kernels.append(("statically linked", "heapexec_static", 1))
    subjects = []
    for label, kernel, target in kernels:
        counts, rec = traced(kernel, "--variant=subject")
        parent = measure(["heapexec", "--variant=exec-parent", f"--target={target}"], 30.0)
        subjects.append({"label": label, "record": {k: rec[k] for k in SUBJECT_FIELDS},
                         "brk_total": counts["whole_run"].get("brk", 0), "brk_region": counts["brk"],
                         "mechanism": counts["mechanism"],
                         "exec_parent": {k: parent[k] for k in ("probe", "probe_mapped", "probe_cookie")}})
    child = measure(["heapexec", "--variant=fork-child"], 30.0)
    return {"subjects": subjects, "static_unavailable": static_why, "forked_child": child}


def _heap_exec_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    checks, evidence = [], {}
    for s in obs["subjects"]:
        label, rec = s["label"], s["record"]
        checks += subject_checks(label, rec, s["brk_total"], s["brk_region"], rule)
        checks.append(probe_check(f"{label}, exec'd from a process with a heap", s["exec_parent"]))
        evidence[label] = {
            "heap_at_main": bool(rec["heap_at_main"]), "brk_before_main": s["brk_total"] - s["brk_region"],
            "brk_after_main": s["brk_region"], "heap_after_malloc": [hex(rec["heap_lo"]), hex(rec["heap_hi"])],
            "exec_parent_probe": dict(s["exec_parent"]), "mechanism": s["mechanism"],
        }
    if obs["static_unavailable"] is not None:
        checks.append(Check("statically linked subject", "evaluated", None, None, obs["static_unavailable"]))
    child = obs["forked_child"]
    checks += fork_checks(child)
    evidence["forked child"] = dict(child)
    control = Control("heap-probe", "positive",
                      all(bool(s["record"]["heap_after_malloc"]) for s in obs["subjects"]) and bool(child["parent_heap"]),
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
        rule=BRK_RULE,
        observe=_brk_observe,
        judge=_brk_judge,
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
        rule=THRESHOLD_RULE,
        observe=_threshold_observe,
        judge=_threshold_judge,
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
        rule=ARENA_RULE,
        observe=_arenas_observe,
        judge=_arenas_judge,
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
        sources=("heapexec_static",),  # the statically linked subject
        rule=HEAP_EXEC_RULE,
        observe=_heap_exec_observe,
        judge=_heap_exec_judge,
    ),
]
