"""Kernel space vs user space (CLAIMS.md section 1, `space.*`).

Seed notes: "Kernel space is probably not a separate space independent of processes:
one process holds both kernel space and a user address space."
"""

from __future__ import annotations

import os
import re
from statistics import median
from typing import Any, Mapping

from perflab.claims import _live
from perflab.claims._common import per_op, timing_args
from perflab.claims._space_layout import user_layout_checks
from perflab.core.claim import Check, Checked, Claim, Curve, Evidence, Plan, SeriesSpec, Settings
from perflab.core.errors import ClaimSkipped
from perflab.core.params import Param
from perflab.core.record import Control, Decision
from perflab.core.rule import INF, Region, Rule, exact
from perflab.decide.rules import median_rule
from perflab.observe.procfs.snapshot import collect
from perflab.observe.procfs.tasks import survey

CALLS = Param("calls", 1_000_000, 1_000, 100_000_000, "null system calls per process", unit="calls")
ROUNDS = 1000  # pipe round trips in the positive control

TIMINGS = ("function-call", "vdso-clock_gettime", "syscall-getppid", "process-switch")


def switches(record: dict[str, Any]) -> float:
    """Context switches of the measuring thread: the perf software counter when it could
    count kernel-side events, else getrusage(RUSAGE_THREAD) (voluntary + involuntary)."""
    if record.get("perf_switches") is not None:
        return float(record["perf_switches"])
    return float(record["rusage_nvcsw"] + record["rusage_nivcsw"])


IN_CONTEXT = Rule(
    quantity="context switches per null system call",
    short="switches per call",
    unit="switches/call",
    supported=Region(-INF, 0.001),
    refuted=Region(0.5, INF),
    reason="CLAIMS.md, section 1: a system call that switched would count one per call; fixed before the first run",
)
# the switch probe's positive control: a same-CPU pipe ping-pong forces a switch per round trip
PROBE = Rule(quantity="context switches the probe sees per same-CPU pipe round trip", short="switches per round trip",
             supported=Region(1, INF), reason="each round trip blocks one side, so the other must be switched in")


def _plan(settings: Settings) -> Plan:
    calls = int(settings.params.get("calls", CALLS.default))
    specs = [
        SeriesSpec(
            name="context-switches",
            x=None,
            unit="switches/call",
            xs=(None,),
            argv=lambda _x: ["space", "--variant=ctxsw-count", f"--calls={calls}", f"--cpu={settings.cpu}"],
            value=lambda r: switches(r) / r["calls"],
        ),
        SeriesSpec(
            name="switch-probe-control",
            x=None,
            unit="switches/round trip",
            xs=(None,),
            argv=lambda _x: ["space", "--variant=ctxsw-control", f"--rounds={ROUNDS}", f"--cpu={settings.cpu}"],
            value=lambda r: switches(r) / r["rounds"],
            role="control",
        ),
    ]
    for name in TIMINGS:
        specs.append(
            SeriesSpec(
                name=name,
                x=None,
                unit="ns",
                xs=(None,),
                argv=lambda _x, name=name: ["space", *timing_args(settings, [f"--variant={name}"])],
                value=per_op,
            )
        )
    return Plan(specs)


def _decide(ev: Evidence, rule: Rule) -> Decision:
    return median_rule(ev.series["context-switches"].points.get(None, []), rule, ev)


def probe_control(ev: Evidence) -> Control:
    """Positive control: the switch counter must see the switches a same-CPU pipe
    ping-pong forces (at least one per round trip, in every process); a probe that reads 0
    fails it."""
    samples = ev.series["switch-probe-control"].points.get(None, [])
    if not samples:
        return Control("switch-probe", "positive", None, {"reason": "no samples"})
    assert PROBE.supported is not None
    passed = PROBE.supported.holds(min(samples), max(samples))
    detail = {"switches_per_round_trip": samples, "expected": f"{PROBE.supported.text()} per round trip",
              "rounds": ROUNDS}
    if not passed:
        detail["why"] = "the counter missed switches a same-CPU ping-pong must make: it cannot see them here"
    return Control("switch-probe", "positive", passed, detail)


