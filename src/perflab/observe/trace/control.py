"""The positive control: a mechanism is trusted only after it counts a known workload
exactly (DESIGN.md, "Controls").

The workload is the ``trace_control --variant=control`` kernel
(src/perflab/kernels/trace_control.c): 29 getppid calls over the whole run, 23 of them
between its two marker calls, made by the main thread (7), a second thread (5) and a
forked child (11); in the region also one thread creation and one fork. The counts are
primes and the parts are distinct, so a mechanism that loses one thread's calls (18),
the child's (12), one call (22/28) or counts some twice cannot pass.

:func:`check` is pure: it takes what a mechanism reported and says whether to trust it.
"""

from __future__ import annotations

import json

from perflab.observe.trace.result import ControlReport, TraceResult, Unavailable

# the control workload is a kernel: its source defines what the control expects
PROVENANCE = ("trace_control",)
ARGV = ("trace_control", "--variant=control")
MARKER = "getpgrp"  # src/perflab/kernels/lib/trace_marker.c
SYSCALL = "getppid"
TOTAL = 29
REGION = 23
THREAD_FLAGS = ("CLONE_VM", "CLONE_FS", "CLONE_FILES", "CLONE_SIGHAND", "CLONE_THREAD")


def _workload_record(stdout: str | None) -> dict | None:
    lines = [ln for ln in (stdout or "").splitlines() if ln.strip()]
    try:
        rec = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def check(result: TraceResult) -> ControlReport:
    """Compare a mechanism's trace of the control workload with what it must show."""
    checks: list[str] = []
    failures: list[str] = []

    def expect(ok: bool, line: str) -> None:
        checks.append(line)
        if not ok:
            failures.append(line)

    expect(result.exit_status == 0, f"workload exit status {result.exit_status} (expected 0)")
    work = _workload_record(result.stdout)
    if result.stdout is not None:
        made = None if work is None else work.get("getppid_total")
        expect(made == TOTAL, f"workload reports {made} {SYSCALL} calls made (expected {TOTAL})")
    expect(result.lost_samples == 0, f"{result.lost_samples} samples lost (expected 0)")
    seen = result.calls(SYSCALL)
    expect(seen == TOTAL, f"{SYSCALL} {seen} over the whole run (expected {TOTAL})")

    if isinstance(result.region, Unavailable) or result.region is None:
        expect(False, f"region between {MARKER} markers: {result.region}")
    else:
        got = result.region.get(SYSCALL, 0)
        expect(got == REGION, f"{SYSCALL} {got} between the markers (expected {REGION})")

    clones = result.clone_calls
    if isinstance(clones, Unavailable):
        checks.append(f"clone flags not checked: {clones.reason}")
    else:
        inside = [c for c in clones if c.in_region]
        n = sum(c.count for c in inside)
        expect(n == 2, f"{n} clone/clone3 calls between the markers (expected 2)")
        unreadable = sum(c.count for c in inside if isinstance(c.flags, Unavailable))
        readable = [c for c in inside if not isinstance(c.flags, Unavailable)]
        threads = sum(c.count for c in readable if c.has(*THREAD_FLAGS))
        forks = sum(
            c.count
            for c in readable
            if "CLONE_VM" not in c.flag_names and c.exit_signal_name == "SIGCHLD"
        )
        if unreadable:  # perf: clone3's flags are not in the sample; check the others
            checks.append(f"{unreadable} clone3 calls with unreadable flags, not checked")
        expect(threads == 1 or (threads == 0 and unreadable),
               f"{threads} thread creations with {'|'.join(THREAD_FLAGS)} (expected 1)")
        expect(forks == 1 or (forks == 0 and unreadable),
               f"{forks} forks: clone without CLONE_VM, exit signal SIGCHLD (expected 1)")
        expect(threads + forks + unreadable == n,
               f"{n - threads - forks - unreadable} clone calls that are neither (expected 0)")
    return ControlReport(result.mechanism, not failures, tuple(checks), tuple(failures))
