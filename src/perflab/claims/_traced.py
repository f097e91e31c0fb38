"""Running a perflab kernel under perflab.observe.trace (claims lib.*, malloc.*): the system
calls it made between its two trace_marker() calls, and its JSON record.

What a trace found is handed on as plain data (``counts``): a structural claim's
observations are stored with its verdict and judged again from the record, so no
TraceResult may reach a judge. Also here: the positive controls on the counter itself
(it must see the brk and mmap calls a kernel is known to make).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from perflab.core.errors import ClaimSkipped, KernelFailed, KernelUnsupported
from perflab.core.rule import INF, Region, Rule
from perflab.engine.process import kernel_path
from perflab.observe import trace

WATCHED = ("brk", "mmap", "munmap", "mremap")

# the counter's positive controls: a heap that grew must show brk calls, a fresh large
# allocation an mmap; a probe blind to the call (or to the region) reads 0 and fails
BRK_PROBE = Rule(quantity="brk calls the counter sees where the heap grew", short="brk calls",
                 supported=Region(1, INF), reason="never-freed small blocks must grow the heap, with brk (sysmalloc)")
MMAP_PROBE = Rule(quantity="mmap calls the counter sees for a fresh allocation above the mmap threshold",
                  short="mmap calls", supported=Region(1, INF),
                  reason="a fresh process serves its first large block with mmap (sysmalloc, mallopt(3))")


def probe_holds(rule: Rule, calls: float) -> bool:
    assert rule.supported is not None
    return rule.supported.holds(calls, calls)


def traced(kernel: str, *args: str, timeout: float = 60.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trace `kernel args` with the best mechanism here (docs/trace.md): (its counts as
    plain data, see ``counts``; its JSON record). Raise ClaimSkipped when no mechanism
    can count here, KernelUnsupported / KernelFailed when the kernel says so or fails."""
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
    return counts(r), record


def region(r: trace.TraceResult) -> dict[str, int]:
    """The calls between the markers, by name (raises MeasurementUnavailable when the
    region is incomplete, e.g. the kernel did not make exactly two marker calls)."""
    if not isinstance(r.region, dict):
        r.region_calls("brk")  # raises with the reason
    return dict(r.region)


def counts(r: trace.TraceResult) -> dict[str, Any]:
    """A trace as plain data: the mechanism, the calls between the markers (by name, their
    total and the watched ones) and every call of the whole run (``whole_run``)."""
    calls = region(r)
    return {"mechanism": r.mechanism, "region": calls, "region_total": sum(calls.values()),
            **{name: calls.get(name, 0) for name in WATCHED}, "whole_run": dict(r.syscalls)}


def summary(c: Mapping[str, Any]) -> dict[str, Any]:
    """Counts as the evidence shows them: the region only (the whole run is kept apart)."""
    return {k: v for k, v in c.items() if k != "whole_run"}
