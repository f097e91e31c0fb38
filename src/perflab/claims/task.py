"""Processes vs threads (CLAIMS.md section 4, `task.*`).

Seed notes: "The kernel schedules tasks (process, thread or kernel thread): processes
and threads are treated alike. A thread's task_struct probably points at some of the
same members as its process (the heap, say)."

Kernels: ``task`` (thread / fork / CLONE_VM creation timings; a subject whose threads
burn different CPU times), ``subject_threads`` (threads and a forked child to compare
with kcmp), ``switch`` (thread and process switches on one CPU, shared with green.*).
"""

from __future__ import annotations

import os
from statistics import median
from typing import Any, Mapping

from perflab.claims import _live
from perflab.claims._common import per_op, timing_args
from perflab.claims.green import _same_cpu_spec, same_cpu_control
from perflab.core.claim import Check, Checked, Claim, Curve, Evidence, Plan, SeriesSpec, Settings
from perflab.core.errors import AccessDenied, ClaimSkipped
from perflab.core.params import Param
from perflab.core.record import Control, Decision, Outcome
from perflab.core.rule import INF, Region, Rule, exact, num
from perflab.decide import stats
from perflab.decide.rules import all_of, ratio_rule
from perflab.observe.procfs.kcmp import RESOURCES, Kcmp, KcmpUnavailable, NullProbe
from perflab.observe.procfs.snapshot import collect

SOURCE = "CLAIMS.md, section 4, the claim's Decision line"

# ---- task.thread-is-task -----------------------------------------------------------------
SPIN_THREADS = Param("threads", 4, 1, 16, "threads, thread i burning (i+1) units of CPU", unit="threads")
UNIT_MS = 40  # CPU burnt per unit (the subject's --unit-ms); /proc reports clock ticks (10 ms at USER_HZ 100)

THREAD_IS_TASK = exact(
    "N+1 tasks with the TIDs the threads report, states R (main) and S (threads), each thread's utime+stime "
    "within max({cpu_tol_ms} ms, {cpu_tol_pct}%) of the CPU it burned and increasing with it",
    "any of that otherwise",
    constants={"cpu_tol_ms": 25, "cpu_tol_pct": 25},
    reason="CLAIMS.md, section 4 (task.thread-is-task: exact). /proc reports a task's CPU time in clock ticks "
    "(10 ms at USER_HZ 100): the absolute tolerance on a thread's CPU time is 2 ticks and a bit, the relative "
    "one covers the longer burns",
)


def cpu_close(observed_s: float, expected_s: float, rule: Rule) -> bool:
    tol = max(rule["cpu_tol_ms"] / 1000, rule["cpu_tol_pct"] / 100 * expected_s)
    return abs(observed_s - expected_s) <= tol


