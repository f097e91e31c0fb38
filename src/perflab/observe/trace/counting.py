"""count(): trace a command with the best mechanism that passes its positive control.

Each mechanism, the first time this process wants it, traces the control workload
(perflab.observe.trace.control); one that is refused here or miscounts is not used, and the
result says which better mechanisms were passed over and why. Control verdicts are
kept for the life of the process: claims call count() many times.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace

from perflab.core.errors import UsageError
from perflab.engine.process import kernel_path
from perflab.observe.trace import control, mechanisms
from perflab.observe.trace.errors import CommandNotFound, MechanismRefused, TraceIncomplete, TraceUnavailable
from perflab.observe.trace.result import ControlReport, TraceResult
from perflab.observe.trace.syscall_table import NUMBERS
from perflab.core.safe import safe

MARKER = control.MARKER  # the default region marker: trace_marker() in kernels/lib/trace_marker.c

# mechanism name -> its control verdict, or the reason it cannot run here
_verdicts: dict[str, ControlReport | str] = {}


def resolve_command(name: str) -> str:
    """A path for argv[0]: as given when it has a '/', else searched in PATH (execvp(3)).

    Resolved once here so the traced command makes exactly one execve.
    """
    if "/" in name:
        return name
    found = shutil.which(name)
    if found is None:
        raise CommandNotFound(f"command not found: {safe(name)}")
    return found


def trace_control(name: str) -> TraceResult:
    """Trace the control workload with mechanism `name` (raises MechanismRefused)."""
    argv = [str(kernel_path(control.ARGV[0])), *control.ARGV[1:]]
    return mechanisms.run(name, argv, region=control.MARKER, capture=True, timeout=60)


def choose(
    candidates: Sequence[str], judge: Callable[[str], ControlReport]
) -> tuple[str, ControlReport, dict[str, str]]:
    """The first candidate that runs here and passes its control: (name, report,
    {better candidate: why not}). Raises TraceUnavailable when none does.

    `judge(name)` returns a mechanism's control report or raises MechanismRefused;
    tests pass one that checks a fake miscounting trace, to show it is rejected.
    """
    rejected: dict[str, str] = {}
    for name in candidates:
        try:
            report = judge(name)
        except MechanismRefused as exc:
            rejected[name] = str(exc)
            continue
        if report.passed:
            return name, report, rejected
        rejected[name] = f"failed its positive control: {report.reason}"
    raise TraceUnavailable(rejected)


def judge(name: str) -> ControlReport:
    """Trace the control workload with `name` and check it, once per process."""
    verdict = _verdicts.get(name)
    if verdict is None:
        try:
            verdict = control.check(trace_control(name))
        except MechanismRefused as exc:
            verdict = str(exc)
        _verdicts[name] = verdict
    if isinstance(verdict, str):
        raise MechanismRefused(verdict)
    return verdict


def count(
    argv: Sequence[str],
    *,
    mechanism: str | None = None,
    region: str | None = None,
    capture: bool = True,
    timeout: float | None = None,
) -> TraceResult:
    """Count what `argv` does, from its execve to the exit of the last task it made.

    mechanism: one of MECHANISMS to insist on (its control still has to pass), or None
    for the best that works here. region: a marker system call name (MARKER,
    "getpgrp"): ``result.region`` then holds the calls made between the command's first
    and second call of it. capture: keep the command's output in ``result.stdout`` /
    ``result.stderr`` (stdin is /dev/null); False shares perflab's terminal.

    Raises UsageError (bad mechanism or marker), CommandNotFound, TraceUnavailable (no
    mechanism works: the reasons, by mechanism), TraceIncomplete (the perf mechanism
    lost samples).
    """
    if not argv:
        raise UsageError("no command to trace")
    if mechanism is not None and mechanism not in mechanisms.MECHANISMS:
        raise UsageError(f"unknown mechanism {mechanism!r} (choose from {', '.join(mechanisms.MECHANISMS)})")
    if region is not None and region not in NUMBERS:
        raise UsageError(f"unknown system call {region!r} for a region marker")
    path = resolve_command(argv[0])
    candidates = mechanisms.MECHANISMS if mechanism is None else (mechanism,)
    name, report, rejected = choose(candidates, judge)
    result = mechanisms.run(name, [path, *argv[1:]], region=region, capture=capture, timeout=timeout)
    if result.lost_samples:
        why = ("samples (its ring buffer overflowed)" if name == "perf" else
               "program runs (the kernel skipped them: BPF recursion_misses)")
        raise TraceIncomplete(
            f"the {name} mechanism lost {result.lost_samples} {why}: the counts would be too low"
            + ("; try --mechanism=bpf" if name == "perf" else "")
        )
    return replace(result, argv=tuple(argv), control=report, rejected=rejected)
