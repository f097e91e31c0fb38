"""fork vs clone (CLAIMS.md section 7, `clone.*`).

Seed notes: "fork creates a child process, clone creates a thread; clone takes a
function and a separate stack; flags choose what parent and child share: CLONE_FILES,
CLONE_FS, CLONE_IO, CLONE_VM."

clone.fork-is-clone and clone.thread-flags trace the ``task`` kernel's marked fork() and
pthread_create() with perflab.observe.trace (docs/trace.md), which runs its own positive control
first; clone.flags-share runs the ``cloneshare`` kernel.
"""

from __future__ import annotations

from typing import Any, Mapping

from perflab.engine import process
from perflab.observe import trace
from perflab.core.claim import Check, Checked, Claim, Settings
from perflab.core.errors import ClaimSkipped
from perflab.core.model import Control
from perflab.observe.trace import TraceResult, Unavailable

THREAD_REQUIRED = ("CLONE_VM", "CLONE_FS", "CLONE_FILES", "CLONE_SIGHAND", "CLONE_THREAD")
THREAD_ALSO = ("CLONE_SYSVSEM", "CLONE_SETTLS", "CLONE_PARENT_SETTID", "CLONE_CHILD_CLEARTID")
TRACE_TIMEOUT_S = 60.0


def _trace_control(result: TraceResult) -> Control:
    rep = result.control
    if rep is None:
        return Control("trace-control", "positive", None, {"reason": "no control report"})
    return Control("trace-control", "positive", rep.passed,
                   {"mechanism": rep.mechanism, "checks": "; ".join(rep.checks), "failures": "; ".join(rep.failures) or "none",
                    "workload": "trace_control --variant=control: 29 getppid calls, a thread and a fork"})


def _region_clones(result: TraceResult) -> tuple[list, str]:
    """The clone/clone3 calls between the markers, or why they cannot be read."""
    if isinstance(result.clone_calls, Unavailable):
        return [], result.clone_calls.reason
    if result.region is None or isinstance(result.region, Unavailable):
        return [], f"no region between the markers: {result.region}"
    return [c for c in result.clone_calls if c.in_region], ""


def _call_rows(calls) -> list[dict[str, Any]]:
    return [{"syscall": c.syscall, "count": c.count, "flags": None if isinstance(c.flags, Unavailable) else hex(c.flags),
             "decoded": c.describe(), "flag_names": list(c.flag_names),
             "exit_signal": c.exit_signal_name if not isinstance(c.exit_signal_name, Unavailable) else None}
            for c in calls]


def _base_evidence(result: TraceResult, calls) -> dict[str, Any]:
    region = result.region if isinstance(result.region, dict) else None
    return {"mechanism": result.mechanism, "rejected_mechanisms": dict(result.rejected),
            "clone_calls_in_region": _call_rows(calls),
            "region_syscalls": region,
            "whole_run_clone_calls": {k: result.calls(k) for k in ("clone", "clone3", "fork", "vfork")}}


# ---- clone.fork-is-clone -------------------------------------------------------------------
def fork_checks(result: TraceResult) -> Checked:
    """The exact checks of clone.fork-is-clone (pure) on a trace of one marked fork()."""
    calls, why = _region_clones(result)
    region = result.region if isinstance(result.region, dict) else {}
    n = sum(c.count for c in calls)
    checks = [Check("fork() issues one clone or clone3 system call", "1 clone/clone3, 0 fork/vfork between the markers",
                    {"clone/clone3": n, "fork": region.get("fork", 0), "vfork": region.get("vfork", 0)},
                    None if why else (n == 1 and not region.get("fork") and not region.get("vfork")), why)]
    readable = [c for c in calls if not isinstance(c.flags, Unavailable)]
    if n == 1 and readable:
        c = readable[0]
        checks.append(Check("its flags: no CLONE_VM (nor CLONE_THREAD)", "CLONE_VM and CLONE_THREAD absent",
                            c.describe(), not c.has("CLONE_VM") and not c.has("CLONE_THREAD")))
        checks.append(Check("its exit signal is SIGCHLD", "SIGCHLD", c.exit_signal_name,
                            c.exit_signal_name == "SIGCHLD"))
    else:
        note = why or ("the mechanism cannot read this call's flags" if calls else "no call to read")
        checks.append(Check("its flags: no CLONE_VM (nor CLONE_THREAD)", "CLONE_VM and CLONE_THREAD absent",
                            None, None, note))
        checks.append(Check("its exit signal is SIGCHLD", "SIGCHLD", None, None, note))
    return Checked(checks, [_trace_control(result)], _base_evidence(result, calls))


