"""Running a perflab kernel under perflab.observe.trace (claims lib.*, malloc.*): the system
calls it made between its two trace_marker() calls, and its JSON record."""

from __future__ import annotations

import json
from typing import Any

from perflab.observe import trace
from perflab.core.errors import ClaimSkipped, KernelFailed, KernelUnsupported
from perflab.engine.process import kernel_path

WATCHED = ("brk", "mmap", "munmap", "mremap")


def traced(kernel: str, *args: str, timeout: float = 60.0) -> tuple[trace.TraceResult, dict[str, Any]]:
    """Trace `kernel args` with the best mechanism here (docs/trace.md); raise
    ClaimSkipped when no mechanism can count here, KernelFailed when the kernel fails."""
    try:
        r = trace.count([str(kernel_path(kernel)), *args], region=trace.MARKER, timeout=timeout)
    except trace.TraceUnavailable as exc:
        raise ClaimSkipped(f"no system call counter works here: {exc}") from None
    if r.exit_status == 77:
        raise KernelUnsupported((r.stderr or "").strip() or f"{kernel} is not supported here")
    if r.exit_status != 0:
        raise KernelFailed(f"{kernel} {' '.join(args)} exited {r.exit_status}", stderr=r.stderr or "",
                           returncode=r.exit_status)
    try:
        record = json.loads((r.stdout or "").strip().splitlines()[-1])
    except (IndexError, ValueError) as exc:
        raise KernelFailed(f"{kernel} printed no JSON record ({exc})", stderr=r.stderr or "") from None
    return r, record


def region(r: trace.TraceResult) -> dict[str, int]:
    """The calls between the markers, by name (raises MeasurementUnavailable when the
    region is incomplete, e.g. the kernel did not make exactly two marker calls)."""
    if not isinstance(r.region, dict):
        r.region_calls("brk")  # raises with the reason
    return dict(r.region)


def summary(r: trace.TraceResult) -> dict[str, Any]:
    calls = region(r)
    return {"mechanism": r.mechanism, "region": calls, "region_total": sum(calls.values()),
            **{name: calls.get(name, 0) for name in WATCHED}}
