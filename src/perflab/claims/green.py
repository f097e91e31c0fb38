"""Goroutines and green threads (CLAIMS.md section 8, `green.*`).

Seed notes: "A goroutine is not a kernel task but a runtime's execution context (green
thread); N goroutines can run on M threads. We don't know what the runtime needs to do
that multiplexing."

Kernels: ``switch`` (C: user-level, swapcontext, thread and process switches on one CPU;
a subject with N threads), the Python subject ``subjects/pyswitch.py`` (asyncio, generator
and Python-thread switches; asyncio tasks) and the Go subject ``subjects/green.go``
(goroutine switch; goroutines blocked on channels or in system calls), built with the
user's Go toolchain where there is one (claims/_subjects.py).
"""

from __future__ import annotations

from statistics import median
from typing import Any, Mapping

from perflab.core.claim import Check, Checked, Claim, SeriesSpec, Settings
from perflab.claims._common import per_op, timing_args
from perflab.claims._subjects import GoBuild, go_argv, go_subject, python_subject, unavailable
from perflab.core.errors import ClaimSkipped, KernelFailed
from perflab.core.model import Control, Decision, Param, Series
from perflab.decide.rules import INF, ratio_rule, region

GREEN_TASKS = 10_000  # CLAIMS.md: 10,000 asyncio tasks, 10,000 goroutines
THREADS = 1_000  # CLAIMS.md: 1,000 threads
GO_SLACK = 8  # CLAIMS.md: Go adds at most GOMAXPROCS + 8
SUBJECT_TIMEOUT_S = 120.0

SUPPORTED_RATIO = region(10, INF)  # CLAIMS.md: ratio of 10 or more supported
REFUTED_RATIO = region(-INF, 3)  # 3 or less refuted
SAME_CPU_MIN = 0.95  # kernel switches per futex round trip when both sides share a CPU


# ---- green.not-tasks -------------------------------------------------------------------
def _added(rec: Mapping[str, Any]) -> list[int]:
    return [n - rec["tasks_before"] for n in rec["tasks_during"]]


def not_tasks_checks(threads: Mapping[str, Any], aio: Mapping[str, Any], go: Mapping[str, Any] | None,
                     go_note: str = "") -> Checked:
    """The exact checks of green.not-tasks on the three subjects' records (pure)."""
    checks: list[Check] = []
    aio_added = _added(aio)
    blocked_ok = aio["tasks_blocked"] == aio["tasks_started"] == GREEN_TASKS
    checks.append(Check(
        f"{GREEN_TASKS:,} asyncio tasks add no kernel task",
        expected=0,
        observed=max(aio_added),
        holds=(max(aio_added) == 0 and min(aio_added) == 0) if blocked_ok else None,
        note=f"/proc/self/task before: {aio['tasks_before']}, while blocked: {aio['tasks_during']}"
        + ("" if blocked_ok else f"; only {aio['tasks_blocked']} of {aio['tasks_started']} tasks were blocked"),
    ))
    th_added = _added(threads)
    status_added = threads["status_threads_during"] - threads["status_threads_before"]
    checks.append(Check(
        f"{THREADS:,} threads add exactly {THREADS:,} kernel tasks",
        expected=THREADS,
        observed=sorted(set(th_added + [status_added])),
        holds=all(a == THREADS for a in th_added) and status_added == THREADS,
        note=f"/proc/self/task before: {threads['tasks_before']}, during: {threads['tasks_during']}; "
        f"Threads: in /proc/self/status {threads['status_threads_before']} -> {threads['status_threads_during']}",
    ))
    name = f"{GREEN_TASKS:,} goroutines blocked on a channel: the Go runtime adds at most GOMAXPROCS + {GO_SLACK} kernel tasks"
    if go is None:
        # CLAIMS.md: goroutines "(Go toolchain present) or" asyncio tasks: without a
        # toolchain the claim is decided on asyncio and threads, and the evidence says
        # the Go part did not run and why.
        pass
    else:
        limit = go["gomaxprocs"] + GO_SLACK
        # every task of the Go process beyond its first counts as added by the runtime,
        # the threads it had before the goroutines started included (the stricter count)
        peak = max(go["tasks_during"]) - 1
        alive = go["goroutines_alive"] > GREEN_TASKS  # the 10,000 and main
        checks.append(Check(
            name,
            expected=f"<= {limit} (GOMAXPROCS {go['gomaxprocs']} + {GO_SLACK})",
            observed=peak,
            holds=(peak <= limit) if alive else None,
            note=f"{go['go']}: tasks before the goroutines {go['tasks_before']}, while blocked "
            f"{go['tasks_during']} (counted from the process's first task)"
            + ("" if alive else f"; only {go['goroutines_alive']} goroutines were alive"),
        ))
    controls = [probe_control(aio, go)]
    series = Series("kernel tasks added", "subject", "tasks")
    series.add(f"asyncio: {GREEN_TASKS:,} tasks", float(max(aio_added)))
    series.add(f"threads: {THREADS:,}", float(max(th_added)))
    if go is not None:
        series.add(f"goroutines: {GREEN_TASKS:,}", float(max(go["tasks_during"]) - 1))
    evidence = {
        "asyncio": dict(aio),
        "threads": dict(threads),
        "go": dict(go) if go is not None else {"not evaluated": go_note},
        "counting": "entries of /proc/self/task sampled 5 times, 10 ms apart, while the subject's tasks, "
        "goroutines or threads are blocked (proc(5)); Threads: in /proc/self/status as a cross-check",
    }
    return Checked(checks, controls, evidence, [series])