def _derive(ev: Evidence) -> dict[str, Any]:
    """The ladder as ratios: what entering the kernel costs against a call, and what a
    real switch costs against entering the kernel."""
    m = {name: median(ev.series[name].points[None]) for name in TIMINGS}
    return {
        "syscall_over_function_call": m["syscall-getppid"] / m["function-call"],
        "syscall_over_vdso": m["syscall-getppid"] / m["vdso-clock_gettime"],
        "process_switch_over_syscall": m["process-switch"] / m["syscall-getppid"],
        "probe": "perf_event_open software counter (kernel-side events) when allowed, else getrusage(RUSAGE_THREAD)",
    }



# ---- space.user-layout ------------------------------------------------------------------
LAYOUT_THREADS = Param("threads", 4, 1, 64, "threads of the subject, stack sizes cycled", unit="threads")
STACK_KIB = (64, 200, 1000, 136)  # different on purpose: no size heuristic can pass
def _user_layout_observe(settings: Settings, measure) -> dict[str, Any]:
    n = int(settings.params.get("threads", LAYOUT_THREADS.default))
    sizes = ",".join(str(STACK_KIB[i % len(STACK_KIB)]) for i in range(min(n, len(STACK_KIB))))
    with _live.subject(["subject_threads", f"--threads={n}", f"--stack-kib={sizes}"]) as (_child, info):
        _live.wait_until(info["pid"], _live.all_blocked)
        snap = collect(info["pid"], sharing=False)
    return {"subject": info, "snapshot": snap, "threads": n}


def _user_layout_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    return user_layout_checks(obs["subject"], obs["snapshot"], obs["threads"])


# ---- space.kthread-no-user --------------------------------------------------------------
def kthread_checks(tasks: list[Mapping[str, Any]], self_pid: int) -> Checked:
    """The exact checks of space.kthread-no-user (pure) on a survey of every task."""
    live = [t for t in tasks if t["state"] not in "ZX" and not t["exiting"]]
    skipped = len(tasks) - len(live)
    kth = [t for t in live if t["kthread"]]
    users = [t for t in live if not t["kthread"]]

    def label(t):
        return f"{t['comm']} ({t['pid']}/{t['tid']}): mappings {t['mappings']}, VmSize {t['vmsize_kib']}"

    def check(name, group, bad, expected, unread_decides):
        unread = [t for t in group if t["mappings"] is None]
        wrong = [t for t in group if bad(t)]
        holds = False if wrong else (None if (unread and unread_decides) or not group else True)
        note = ""
        if unread:
            note = (f"{len(unread)} tasks' maps unreadable (ptrace read access refused: "
                    f"{', '.join(sorted({t['comm'] for t in unread})[:8])})"
                    + ("; " if unread_decides else ", their VmSize alone checked; "))
        if not group:
            note += "no such task visible here (a PID namespace hides kernel threads)"
        return Check(name, expected, f"{len(group) - len(wrong) - len(unread)} of {len(group)} as expected; "
                     f"exceptions: {len(wrong)}", holds, note + ("; ".join(label(t) for t in wrong[:20])))

    checks = [
        check("kernel threads (PF_KTHREAD) have no mappings and no VmSize", kth,
              lambda t: (t["mappings"] or 0) > 0 or t["vmsize_kib"] is not None,
              "0 lines in /proc/PID/maps and no VmSize line in status", True),
        check("user tasks have mappings and a VmSize", users,
              lambda t: t["mappings"] == 0 or not t["vmsize_kib"],
              "> 0 lines in maps (where readable) and VmSize > 0", False),
    ]
    me = next((t for t in live if t["pid"] == self_pid), None)
    controls = [Control(
        "probe-sees-mappings", "positive",
        None if me is None else (not me["kthread"] and bool(me["mappings"]) and bool(me["vmsize_kib"])),
        {"expected": "perflab's own process: not PF_KTHREAD, its mappings and VmSize seen",
         "observed": None if me is None else label(me)})]
    names: dict[str, int] = {}
    for t in kth:
        base = re.sub(r"[/:-]?\d+.*$", "", t["comm"]) or t["comm"]
        names[base] = names.get(base, 0) + 1
    evidence = {
        "tasks": len(tasks), "excluded_zombie_or_exiting": skipped,
        "kernel_threads": len(kth), "user_tasks": len(users),
        "kernel_thread_names": dict(sorted(names.items(), key=lambda kv: -kv[1])[:20]),
        "user_vmsize_kib": {"min": min((t["vmsize_kib"] or 0) for t in users) if users else None,
                            "max": max((t["vmsize_kib"] or 0) for t in users) if users else None},
        "method": "PF_KTHREAD (0x00200000) in field 9 of /proc/PID/task/TID/stat identifies a kernel "
        "thread; the property tested is read apart: lines of maps (once per thread group, whose tasks share "
        "one mm), the VmSize line of status (proc(5))",
    }
    series = Curve("tasks", "kind", "tasks")
    series.add("kernel threads", float(len(kth)))
    series.add("user tasks", float(len(users)))
    return Checked(checks, controls, evidence, [series])