def thread_is_task_checks(info: Mapping[str, Any], snap: Mapping[str, Any], unit_ms: float, rule: Rule) -> Checked:
    """The exact checks of task.thread-is-task (pure): the subject's own report (gettid,
    CLOCK_THREAD_CPUTIME_ID) against /proc/PID/task (procfs.snapshot.collect)."""
    pid = info["pid"]
    spin = info["threads"]
    n = len(spin)
    seen = {t["tid"]: t for t in snap["threads"]}
    expected_tids = {pid} | {t["tid"] for t in spin}
    rows = []
    for t in spin:
        s = seen.get(t["tid"], {})
        rows.append({"tid": t["tid"], "burned_s": t["burn_ns"] / 1e9, "own_clock_s": t["cpu_ns"] / 1e9,
                     "proc_cpu_s": s.get("cpu_s"), "state": s.get("state")})
    main = seen.get(pid, {})
    checks = [
        Check(f"{n} threads show {n + 1} tasks under /proc/PID/task", n + 1, len(seen), len(seen) == n + 1,
              f"TIDs {sorted(seen)}"),
        Check("each task has its own TID, the one gettid() returned in it", sorted(expected_tids), sorted(seen),
              set(seen) == expected_tids and len(expected_tids) == n + 1, "main thread's TID = PID"),
        Check("each task has its own scheduling state", {"main": "R (spinning)", "threads": "S (in futex)"},
              {"main": main.get("state"), "threads": sorted({r["state"] or "?" for r in rows})},
              main.get("state") == "R" and all(r["state"] == "S" for r in rows),
              "/proc/PID/task/TID/stat field 3, read while main spins and the threads block"),
    ]
    cpu = [r["proc_cpu_s"] for r in rows]
    within = [r["proc_cpu_s"] is not None and cpu_close(r["proc_cpu_s"], r["burned_s"], rule) for r in rows]
    increasing = all(a is not None and b is not None and a < b for a, b in zip(cpu, cpu[1:]))
    checks.append(Check(
        "each task's CPU time is its own (utime+stime per TID follows what it burned)",
        f"thread i: (i+1) x {num(unit_ms)} ms, within max({num(rule['cpu_tol_ms'])} ms, "
        f"{num(rule['cpu_tol_pct'])}%), increasing",
        [round(c, 3) if c is not None else None for c in cpu],
        all(within) and (increasing or n == 1),
        f"burned {[round(r['burned_s'], 3) for r in rows]} s; main (still spinning) {main.get('cpu_s')} s"))
    own_ok = all(cpu_close(r["own_clock_s"], r["burned_s"], rule) for r in rows)
    controls = [Control("thread-clock", "positive", own_ok,
                        {"expected": "each thread's own CLOCK_THREAD_CPUTIME_ID reads what it meant to burn",
                         "observed_s": [r["own_clock_s"] for r in rows]})]
    series = Curve("CPU time per task (/proc)", "tid", "s")
    for r in rows:
        if r["proc_cpu_s"] is not None:
            series.add(f"tid {r['tid']} ({r['burned_s'] * 1000:.0f} ms burned)", r["proc_cpu_s"])
    evidence = {"tasks": rows, "main": {"tid": pid, "state": main.get("state"), "cpu_s": main.get("cpu_s")},
                "clock_ticks_per_s": snap.get("clock_ticks_per_s"), "unit_ms": unit_ms}
    return Checked(checks, controls, evidence, [series])


def _thread_is_task_observe(settings: Settings, measure) -> dict[str, Any]:
    n = int(settings.params.get("threads", SPIN_THREADS.default))
    argv = ["task", "--variant=spin-subject", f"--n={n}", f"--unit-ms={UNIT_MS}"]
    with _live.subject(argv, timeout_s=60.0) as (_proc, info):
        pid = info["pid"]
        spinners = {t["tid"] for t in info["threads"]}
        _live.wait_until(pid, lambda st: all(st.get(t) not in (None, "running") for t in spinners))
        snap = collect(pid, sharing=False)
    # of the snapshot, what the checks read: each task's state and CPU time
    tasks = [{"tid": t["tid"], "state": t.get("state"), "cpu_s": t.get("cpu_s")} for t in snap["threads"]]
    return {"subject": info, "unit_ms": UNIT_MS,
            "snapshot": {"threads": tasks, "clock_ticks_per_s": snap.get("clock_ticks_per_s")}}


def _thread_is_task_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    return thread_is_task_checks(obs["subject"], obs["snapshot"], obs["unit_ms"], rule)


# ---- task.threads-share ------------------------------------------------------------------
SHARED = ("vm", "files", "fs", "sighand")