def probe_control(aio: Mapping[str, Any], go: Mapping[str, Any] | None) -> Control:
    """Positive control: the same /proc count, in the same subject, must see real
    threads appear (4 started after the green tasks): a blind probe would 'show' that
    green tasks add nothing, and fails here."""
    seen_py = aio["tasks_with_control_threads"] - aio["tasks_during"][-1]
    ok = seen_py == aio["control_threads_started"]
    detail: dict[str, Any] = {"python": {"started": aio["control_threads_started"], "seen": seen_py}}
    if go is not None:
        # LockOSThread goroutines blocked in read(2) each hold a thread of their own; they
        # report its TID (gettid(2)) and the same /proc/self/task listing must show every
        # one. Not the count's growth: the runtime may reuse threads it had parked, so the
        # count can grow by less than 4 (seen here once in a full run).
        tids = go["control_tids"]
        seen_go = go["control_tids_seen"]
        distinct = len(set(tids)) == len(tids) == go["control_threads_started"]
        ok = ok and distinct and seen_go == go["control_threads_started"]
        detail["go"] = {"started": go["control_threads_started"], "seen": seen_go, "distinct_tids": distinct,
                        "count_grew_by": go["tasks_with_control_threads"] - go["tasks_before_control"]}
    detail["expected"] = "every started thread seen in /proc/self/task"
    return Control("task-probe", "positive", ok, detail)


def _go_or_raise(build: GoBuild) -> GoBuild:
    if build.log:
        raise KernelFailed(f"{build.reason}", stderr=build.log)
    return build


def _not_tasks_check(settings: Settings, measure) -> Checked:
    threads = measure(["switch", "--variant=threads-tasks", f"--n={THREADS}"], SUBJECT_TIMEOUT_S)
    aio = measure(python_subject("asyncio-tasks", f"--n={GREEN_TASKS}"), SUBJECT_TIMEOUT_S)
    build = _go_or_raise(go_subject())
    go = None
    if build.path is not None:
        go = measure(go_argv(build, "block-chan", f"--n={GREEN_TASKS}"), SUBJECT_TIMEOUT_S)
    return not_tasks_checks(threads, aio, go, go_note=build.reason)


# ---- green.m-n ---------------------------------------------------------------------------
BLOCKED = Param("blocked", 100, 10, 5000, "goroutines blocked in read(2) at once", unit="goroutines")
COMPUTE = Param("compute", 1000, 10, 100_000, "goroutines that only compute", unit="goroutines")