def _kthread_observe(settings: Settings, measure) -> dict[str, Any]:
    tasks = survey()
    if not tasks:
        raise ClaimSkipped("/proc lists no task")
    return {"tasks": tasks, "self_pid": os.getpid()}


def _kthread_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    return kthread_checks(obs["tasks"], obs["self_pid"])


# ---- space.fd-in-kernel ----------------------------------------------------------------
def fd_checks(rec: Mapping[str, Any]) -> Checked:
    """The exact checks of space.fd-in-kernel (pure) on the fdshare kernel's record."""
    d, f, o, c = rec["dup"], rec["fork"], rec["open"], rec["controls"]
    checks = [
        Check("dup(): one open file, one offset", f"offset through fd moved to {d['read_bytes']}; kcmp 0 (equal)",
              {"offset_fd": d["offset_fd"], "offset_dup": d["offset_other"], "kcmp": d["kcmp"]},
              d["offset_fd"] == d["read_bytes"] == d["offset_other"] and d["kcmp"] == 0,
              f"{d['read_bytes']} bytes read through the dup"),
        Check("fork(): a read in the child moves the parent's offset",
              f"parent's offset {f['read_bytes']}; kcmp(parent fd, child fd) 0",
              {"offset_parent": f["offset_fd"], "kcmp": f["kcmp"]},
              f["offset_fd"] == f["read_bytes"] and f["kcmp"] == 0,
              f"the child read {f['read_bytes']} bytes; compared while it was alive"),
        Check("two open()s of one file: two offsets", f"offset through fd stays 0, the other at {o['read_bytes']}; "
              "kcmp != 0", {"offset_fd": o["offset_fd"], "offset_other": o["offset_other"], "kcmp": o["kcmp"]},
              o["offset_fd"] == 0 and o["offset_other"] == o["read_bytes"] and o["kcmp"] != 0 and bool(o["same_inode"]),
              "the same inode, a second open file description"),
    ]
    controls = [Control("kcmp-file", "positive", c["kcmp_self"] == 0 and c["kcmp_other_file"] != 0,
                        {"kcmp(fd, fd)": c["kcmp_self"], "kcmp(fd, /dev/null)": c["kcmp_other_file"],
                         "expected": "0 (equal) for a file against itself, non-0 against another file"})]
    evidence = {k: rec[k] for k in ("dup", "fork", "open", "dir", "temp_file", "file_bytes")}
    return Checked(checks, controls, evidence)


def _fd_observe(settings: Settings, measure) -> dict[str, Any]:
    return {"fdshare": measure(["fdshare", "--variant=offsets"], 30.0)}


def _fd_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    return fd_checks(obs["fdshare"])


