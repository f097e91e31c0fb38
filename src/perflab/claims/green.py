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

from perflab.claims._common import per_op, timing_args
from perflab.claims._green_checks import m_n_checks, not_tasks_checks
from perflab.claims._subjects import GoBuild, go_argv, go_facts, go_subject, python_subject, unavailable
from perflab.core.claim import Checked, Claim, Curve, Evidence, Plan, SeriesSpec, Settings
from perflab.core.errors import ClaimSkipped, KernelFailed
from perflab.core.params import Param
from perflab.core.record import Control, Decision
from perflab.core.rule import INF, Region, Rule, exact
from perflab.decide.rules import ratio_rule

GREEN_TASKS = 10_000  # CLAIMS.md: 10,000 asyncio tasks, 10,000 goroutines
THREADS = 1_000  # CLAIMS.md: 1,000 threads
SUBJECT_TIMEOUT_S = 120.0

SOURCE = "CLAIMS.md, section 8, thresholds fixed before the first live run"
NOT_TASKS = exact(
    f"asyncio adds 0 tasks, Go adds at most GOMAXPROCS + {{go_slack}}, threads add exactly {THREADS:,} "
    "(exact counts from /proc)",
    "any of those counts differs",
    # CLAIMS.md's bound on the Go runtime's own threads (sysmon, a template thread, spares
    # parked after a system call), whatever the number of goroutines
    reason=f"{SOURCE}: the Go runtime has threads of its own (one per P, sysmon, a few spares)",
    constants={"go_slack": 8},
)
M_N = exact(
    "task count while goroutines block in read(2) grows by at least {blocked_share} thread per blocked "
    "goroutine, and while computing stays at most GOMAXPROCS + {go_slack}",
    "either count contradicts that",
    reason=f"{SOURCE}: a goroutine blocked in a system call holds its thread, so the count grows with them "
           "(half of them at least, as sysmon may reuse idle threads); computing goroutines share GOMAXPROCS Ps",
    constants={"blocked_share": 0.5, "go_slack": NOT_TASKS["go_slack"]},
)


def switch_rule(quantity: str, short: str) -> Rule:
    """green.switch-cheaper and green.asyncio-cheaper: one rule on two ratios."""
    return Rule(quantity=quantity, short=short, supported=Region(10, INF), refuted=Region(-INF, 3), reason=SOURCE)


SWITCH_CHEAPER = switch_rule("thread switch (futex) / register-only user-level switch", "thread / register-only switch")
ASYNCIO_CHEAPER = switch_rule("C thread switch (futex) / asyncio task switch", "C thread / asyncio switch")
# the positive control of both switch claims: with both threads on one CPU every futex
# round trip blocks the measuring thread, so its kernel switch counter must see one each
SAME_CPU = Rule(quantity="kernel switches per futex round trip, both threads on one CPU",
                short="switches per round trip", supported=Region(0.95, INF),
                reason="each round trip blocks the measuring thread (futex wait) until its partner, pinned "
                       "to the same CPU, runs: one switch per round trip, a little room left for counting")


# ---- green.not-tasks -------------------------------------------------------------------
def _go_or_raise(build: GoBuild) -> GoBuild:
    if build.log:
        raise KernelFailed(f"{build.reason}", stderr=build.log)
    return build


def _not_tasks_observe(settings: Settings, measure) -> dict[str, Any]:
    threads = measure(["switch", "--variant=threads-tasks", f"--n={THREADS}"], SUBJECT_TIMEOUT_S)
    aio = measure(python_subject("asyncio-tasks", f"--n={GREEN_TASKS}"), SUBJECT_TIMEOUT_S)
    build = _go_or_raise(go_subject())
    go = None
    if build.path is not None:
        go = measure(go_argv(build, "block-chan", f"--n={GREEN_TASKS}"), SUBJECT_TIMEOUT_S)
    return {"threads": threads, "asyncio": aio, "go": go, "go_note": build.reason,
            "started": {"threads": THREADS, "green": GREEN_TASKS}}


# ---- green.m-n ---------------------------------------------------------------------------
BLOCKED = Param("blocked", 100, 10, 5000, "goroutines blocked in read(2) at once", unit="goroutines")
COMPUTE = Param("compute", 1000, 10, 100_000, "goroutines that only compute", unit="goroutines")


def _m_n_observe(settings: Settings, measure) -> dict[str, Any]:
    build = _go_or_raise(go_subject())
    if build.path is None:
        raise ClaimSkipped(build.reason)
    blocked = int(settings.params.get("blocked", BLOCKED.default))
    compute = int(settings.params.get("compute", COMPUTE.default))
    rec = measure(go_argv(build, "m-n", f"--blocked={blocked}", f"--compute={compute}"), SUBJECT_TIMEOUT_S)
    return {"m-n": rec}