def m_n_checks(rec: Mapping[str, Any]) -> Checked:
    """The exact checks of green.m-n on the Go subject's record (pure)."""
    limit = rec["gomaxprocs"] + GO_SLACK
    blocked = rec["blocked_goroutines"]
    growth = rec["blocking_peak"] - rec["tasks_after_computing"]
    checks = [
        Check(
            f"{blocked} goroutines blocked in read(2) add at least {blocked // 2 + blocked % 2} threads",
            expected=f">= {blocked / 2:g} (half the blocked goroutines)",
            observed=growth,
            holds=growth >= blocked / 2,
            note=f"tasks {rec['tasks_after_computing']} before, peak {rec['blocking_peak']} while blocked, "
            f"{rec['tasks_after_release']} after they returned (idle threads are kept)",
        ),
        Check(
            f"{rec['computing_goroutines']} computing goroutines run on at most GOMAXPROCS + {GO_SLACK} tasks",
            expected=f"<= {limit} (GOMAXPROCS {rec['gomaxprocs']} + {GO_SLACK})",
            observed=rec["computing_peak"],
            holds=rec["computing_peak"] <= limit,
            note=f"tasks before: {rec['tasks_before']}; sampled every 5 ms for 200 ms",
        ),
    ]
    computing = Series("tasks while computing", "ms", "tasks")
    for s in rec["computing"]:
        computing.add(round(s["ms"], 1), float(s["tasks"]))
    blocking = Series("tasks while blocked in read(2)", "ms", "tasks")
    for s in rec["blocking"]:
        blocking.add(round(s["ms"], 1), float(s["tasks"]))
    evidence = {k: rec[k] for k in ("go", "gomaxprocs", "tasks_before", "computing_goroutines", "computing_peak",
                                     "tasks_after_computing", "blocked_goroutines", "blocking_peak",
                                     "tasks_after_release") if k in rec}
    return Checked(checks, [], evidence, [computing, blocking])


def _m_n_check(settings: Settings, measure) -> Checked:
    build = _go_or_raise(go_subject())
    if build.path is None:
        raise ClaimSkipped(build.reason)
    blocked = int(settings.params.get("blocked", BLOCKED.default))
    compute = int(settings.params.get("compute", COMPUTE.default))
    rec = measure(go_argv(build, "m-n", f"--blocked={blocked}", f"--compute={compute}"), SUBJECT_TIMEOUT_S)
    return m_n_checks(rec)


# ---- green.switch-cheaper ------------------------------------------------------------------
C_SWITCHES = ("register", "swapcontext", "thread-futex", "thread-pipe", "process-futex", "process-pipe")
ORDER = ("register", "swapcontext", "goroutine", "thread-futex", "thread-pipe", "process-futex", "process-pipe")


def _switch_spec(name: str, settings: Settings) -> SeriesSpec:
    return SeriesSpec(name=name, x=None, unit="ns/switch", xs=(None,),
                      argv=lambda _x: ["switch", *timing_args(settings, [f"--variant={name}"])], value=per_op)


def _same_cpu_spec(settings: Settings) -> SeriesSpec:
    """Control: kernel switches per futex round trip, counted by getrusage(2)."""
    return SeriesSpec(
        name="same-cpu-switches", x=None, unit="switches/round trip", xs=(None,),
        argv=lambda _x: ["switch", "--variant=thread-futex", f"--cpu={settings.cpu}", "--batches=1"],
        value=lambda r: float(r["kernel_switches_per_round_trip"]), role="control",
    )


def same_cpu_control(series: Mapping[str, Series], conf, rng, n_boot) -> Control:
    """Positive control: with both threads on one CPU, every futex round trip must put
    the measuring thread through a kernel context switch (>= 1 per round trip); a ping-
    pong spinning on two CPUs, or a counter that cannot see switches, fails."""
    samples = series["same-cpu-switches"].points.get(None, [])
    if not samples:
        return Control("same-cpu", "positive", None, {"reason": "no samples"})
    return Control("same-cpu", "positive", min(samples) >= SAME_CPU_MIN,
                   {"switches_per_round_trip": samples, "expected": f">= {SAME_CPU_MIN} per round trip",
                    "counter": "getrusage(RUSAGE_THREAD) ru_nvcsw + ru_nivcsw"})


def _switch_plan(settings: Settings) -> list[SeriesSpec]:
    specs = [_switch_spec(name, settings) for name in C_SWITCHES]
    build = go_subject()
    if build.path is not None:
        specs.insert(2, SeriesSpec(
            name="goroutine", x=None, unit="ns/switch", xs=(None,),
            argv=lambda _x: go_argv(build, "goroutine", *timing_args(settings, [])), value=per_op))
    specs.append(_same_cpu_spec(settings))
    return specs


def ladder(series: Mapping[str, Series], names: tuple[str, ...], base: str) -> dict[str, Any]:
    """Median ns per switch of each, in order, and its ratio to ``base``."""
    med = {n: median(series[n].points[None]) for n in names if n in series and series[n].points.get(None)}
    out = {n: {"median_ns": v, f"x {base}": v / med[base] if med.get(base) else None} for n, v in med.items()}
    return out