CLAIMS = [
    Claim(
        id="space.syscall-in-context",
        statement="entering the kernel (a system call) does not switch processes",
        seed_point="1. one process holds both kernel space and a user address space",
        mechanism=(
            "A system call is a mode switch, not a context switch: the syscall instruction "
            "moves the same task to kernel mode on its own kernel stack (entry_SYSCALL_64 in "
            "arch/x86/entry/entry_64.S), with the kernel mapped in every process's page "
            "tables, and returns to it; no other task is scheduled, so no switch is counted "
            "(the scheduler's __schedule() in kernel/sched/core.c is what counts them). "
            "Timings beside it: a function call, a vDSO clock_gettime (no kernel entry at "
            "all, see vdso(7)), a null system call (getppid through syscall(2)) and a real "
            "switch between two processes pinned to one CPU (half a pipe round trip, the "
            "two one-byte pipe system calls included)."
        ),
        kernel="space",
        rule=IN_CONTEXT,
        plan=_plan,
        decide=_decide,
        params=(CALLS,),
        positive=probe_control,
        derive=_derive,
    ),
    Claim(
        id="space.user-layout",
        statement="a process's user address space holds its executable, shared libraries, a heap and one "
        "stack per thread",
        seed_point="1. user space holds the executable, shared libraries, heap and thread stacks",
        mechanism=(
            "execve(2) maps the executable's segments and the dynamic loader (fs/binfmt_elf.c "
            "load_elf_binary), sets up the main stack (grown down on faults, "
            "mm/mmap.c) and the brk area that malloc(3) extends for small blocks (the heap, "
            "mm/mmap.c brk); ld.so maps each shared library with mmap(2). A thread has no "
            "special region: glibc's pthread_create mmap()s an anonymous stack of the requested "
            "size with a PROT_NONE guard page below it (nptl/allocatestack.c) and passes it to "
            "clone(2). /proc/PID/maps lists them all (proc(5)); the mapping holding a thread's "
            "user stack pointer (from /proc/PID/task/TID/syscall while it is blocked) is its stack."
        ),
        kernel="subject_threads",
        rule=exact("executable, libc, heap, main stack and N thread stacks (matched to TIDs, holding the "
                   "pthread_getattr_np range) all found", "any of them missing or mismatched"),
        observe=_user_layout_observe,
        judge=_user_layout_judge,
        params=(LAYOUT_THREADS,),
    ),
    Claim(
        id="space.kthread-no-user",
        statement="kernel threads have no user address space (no mappings, no VmSize), unlike user tasks",
        seed_point="1. kernel threads like ksoftirqd seem to have only kernel space",
        mechanism=(
            "A kernel thread is created by kthread_create() (kernel/kthread.c) through "
            "kernel_clone() with PF_KTHREAD set and no mm: copy_mm() (kernel/fork.c) leaves "
            "tsk->mm NULL when the creator has none, and kthreadd has none. It borrows the "
            "previous task's page tables (active_mm) to run, but owns no user mappings. "
            "/proc/PID/maps walks tsk->mm and shows nothing; status prints Vm* lines only when "
            "there is an mm (fs/proc/task_mmu.c task_mem via proc_pid_status). A user task's "
            "mm holds at least its executable and stack. Zombies and exiting tasks have "
            "released their mm (exit_mm) and count as neither."
        ),
        kernel="space",
        rule=exact("every PF_KTHREAD task: 0 mappings, no VmSize; every user task: mappings and VmSize > 0",
                   "any exception"),
        observe=_kthread_observe,
        judge=_kthread_judge,
    ),
    Claim(
        id="space.fd-in-kernel",
        statement="a file descriptor is an index into a kernel table: the open file and its offset live in "
        "the kernel, shared by dup() and across fork(), not by two open()s",
        seed_point="1. kernel space holds the file descriptors; user space holds only the number",
        mechanism=(
            "A descriptor indexes the task's files_struct fd table, whose entries point to a "
            "struct file (the open file description: f_pos, f_flags) in kernel memory "
            "(include/linux/fdtable.h, fs/file.c). dup(2) installs a second pointer to the same "
            "struct file; fork(2) copies the table (dup_fd in fs/file.c, called from copy_files "
            "in kernel/fork.c), so both processes' entries point to the same files and a read "
            "in one moves the offset the other sees (open(2), 'open file description'). A second "
            "open(2) makes a new struct file with its own f_pos. kcmp(2) KCMP_FILE compares the "
            "struct file pointers of two descriptors."
        ),
        kernel="fdshare",
        rule=exact("offsets shared by dup and across fork, independent for two opens, kcmp agreeing in each case",
                   "any case otherwise"),
        observe=_fd_observe,
        judge=_fd_judge,
    ),
]