# ---- clone.thread-flags ----------------------------------------------------------------------
def thread_checks(result: TraceResult) -> Checked:
    """The exact checks of clone.thread-flags (pure) on a trace of one marked pthread_create."""
    calls, why = _region_clones(result)
    n = sum(c.count for c in calls)
    checks = [Check("pthread_create issues one clone or clone3 system call", 1, n, None if why else n == 1, why)]
    readable = [c for c in calls if not isinstance(c.flags, Unavailable)]
    c = readable[0] if n == 1 and readable else None
    note = why or ("the mechanism cannot read this call's flags" if calls else "no call to read")
    for flag in THREAD_REQUIRED:
        checks.append(Check(f"{flag} set", "set", None if c is None else ("set" if c.has(flag) else "absent"),
                            None if c is None else c.has(flag), "" if c else note))
    checks.append(Check("no exit signal (a thread notifies nobody)", None,
                        None if c is None else c.exit_signal_name,
                        None if c is None else c.exit_signal_name is None, "" if c else note))
    evidence = _base_evidence(result, calls)
    if c is not None:
        evidence["flags_found"] = list(c.flag_names)
        evidence["also_expected_from_glibc"] = {f: c.has(f) for f in THREAD_ALSO}
        evidence["syscall"] = c.syscall
    return Checked(checks, [_trace_control(result)], evidence)


def _traced(variant: str) -> TraceResult:
    argv = [str(process.kernel_path("task")), f"--variant={variant}"]
    try:
        return trace.count(argv, region=trace.MARKER, timeout=TRACE_TIMEOUT_S)
    except trace.TraceUnavailable as exc:
        raise ClaimSkipped(str(exc)) from None


def _fork_check(settings: Settings, measure) -> Checked:
    return fork_checks(_traced("fork-marked"))


def _thread_check(settings: Settings, measure) -> Checked:
    return thread_checks(_traced("thread-marked"))


# ---- clone.flags-share -----------------------------------------------------------------------
RESOURCE_OF = {"CLONE_VM": "vm", "CLONE_FILES": "files", "CLONE_FS": "fs", "CLONE_SIGHAND": "sighand",
               "CLONE_IO": "io"}
EFFECT = {"CLONE_VM": "child writes a global variable", "CLONE_FILES": "child opens /dev/null",
          "CLONE_FS": "child chdir(\"/\")", "CLONE_SIGHAND": "child installs a SIGUSR1 handler",
          "CLONE_IO": "child sets its I/O priority (ioprio_set)"}


def expected_shared(flag: str, with_flag: bool) -> set[str]:
    """Resources the parent and child must share in a trial: the flag's own, plus the
    address space in both CLONE_SIGHAND trials (CLONE_SIGHAND requires CLONE_VM)."""
    out = {RESOURCE_OF[flag]} if with_flag else set()
    if flag == "CLONE_SIGHAND":
        out.add("vm")
    return out


def flags_share_checks(rec: Mapping[str, Any]) -> Checked:
    """The exact checks of clone.flags-share (pure) on the cloneshare kernel's record."""
    trials = rec["trials"]
    table, checks = [], []
    for flag in RESOURCE_OF:
        rows = {t["with"]: t for t in trials if t["flag"] == flag}
        problems = []
        for with_flag in (True, False):
            t = rows.get(with_flag)
            if t is None:
                problems.append(f"no trial {'with' if with_flag else 'without'}")
                continue
            own = RESOURCE_OF[flag]
            want = expected_shared(flag, with_flag)
            shared = {r for r, eq in t["kcmp_equal"].items() if eq}
            if t["effect_seen"] != with_flag:
                problems.append(f"{'with' if with_flag else 'without'}: effect {'not ' if with_flag else ''}seen")
            if shared != want:
                problems.append(f"{'with' if with_flag else 'without'}: kcmp equal on {sorted(shared) or 'nothing'}, "
                                f"expected {sorted(want) or 'nothing'}")
            table.append({"flag": flag, "with": with_flag, "effect": EFFECT[flag], "effect_seen": t["effect_seen"],
                          "kcmp_equal_own": t["kcmp_equal"][own], "kcmp_equal_all": t["kcmp_equal"]})
        checks.append(Check(f"{flag} shares exactly {RESOURCE_OF[flag]}",
                            "with: effect seen, kcmp equal on it alone; without: not seen, kcmp differs",
                            "; ".join(problems) or "as expected", not problems, EFFECT[flag]
                            + ("; both trials carry CLONE_VM" if flag == "CLONE_SIGHAND" else "")))
    self_eq = rec["control_self_equal"]
    controls = [Control("kcmp-self", "positive", all(self_eq.values()),
                        {"kcmp(parent, parent) equal": self_eq, "expected": "equal for every resource"})]
    evidence = {"table": table, "parent_ioprio": rec.get("parent_ioprio"),
                "io_note": "the parent is given an I/O context first (ioprio_set best-effort 4), so kcmp "
                "never compares two missing contexts"}
    return Checked(checks, controls, evidence)