def _switch_decide(series: Mapping[str, Series], conf, rng, n_boot) -> Decision:
    d = ratio_rule(series["thread-futex"].points.get(None, []), series["register"].points.get(None, []),
                   "thread switch (futex) / register-only user-level switch", SUPPORTED_RATIO, REFUTED_RATIO,
                   conf, rng, n_boot)
    d.evidence["switches (ns, same CPU)"] = ladder(series, ORDER, "register")
    if "goroutine" not in series:
        why = unavailable() or "the Go subject could not be built (green.not-tasks reports the build error)"
        d.evidence["switches (ns, same CPU)"]["goroutine"] = {"not measured": why}
    order = sorted((v["median_ns"], n) for n, v in d.evidence["switches (ns, same CPU)"].items() if "median_ns" in v)
    text = " < ".join(f"{n} {_ns(v)}" for v, n in order)
    d.reason = "; ".join(r for r in (d.reason, text) if r)
    return d


def _ns(v: float) -> str:
    return f"{v / 1e3:.3g} us" if v >= 1e3 else f"{v:.3g} ns"


# ---- green.asyncio-cheaper --------------------------------------------------------------------
PY_SWITCHES = (("asyncio", "asyncio"), ("generator", "generator"), ("python-thread", "thread"))


def _asyncio_plan(settings: Settings) -> list[SeriesSpec]:
    specs = [
        SeriesSpec(name=name, x=None, unit="ns/switch", xs=(None,),
                   argv=lambda _x, v=variant: python_subject(v, *timing_args(settings, [])), value=per_op)
        for name, variant in PY_SWITCHES
    ]
    specs.append(_switch_spec("thread-futex", settings))
    specs.append(_same_cpu_spec(settings))
    return specs


def _asyncio_decide(series: Mapping[str, Series], conf, rng, n_boot) -> Decision:
    d = ratio_rule(series["thread-futex"].points.get(None, []), series["asyncio"].points.get(None, []),
                   "C thread switch (futex) / asyncio task switch", SUPPORTED_RATIO, REFUTED_RATIO,
                   conf, rng, n_boot)
    d.evidence["switches (ns)"] = ladder(series, ("generator", "asyncio", "thread-futex", "python-thread"),
                                         "asyncio")
    order = sorted((v["median_ns"], n) for n, v in d.evidence["switches (ns)"].items())
    d.reason = "; ".join(r for r in (d.reason, " < ".join(f"{n} {_ns(v)}" for v, n in order)) if r)
    return d


SWITCH_MECHANISM = (
    "A green-thread runtime switches contexts in user space: it saves the callee-saved "
    "registers and the stack pointer of one context and loads another's, a function call's "
    "worth of work (the register-only switch here is that, in x86-64 assembly). swapcontext(3) "
    "does the same plus a rt_sigprocmask(2) system call to save and restore the signal mask. "
    "A kernel thread switch needs the kernel: the thread blocks in futex(2) or read(2), the "
    "scheduler picks the other one (__schedule() and context_switch() in kernel/sched/core.c, "
    "switching stacks and registers in __switch_to, arch/x86/kernel/process_64.c), and the "
    "wake-up and the return cost two more kernel crossings; a process switch also changes the "
    "address space (switch_mm). A goroutine switch is the Go scheduler's gopark/goready around "
    "a channel hand-off (runtime/proc.go, runtime/chan.go), in user space on one thread. "
    "Every switch here is half a ping-pong round trip on one CPU, the system calls the "
    "mechanism needs included."
)