def threads_share_checks(obs: Mapping[str, Any]) -> Checked:
    """The exact checks of task.threads-share (pure). obs: {"threads": {resource: [equal
    to the main thread, per thread]}, "child": {resource: equal to the parent},
    "io": {...}, "control": {"self": {resource: bool}, "unrelated": {resource: bool}}}."""
    checks = []
    for r in SHARED:
        eq = obs["threads"][r]
        checks.append(Check(f"threads share {r} ({RESOURCES[r][1]})", f"kcmp equal for all {len(eq)} threads",
                            f"{sum(eq)} of {len(eq)} equal", bool(eq) and all(eq)))
    for r in SHARED:
        checks.append(Check(f"a forked child does not share {r}", "kcmp differs",
                            "equal" if obs["child"][r] else "differs", not obs["child"][r]))
    ctl = obs["control"]
    controls = [Control("kcmp-known-pairs", "positive",
                        all(ctl["self"][r] for r in SHARED) and not any(ctl["unrelated"][r] for r in SHARED),
                        {"a task with itself (must be equal)": ctl["self"],
                         "perflab vs the subject, unrelated (must differ)": ctl["unrelated"]})]
    evidence = {"kcmp": {"threads_vs_main": obs["threads"], "child_vs_parent": obs["child"]},
                "io_context": obs.get("io"),
                "note": "the I/O context (KCMP_IO) is allocated lazily: equal may mean both NULL; it is "
                "reported with the null probe's reading (procfs/kcmp.py NullProbe), not decided on"}
    return Checked(checks, controls, evidence)


def _threads_share_observe(settings: Settings, measure) -> dict[str, Any]:
    try:
        kc = Kcmp()
    except KcmpUnavailable as exc:
        raise ClaimSkipped(str(exc)) from None
    argv = ["subject_threads", "--threads=3", "--stack-kib=64,200,136", "--fork-child=1"]
    with NullProbe(kc) as probe, _live.subject(argv) as (_proc, info):
        pid, child = info["pid"], info["child_pid"]
        tids = [t["tid"] for t in info["threads"]]
        try:
            obs: dict[str, Any] = {
                "threads": {r: [kc.same(pid, t, RESOURCES[r][0]) for t in tids] for r in SHARED},
                "child": {r: kc.same(pid, child, RESOURCES[r][0]) for r in SHARED},
                "control": {"self": {r: kc.same(pid, pid, RESOURCES[r][0]) for r in SHARED},
                            "unrelated": {r: kc.same(os.getpid(), pid, RESOURCES[r][0]) for r in SHARED}},
            }
            io = RESOURCES["io"][0]
            obs["io"] = {"threads_equal": [kc.same(pid, t, io) for t in tids],
                         "child_equal": kc.same(pid, child, io),
                         "subject_has_none": probe.is_null(pid, "io"),
                         "probe": {"valid": probe.valid.get("io"), "reason": probe.reason}}
        except AccessDenied as exc:
            raise ClaimSkipped(f"{exc} (needs ptrace read access)") from None
    return obs


def _threads_share_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    return threads_share_checks(obs)


# ---- task.thread-cheaper -----------------------------------------------------------------
CREATE = (("thread", "create-thread"), ("fork", "create-fork"), ("clone-vm", "create-clone-vm"))
THREAD_CHEAPER = Rule(
    quantity="fork+exit+wait / pthread_create+join",
    short="fork / thread",
    supported=Region(1.5, INF),
    refuted=Region(-INF, 1.1),
    reason=SOURCE,
)


def _create_plan(settings: Settings) -> Plan:
    return Plan([SeriesSpec(name=name, x=None, unit="ns/create", xs=(None,),
                            argv=lambda _x, v=variant: ["task", *timing_args(settings, [f"--variant={v}"])],
                            value=per_op)
                 for name, variant in CREATE])


def _create_decide(ev: Evidence, rule: Rule) -> Decision:
    series = ev.series
    th = series["thread"].points.get(None, [])
    d = ratio_rule(series["fork"].points.get(None, []), th, rule, ev)
    cv = series.get("clone-vm")
    if cv is not None and cv.points.get(None) and th:
        try:
            est = stats.ratio_of_medians(cv.points[None], th, conf=ev.conf, n_boot=ev.n_boot, rng=ev.rng)
            d.evidence["clone(CLONE_VM) / thread (not decided on)"] = {"value": est.value, "ci": [est.lo, est.hi]}
        except (ValueError, ZeroDivisionError):
            pass
    med = {name: median(series[name].points[None]) for name, _ in CREATE
           if name in series and series[name].points.get(None)}
    text = ", ".join(f"{name} {v / 1e3:.3g} us" for name, v in med.items())
    d.reason = "; ".join(r for r in (d.reason, text) if r)
    return d