def _flags_share_check(settings: Settings, measure) -> Checked:
    return flags_share_checks(measure(["cloneshare", "--variant=flags"], 30.0))


TRACE_MECHANISM = (
    "glibc has no fork system call left in it: fork() (sysdeps/nptl/fork.c, _Fork -> "
    "arch_fork) issues clone(2) with CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD, and "
    "pthread_create (nptl/pthread_create.c create_thread, sysdeps/unix/sysv/linux/"
    "clone-internal.c) issues clone3(2), falling back to clone, with CLONE_VM|CLONE_FS|"
    "CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|"
    "CLONE_CHILD_CLEARTID and no exit signal. In the kernel, fork(2), vfork(2), clone(2) and "
    "clone3(2) all end in kernel_clone() -> copy_process() (kernel/fork.c); the flags alone "
    "decide what is shared (clone(2)). The call is traced between two marker system calls "
    "(perflab.observe.trace, docs/trace.md), so start-up's calls are not in it."
)

CLAIMS = [
    Claim(
        id="clone.fork-is-clone",
        statement="glibc's fork() is itself a clone: a clone/clone3 system call with SIGCHLD and no CLONE_VM",
        seed_point="7. fork creates a child process, clone creates a thread",
        mechanism=TRACE_MECHANISM,
        kernel="task",
        thresholds={"supported": "exactly one clone/clone3 (no fork) between the markers, without CLONE_VM, "
                                 "exit signal SIGCHLD", "refuted": "anything else"},
        check=_fork_check,
    ),
    Claim(
        id="clone.thread-flags",
        statement="pthread_create issues clone with at least CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND and "
        "CLONE_THREAD",
        seed_point="7. clone creates a thread; flags choose what parent and child share",
        mechanism=TRACE_MECHANISM,
        kernel="task",
        thresholds={"supported": "one clone/clone3 between the markers with all five flags and no exit signal "
                                 "(every flag found is listed)", "refuted": "a flag missing"},
        check=_thread_check,
    ),
    Claim(
        id="clone.flags-share",
        statement="each of CLONE_VM, CLONE_FILES, CLONE_FS, CLONE_SIGHAND and CLONE_IO makes exactly its own "
        "resource shared",
        seed_point="7. flags choose what parent and child share: CLONE_FILES, CLONE_FS, CLONE_IO, CLONE_VM",
        mechanism=(
            "copy_process() (kernel/fork.c) calls copy_mm, copy_files, copy_fs, copy_sighand and "
            "copy_io; each takes a reference on the parent's object when its flag is set "
            "(CLONE_VM: mm_struct; CLONE_FILES: files_struct; CLONE_FS: fs_struct; CLONE_SIGHAND: "
            "sighand_struct; CLONE_IO: io_context, block/blk-ioc.c copy_io) and copies it "
            "otherwise, so a change the child makes to one is seen by the parent only with that "
            "flag. CLONE_SIGHAND requires CLONE_VM (clone(2), EINVAL otherwise). The io_context is "
            "allocated lazily: without one, copy_io shares nothing and kcmp compares two NULLs "
            "as equal, so the parent gets one first with ioprio_set(2). kcmp(2) compares the "
            "objects (kernel/kcmp.c)."
        ),
        kernel="cloneshare",
        thresholds={"supported": "for every flag: with it the effect is seen and kcmp is equal on that resource "
                                 "only; without it neither", "refuted": "any flag otherwise"},
        check=_flags_share_check,
    ),
]