CLAIMS = [
    Claim(
        id="green.not-tasks",
        statement=f"{GREEN_TASKS:,} goroutines blocked on channels or {GREEN_TASKS:,} Python asyncio tasks add no "
        f"kernel tasks, while {THREADS:,} threads add {THREADS:,}",
        seed_point="8. A goroutine is not a kernel task but a runtime's execution context (green thread)",
        mechanism=(
            "The kernel schedules tasks (struct task_struct, include/linux/sched.h): a process "
            "and each of its threads, made by clone(2) with CLONE_THREAD, which pthread_create(3) "
            "calls once per thread; each shows up in /proc/PID/task (proc(5)). A green thread is "
            "data in user memory: an asyncio task is a Python object holding a suspended "
            "coroutine, run by the event loop on the one thread that runs the loop "
            "(Lib/asyncio/tasks.py); a goroutine is a runtime.g with its own small stack, run by "
            "the Go scheduler on the runtime's threads (runtime/proc.go). Blocking one on a "
            "channel or a future parks it in user space and creates no task. The Go runtime has "
            "threads of its own (one per P running Go code, sysmon, a few spares) whatever the "
            "number of goroutines."
        ),
        kernel="switch",
        sources=('subjects/pyswitch.py', 'subjects/green.go'),
        thresholds={
            "supported": f"asyncio adds 0 tasks, Go adds at most GOMAXPROCS + {GO_SLACK}, threads add exactly "
            f"{THREADS:,} (exact counts from /proc)",
            "refuted": "any of those counts differs",
        },
        check=_not_tasks_check,
    ),
    Claim(
        id="green.m-n",
        statement="the Go runtime runs N goroutines on about GOMAXPROCS threads, and adds threads when "
        "goroutines block in system calls",
        seed_point="8. N goroutines can run on M threads; what does the runtime need to do that multiplexing?",
        mechanism=(
            "Go's scheduler (runtime/proc.go) runs goroutines (G) on threads (M), each needing a "
            "processor (P) to run Go code; there are GOMAXPROCS Ps, by default the number of CPUs "
            "the process may use. Goroutines that only compute share those Ps, so the thread "
            "count stays near GOMAXPROCS plus the runtime's own (sysmon, spares). A goroutine "
            "that makes a blocking system call keeps its thread in the kernel; entersyscall "
            "marks its P, and sysmon (retake) hands the P to another thread (handoffp, startm), "
            "creating one when none is idle, so the runnable goroutines keep running. Blocked "
            "goroutines therefore cost a thread each, which a channel wait does not (see "
            "green.not-tasks)."
        ),
        kernel="switch",
        sources=('subjects/green.go',),
        thresholds={
            "supported": "task count while goroutines block in read(2) grows by at least half the blocked "
            f"goroutines, and while computing stays at most GOMAXPROCS + {GO_SLACK}",
            "refuted": "either count contradicts that",
        },
        check=_m_n_check,
        params=(BLOCKED, COMPUTE),
        requires=lambda host: unavailable(),
    ),
    Claim(
        id="green.switch-cheaper",
        statement="switching between green threads is much cheaper than switching between kernel threads",
        seed_point="8. We don't know what the runtime needs to do that multiplexing",
        mechanism=SWITCH_MECHANISM,
        kernel="switch",
        sources=('subjects/green.go',),
        thresholds={"supported": "thread switch (futex) / register-only switch >= 10",
                    "refuted": "<= 3"},
        plan=_switch_plan,
        decide=_switch_decide,
        aa=("thread-futex", None),
        positive=same_cpu_control,
    ),
    Claim(
        id="green.asyncio-cheaper",
        statement="an asyncio task switch is much cheaper than a thread switch",
        seed_point="8. (added) a common belief about green threads in Python",
        mechanism=(
            "An asyncio task switch is Python code, not a kernel switch: the task's coroutine "
            "yields to Task.__step, which reschedules it with loop.call_soon; the event loop's "
            "_run_once pops the next handle and resumes that task's coroutine (Lib/asyncio/"
            "tasks.py, base_events.py). No system call is made, but every step runs interpreted "
            "bytecode and allocates a handle, so it costs far more than a register switch. A "
            "generator resumption is the same coroutine machinery without the loop; a Python "
            "thread hand-off adds the GIL and a kernel switch. The C thread switch is the futex "
            "ping-pong of green.switch-cheaper (same CPU)."
        ),
        kernel="switch",
        sources=('subjects/pyswitch.py',),
        thresholds={"supported": "C thread switch (futex) / asyncio task switch >= 10", "refuted": "<= 3"},
        plan=_asyncio_plan,
        decide=_asyncio_decide,
        aa=("asyncio", None),
        # a Python process here runs the asyncio loop at ~1.8 or ~3.0 us per switch for its
        # whole life (24 processes in a row: 18 18 19 27 29 30 20 ... in 100s of ns), the slow
        # ones clustered in time, so 3 A/A pairs per round gave a 90% CI as wide as
        # [0.82, 1.01]; 8 per round (as lib.allocator-scaling) for ~7 s more
        aa_per_round=8,
        positive=same_cpu_control,
    ),
]
