"""Kernel space vs user space (CLAIMS.md section 1, `space.*`).

Seed notes: "Kernel space is probably not a separate space independent of processes:
one process holds both kernel space and a user address space."
"""

from __future__ import annotations

from statistics import median
from typing import Any, Mapping

from perflab.claim import Claim, SeriesSpec, Settings
from perflab.claims._common import per_op, timing_args
from perflab.model import Control, Decision, Param, Series
from perflab.verdict import INF, median_rule, region

CALLS = Param("calls", 1_000_000, 1_000, 100_000_000, "null system calls per process", unit="calls")
ROUNDS = 1000  # pipe round trips in the positive control

TIMINGS = ("function-call", "vdso-clock_gettime", "syscall-getppid", "process-switch")


def switches(record: dict[str, Any]) -> float:
    """Context switches of the measuring thread: the perf software counter when it could
    count kernel-side events, else getrusage(RUSAGE_THREAD) (voluntary + involuntary)."""
    if record.get("perf_switches") is not None:
        return float(record["perf_switches"])
    return float(record["rusage_nvcsw"] + record["rusage_nivcsw"])


def _plan(settings: Settings) -> list[SeriesSpec]:
    calls = int(settings.params.get("calls", CALLS.default))
    specs = [
        SeriesSpec(
            name="context-switches",
            x=None,
            unit="switches/call",
            xs=(None,),
            argv=lambda _x: ["space", f"--variant=ctxsw-count", f"--calls={calls}", f"--cpu={settings.cpu}"],
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
    return specs


def _decide(series: Mapping[str, Series], conf, rng, n_boot) -> Decision:
    return median_rule(
        series["context-switches"].points.get(None, []),
        "context switches per null system call",
        region(-INF, 0.001),
        region(0.5, INF),
        conf,
        rng,
        n_boot,
    )


def probe_control(series: Mapping[str, Series], conf, rng, n_boot) -> Control:
    """Positive control: the switch counter must see the switches a same-CPU pipe
    ping-pong forces (at least one per round trip); a probe that reads 0 fails it."""
    samples = series["switch-probe-control"].points.get(None, [])
    if not samples:
        return Control("switch-probe", "positive", None, {"reason": "no samples"})
    return Control(
        "switch-probe",
        "positive",
        min(samples) >= 1.0,
        {"switches_per_round_trip": samples, "expected": ">= 1 per round trip", "rounds": ROUNDS},
    )


def _derive(series: Mapping[str, Series]) -> dict[str, Any]:
    """The ladder as ratios: what entering the kernel costs against a call, and what a
    real switch costs against entering the kernel."""
    m = {name: median(series[name].points[None]) for name in TIMINGS}
    return {
        "syscall_over_function_call": m["syscall-getppid"] / m["function-call"],
        "syscall_over_vdso": m["syscall-getppid"] / m["vdso-clock_gettime"],
        "process_switch_over_syscall": m["process-switch"] / m["syscall-getppid"],
        "probe": "perf_event_open software counter (kernel-side events) when allowed, else getrusage(RUSAGE_THREAD)",
    }


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
        thresholds={"supported": "context switches per call < 0.001", "refuted": ">= 0.5"},
        plan=_plan,
        decide=_decide,
        params=(CALLS,),
        aa=("syscall-getppid", None),
        positive=probe_control,
        derive=_derive,
    ),
]