def _create_derive(ev: Evidence) -> dict[str, Any]:
    m = {name: median(ev.series[name].points[None]) for name, _ in CREATE}
    return {"median_ns": m, "fork_over_thread": m["fork"] / m["thread"],
            "clone_vm_over_thread": m["clone-vm"] / m["thread"], "fork_over_clone_vm": m["fork"] / m["clone-vm"]}


# ---- task.process-switch-dearer ----------------------------------------------------------
SWITCHES = ("thread-futex", "process-futex", "thread-pipe", "process-pipe")


def _switch_part(mechanism: str) -> Rule:
    """One mechanism's part: its process / thread switch ratio (the same thresholds for both)."""
    return Rule(name=mechanism, quantity=f"process / thread switch ({mechanism})",
                short=f"process / thread ({mechanism})", supported=Region(1.5, INF), refuted=Region(-INF, 1.2),
                reason=SOURCE)


PROCESS_SWITCH = Rule(
    quantity="process / thread switch (futex and pipe ping-pong, same CPU)",
    short="process / thread",
    parts=(_switch_part("futex"), _switch_part("pipe")),
    combine="each mechanism decides for itself: supported if both support, refuted if either refutes "
            "(the claim says 'a context switch', any); the headline names the deciding mechanism",
    version=2,
    reason="CLAIMS.md revision 2: each mechanism decides for itself; one refuting mechanism refutes the claim",
)


def _switch_plan(settings: Settings) -> Plan:
    specs = [SeriesSpec(name=name, x=None, unit="ns/switch", xs=(None,),
                        argv=lambda _x, v=name: ["switch", *timing_args(settings, [f"--variant={v}"])],
                        value=per_op) for name in SWITCHES]
    specs.append(_same_cpu_spec(settings))
    return Plan(specs)


def _switch_decide(ev: Evidence, rule: Rule) -> Decision:
    """Each mechanism's ratio on its part of the rule; supported if both support,
    refuted if either refutes."""
    s = ev.series
    parts = [ratio_rule(s[f"process-{p.name}"].points.get(None, []), s[f"thread-{p.name}"].points.get(None, []),
                        p, ev) for p in rule.parts]
    # the headline is the deciding mechanism: a refuting one, else one that is not yet decided
    lead = next((i for i, d in enumerate(parts) if d.outcome is Outcome.REFUTED),
                next((i for i, d in enumerate(parts) if d.outcome is not Outcome.SUPPORTED), 0))
    d = all_of(parts, rule, quantity=parts[lead].quantity, lead=lead)
    d.reason = "; ".join(r for r in [d.reason] + [_part(p) for p in parts] if r)
    return d


def _part(d: Decision) -> str:
    if d.value is None:
        return f"{d.quantity}: not measurable"
    ci = f" [{d.ci[0]:.3g}, {d.ci[1]:.3g}]" if d.ci else ""
    return f"{d.quantity} {d.value:.3g}{ci} {d.outcome.value}"


def _switch_derive(ev: Evidence) -> dict[str, Any]:
    m = {name: median(ev.series[name].points[None]) for name in SWITCHES}
    return {"median_ns": m, "futex_process_over_thread": m["process-futex"] / m["thread-futex"],
            "pipe_process_over_thread": m["process-pipe"] / m["thread-pipe"]}


