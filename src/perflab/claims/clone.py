"""fork vs clone (CLAIMS.md section 7, `clone.*`).

Seed notes: "fork creates a child process, clone creates a thread; clone takes a
function and a separate stack; flags choose what parent and child share: CLONE_FILES,
CLONE_FS, CLONE_IO, CLONE_VM."

clone.fork-is-clone and clone.thread-flags trace the ``task`` kernel's marked fork() and
pthread_create() with perflab.observe.trace (docs/trace.md), which runs its own positive control
first; clone.flags-share runs the ``cloneshare`` kernel. A trace is kept as plain data
(``trace_observation``: the calls between the markers with their raw flags, the region's
counts, the mechanism and its control), so a stored record is judged again from it.
"""

from __future__ import annotations

from typing import Any, Mapping

from perflab.core.claim import Check, Checked, Claim, Settings
from perflab.core.errors import ClaimSkipped
from perflab.core.record import Control
from perflab.core.rule import Rule, exact
from perflab.engine import process
from perflab.observe import trace
from perflab.observe.trace import clone_flags
from perflab.observe.trace.result import TraceResult, Unavailable

THREAD_REQUIRED = ("CLONE_VM", "CLONE_FS", "CLONE_FILES", "CLONE_SIGHAND", "CLONE_THREAD")
THREAD_ALSO = ("CLONE_SYSVSEM", "CLONE_SETTLS", "CLONE_PARENT_SETTID", "CLONE_CHILD_CLEARTID")
TRACE_TIMEOUT_S = 60.0
FORKING = ("clone", "clone3", "fork", "vfork")  # counted over the whole run, for the evidence


# ---- a trace as plain data ---------------------------------------------------------------------
def _unav(v: Any) -> Any:
    return {"unavailable": v.reason} if isinstance(v, Unavailable) else v


def trace_observation(result: TraceResult) -> dict[str, Any]:
    """What the clone.* checks read of a trace, as JSON (stored as evidence.observed and
    judged again from there): TraceResult.to_json()'s shape for the parts they need, with
    each clone call's raw flags and exit signal (decoded by the judge, not stored decoded)."""
    rep = result.control
    clones: Any
    if isinstance(result.clone_calls, Unavailable):
        clones = _unav(result.clone_calls)
    else:
        clones = [{"syscall": c.syscall, "flags": _unav(c.flags), "exit_signal": _unav(c.exit_signal),
                   "count": c.count, "in_region": c.in_region} for c in result.clone_calls]
    return {
        "command": list(result.argv),
        "mechanism": result.mechanism,
        "rejected": dict(result.rejected),
        "control": None if rep is None else {"mechanism": rep.mechanism, "passed": rep.passed,
                                             "checks": list(rep.checks), "failures": list(rep.failures)},
        "exit_status": result.exit_status,
        "region": None if result.region is None else {"marker": result.region_marker, "markers": result.markers,
                                                      "syscalls": _unav(result.region)},
        "clone_calls": clones,
        "whole_run_clone_calls": {k: result.calls(k) for k in FORKING},
    }


def _why_not(v: Any) -> str | None:
    """The reason of an {"unavailable": reason}, None for a value."""
    return v["unavailable"] if isinstance(v, Mapping) and isinstance(v.get("unavailable"), str) else None


def _readable(c: Mapping[str, Any]) -> bool:
    return _why_not(c["flags"]) is None and _why_not(c["exit_signal"]) is None


def _flag_names(c: Mapping[str, Any]) -> tuple[str, ...]:
    return clone_flags.flag_names(c["flags"], c["syscall"]) if _why_not(c["flags"]) is None else ()


def _has(c: Mapping[str, Any], flag: str) -> bool:
    return flag in _flag_names(c)


def _signal(c: Mapping[str, Any]) -> str | None:
    """The exit signal's name ('SIGCHLD'); None for none (a thread) or unreadable."""
    return None if _why_not(c["exit_signal"]) is not None else clone_flags.signal_name(c["exit_signal"])


def _describe(c: Mapping[str, Any]) -> str:
    if not _readable(c):
        return f"unavailable ({_why_not(c['flags']) or _why_not(c['exit_signal'])})"
    return clone_flags.describe(c["flags"], c["syscall"], c["exit_signal"])


def _region(obs: Mapping[str, Any]) -> dict[str, int] | None:
    region = obs["region"]
    return None if region is None or _why_not(region["syscalls"]) else dict(region["syscalls"])


def _trace_control(obs: Mapping[str, Any]) -> Control:
    rep = obs["control"]
    if rep is None:
        return Control("trace-control", "positive", None, {"reason": "no control report"})
    return Control("trace-control", "positive", rep["passed"],
                   {"mechanism": rep["mechanism"], "checks": "; ".join(rep["checks"]),
                    "failures": "; ".join(rep["failures"]) or "none",
                    "workload": "trace_control --variant=control: 29 getppid calls, a thread and a fork"})


def _region_clones(obs: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], str]:
    """The clone/clone3 calls between the markers, or why they cannot be read."""
    clones = obs["clone_calls"]
    if _why_not(clones) is not None:
        return [], _why_not(clones)
    region = obs["region"]
    if region is None:
        return [], "no region between the markers: None"
    if _why_not(region["syscalls"]) is not None:
        return [], f"no region between the markers: unavailable ({_why_not(region['syscalls'])})"
    return [c for c in clones if c["in_region"]], ""