def _m_n_judge(obs: Mapping[str, Any], rule: Rule) -> Checked:
    return m_n_checks(obs["m-n"], rule)


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


def same_cpu_control(ev: Evidence) -> Control:
    """Positive control: with both threads on one CPU, every futex round trip must put
    the measuring thread through a kernel context switch (SAME_CPU: about 1 per round
    trip, in every process); a ping-pong spinning on two CPUs, or a counter that cannot
    see switches, fails."""
    samples = ev.series["same-cpu-switches"].points.get(None, [])
    if not samples:
        return Control("same-cpu", "positive", None, {"reason": "no samples"})
    assert SAME_CPU.supported is not None
    passed = SAME_CPU.supported.holds(min(samples), max(samples))
    return Control("same-cpu", "positive", passed,
                   {"switches_per_round_trip": samples, "expected": f"{SAME_CPU.supported.text()} per round trip",
                    "counter": "getrusage(RUSAGE_THREAD) ru_nvcsw + ru_nivcsw"})


def _switch_plan(settings: Settings) -> Plan:
    specs = [_switch_spec(name, settings) for name in C_SWITCHES]
    build = go_subject()  # built here, once per toolchain: the decision reads only the facts
    if build.path is not None:
        specs.insert(2, SeriesSpec(
            name="goroutine", x=None, unit="ns/switch", xs=(None,),
            argv=lambda _x: go_argv(build, "goroutine", *timing_args(settings, [])), value=per_op))
    specs.append(_same_cpu_spec(settings))
    return Plan(specs, {"go": go_facts(build)})


def ladder(series: Mapping[str, Curve], names: tuple[str, ...], base: str) -> dict[str, Any]:
    """Median ns per switch of each, in order, and its ratio to ``base``."""
    med = {n: median(series[n].points[None]) for n in names if n in series and series[n].points.get(None)}
    out = {n: {"median_ns": v, f"x {base}": v / med[base] if med.get(base) else None} for n, v in med.items()}
    return out


def _switch_decide(ev: Evidence, rule: Rule) -> Decision:
    series = ev.series
    d = ratio_rule(series["thread-futex"].points.get(None, []), series["register"].points.get(None, []), rule, ev)
    d.evidence["switches (ns, same CPU)"] = ladder(series, ORDER, "register")
    if "goroutine" not in series:
        why = (ev.facts.get("go") or {}).get("why") or "the Go subject was not built"
        d.evidence["switches (ns, same CPU)"]["goroutine"] = {"not measured": why}
    order = sorted((v["median_ns"], n) for n, v in d.evidence["switches (ns, same CPU)"].items() if "median_ns" in v)
    text = " < ".join(f"{n} {_ns(v)}" for v, n in order)
    d.reason = "; ".join(r for r in (d.reason, text) if r)
    return d


def _ns(v: float) -> str:
    return f"{v / 1e3:.3g} us" if v >= 1e3 else f"{v:.3g} ns"


# ---- green.asyncio-cheaper --------------------------------------------------------------------
PY_SWITCHES = (("asyncio", "asyncio"), ("generator", "generator"), ("python-thread", "thread"))


def _asyncio_plan(settings: Settings) -> Plan:
    specs = [
        SeriesSpec(name=name, x=None, unit="ns/switch", xs=(None,),
                   argv=lambda _x, v=variant: python_subject(v, *timing_args(settings, [])), value=per_op)
        for name, variant in PY_SWITCHES
    ]
    specs.append(_switch_spec("thread-futex", settings))
    specs.append(_same_cpu_spec(settings))
    return Plan(specs)


def _asyncio_decide(ev: Evidence, rule: Rule) -> Decision:
    series = ev.series
    d = ratio_rule(series["thread-futex"].points.get(None, []), series["asyncio"].points.get(None, []), rule, ev)
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
        rule=NOT_TASKS,
        observe=_not_tasks_observe,
        judge=not_tasks_checks,
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
        rule=M_N,
        observe=_m_n_observe,
        judge=_m_n_judge,
        params=(BLOCKED, COMPUTE),
        requires=lambda host: unavailable(),
    ),
    Claim(
        id="green.switch-cheaper",
        statement="switching between green threads is much cheaper than switching between kernel threads",
        seed_point="8. We don't know what the runtime needs to do that multiplexing",
        mechanism=SWITCH_MECHANISM,
        kernel="switch",
        rule=SWITCH_CHEAPER,
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
        rule=ASYNCIO_CHEAPER,
        plan=_asyncio_plan,
        decide=_asyncio_decide,
        aa=("asyncio", None),
        positive=same_cpu_control,
    ),
]