CLAIMS = [
    Claim(
        id="task.thread-is-task",
        statement="every thread is a kernel task, with its own TID under /proc/PID/task, its own scheduling "
        "state and its own CPU time",
        seed_point="4. the kernel schedules tasks (process, thread or kernel thread) alike",
        mechanism=(
            "pthread_create(3) calls clone(2) with CLONE_THREAD (nptl/pthread_create.c), and "
            "copy_process() (kernel/fork.c) makes a full task_struct for the new thread: its own "
            "PID number (the TID, gettid(2)), its own scheduling entity (sched_fork, "
            "kernel/sched/core.c) with its own state and runtime accounting (se.sum_exec_runtime, "
            "utime/stime), in the same thread group (tgid). proc(5) lists each task of a group "
            "under /proc/PID/task/TID with its own stat (state field 3, utime and stime fields "
            "14-15, fs/proc/array.c do_task_stat)."
        ),
        kernel="task",
        rule=THREAD_IS_TASK,
        observe=_thread_is_task_observe,
        judge=_thread_is_task_judge,
        params=(SPIN_THREADS,),
    ),
    Claim(
        id="task.threads-share",
        statement="threads of one process share its address space, fd table, fs info and signal handlers; "
        "a forked child shares none of them",
        seed_point="4. a thread's task_struct probably points at some of the same members as its process",
        mechanism=(
            "A task_struct holds pointers to mm_struct (address space), files_struct (fd "
            "table), fs_struct (root, cwd, umask) and sighand_struct (signal handlers). "
            "copy_process() (kernel/fork.c) copies or shares each according to the clone flags "
            "(copy_mm, copy_files, copy_fs, copy_sighand): pthread_create passes CLONE_VM, "
            "CLONE_FILES, CLONE_FS and CLONE_SIGHAND, so a thread's pointers are its process's; "
            "fork() passes none, so the child gets copies. kcmp(2) compares those pointers "
            "between two tasks (kernel/kcmp.c). The I/O context is allocated lazily "
            "(block/blk-ioc.c), so kcmp may call two missing ones equal: reported, not decided on."
        ),
        kernel="subject_threads",
        rule=exact("kcmp VM, FILES, FS, SIGHAND equal between the threads and differ with the forked child",
                   "any comparison otherwise"),
        observe=_threads_share_observe,
        judge=_threads_share_judge,
    ),
    Claim(
        id="task.thread-cheaper",
        statement="creating a thread costs less than creating a process",
        seed_point="4. processes and threads are treated alike (are they equally dear to make?)",
        mechanism=(
            "Both go through kernel_clone() -> copy_process() (kernel/fork.c). fork() (no "
            "CLONE_VM) must copy the address space: dup_mm() duplicates every VMA and the page "
            "tables (copy_page_range, marking private pages copy-on-write), and the child's "
            "exit tears them down (exit_mmap); the first writes after the fork then fault. A "
            "thread (CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD...) takes a "
            "reference on each instead; glibc reuses cached thread stacks (nptl/allocatestack.c). "
            "clone(CLONE_VM) without CLONE_THREAD shares the mm but copies the fd table, fs and "
            "signal handlers and is a separate process: if it costs about a thread, the address "
            "space is what makes fork dear. Each figure is create + wait for it to be gone, "
            "parent and child on one CPU."
        ),
        kernel="task",
        rule=THREAD_CHEAPER,
        plan=_create_plan,
        decide=_create_decide,
        aa=("thread", None),
        derive=_create_derive,
    ),
    Claim(
        id="task.process-switch-dearer",
        statement="a context switch between two processes costs much more than one between two threads of "
        "a process",
        seed_point="4. (added) the address space changes in a process switch",
        mechanism=(
            "A switch goes through __schedule() -> context_switch() (kernel/sched/core.c): "
            "switch_mm_irqs_off() (arch/x86/mm/tlb.c) loads the next mm's page table root into "
            "CR3 only when the mm differs, i.e. between processes; with PCID the TLB entries "
            "of both survive (tagged by ASID), so the extra cost is the CR3 write and the "
            "TLB/cache misses that follow, and on a VM more. Registers, stack and FPU state are "
            "switched either way (__switch_to, arch/x86/kernel/process_64.c). Both pairs here "
            "are pinned to one CPU (switch.c: futex and pipe ping-pong, half a round trip each, "
            "the system calls included); the futex pair of processes uses a shared (not "
            "private) futex, the pipe pairs make the same system calls."
        ),
        kernel="switch",
        rule=PROCESS_SWITCH,
        plan=_switch_plan,
        decide=_switch_decide,
        aa=("thread-futex", None),
        positive=same_cpu_control,
        derive=_switch_derive,
    ),
]