def _call_rows(calls) -> list[dict[str, Any]]:
    return [{"syscall": c["syscall"], "count": c["count"],
             "flags": hex(c["flags"]) if _why_not(c["flags"]) is None else None,
             "decoded": _describe(c), "flag_names": list(_flag_names(c)), "exit_signal": _signal(c)}
            for c in calls]


def _base_evidence(obs: Mapping[str, Any], calls) -> dict[str, Any]:
    return {"mechanism": obs["mechanism"], "rejected_mechanisms": dict(obs["rejected"]),
            "clone_calls_in_region": _call_rows(calls),
            "region_syscalls": _region(obs),
            "whole_run_clone_calls": dict(obs["whole_run_clone_calls"])}


# ---- clone.fork-is-clone -------------------------------------------------------------------
FORK_IS_CLONE = exact("exactly one clone/clone3 (no fork) between the markers, without CLONE_VM, exit signal SIGCHLD",
                      "anything else")


def fork_checks(obs: Mapping[str, Any]) -> Checked:
    """The exact checks of clone.fork-is-clone (pure) on a trace of one marked fork()
    (trace_observation)."""
    calls, why = _region_clones(obs)
    region = _region(obs) or {}
    n = sum(c["count"] for c in calls)
    checks = [Check("fork() issues one clone or clone3 system call", "1 clone/clone3, 0 fork/vfork between the markers",
                    {"clone/clone3": n, "fork": region.get("fork", 0), "vfork": region.get("vfork", 0)},
                    None if why else (n == 1 and not region.get("fork") and not region.get("vfork")), why)]
    readable = [c for c in calls if _readable(c)]
    if n == 1 and readable:
        c = readable[0]
        checks.append(Check("its flags: no CLONE_VM (nor CLONE_THREAD)", "CLONE_VM and CLONE_THREAD absent",
                            _describe(c), not _has(c, "CLONE_VM") and not _has(c, "CLONE_THREAD")))
        checks.append(Check("its exit signal is SIGCHLD", "SIGCHLD", _signal(c), _signal(c) == "SIGCHLD"))
    else:
        note = why or ("the mechanism cannot read this call's flags" if calls else "no call to read")
        checks.append(Check("its flags: no CLONE_VM (nor CLONE_THREAD)", "CLONE_VM and CLONE_THREAD absent",
                            None, None, note))
        checks.append(Check("its exit signal is SIGCHLD", "SIGCHLD", None, None, note))
    return Checked(checks, [_trace_control(obs)], _base_evidence(obs, calls))


# ---- clone.thread-flags ----------------------------------------------------------------------
THREAD_FLAGS = exact("one clone/clone3 between the markers with all five flags and no exit signal "
                     "(every flag found is listed)", "a flag missing")


def thread_checks(obs: Mapping[str, Any]) -> Checked:
    """The exact checks of clone.thread-flags (pure) on a trace of one marked pthread_create
    (trace_observation)."""
    calls, why = _region_clones(obs)
    n = sum(c["count"] for c in calls)
    checks = [Check("pthread_create issues one clone or clone3 system call", 1, n, None if why else n == 1, why)]
    readable = [c for c in calls if _readable(c)]
    c = readable[0] if n == 1 and readable else None
    note = why or ("the mechanism cannot read this call's flags" if calls else "no call to read")
    for flag in THREAD_REQUIRED:
        checks.append(Check(f"{flag} set", "set", None if c is None else ("set" if _has(c, flag) else "absent"),
                            None if c is None else _has(c, flag), "" if c else note))
    checks.append(Check("no exit signal (a thread notifies nobody)", None,
                        None if c is None else _signal(c),
                        None if c is None else _signal(c) is None, "" if c else note))
    evidence = _base_evidence(obs, calls)
    if c is not None:
        evidence["flags_found"] = list(_flag_names(c))
        evidence["also_expected_from_glibc"] = {f: _has(c, f) for f in THREAD_ALSO}
        evidence["syscall"] = c["syscall"]
    return Checked(checks, [_trace_control(obs)], evidence)


def _traced(variant: str) -> dict[str, Any]:
    argv = [str(process.kernel_path("task")), f"--variant={variant}"]
    try:
        result = trace.count(argv, region=trace.MARKER, timeout=TRACE_TIMEOUT_S)
    except trace.TraceUnavailable as exc:
        raise ClaimSkipped(str(exc)) from None
    return {"trace": trace_observation(result)}


def _fork_observe(settings: Settings, measure) -> dict[str, Any]:
    return _traced("fork-marked")


def _fork_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    return fork_checks(obs["trace"])


def _thread_observe(settings: Settings, measure) -> dict[str, Any]:
    return _traced("thread-marked")


def _thread_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    return thread_checks(obs["trace"])


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


def _flags_share_observe(settings: Settings, measure) -> dict[str, Any]:
    return {"cloneshare": measure(["cloneshare", "--variant=flags"], 30.0)}


def _flags_share_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    return flags_share_checks(obs["cloneshare"])


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
        rule=FORK_IS_CLONE,
        observe=_fork_observe,
        judge=_fork_judge,
    ),
    Claim(
        id="clone.thread-flags",
        statement="pthread_create issues clone with at least CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND and "
        "CLONE_THREAD",
        seed_point="7. clone creates a thread; flags choose what parent and child share",
        mechanism=TRACE_MECHANISM,
        kernel="task",
        rule=THREAD_FLAGS,
        observe=_thread_observe,
        judge=_thread_judge,
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
        rule=exact("for every flag: with it the effect is seen and kcmp is equal on that resource only; "
                   "without it neither", "any flag otherwise"),
        observe=_flags_share_observe,
        judge=_flags_share_judge,
    ),
]
