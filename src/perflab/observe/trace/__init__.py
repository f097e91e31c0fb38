"""Counting what a command does: system calls by name, clone flags, page faults,
context switches, migrations, task clock; every thread and child included.

    from perflab.observe import trace
    r = trace.count(["/bin/true"])
    r.syscalls["execve"], r.faults_min, r.mechanism, r.control.passed

Method, mechanisms and their costs: docs/trace.md.
"""

from perflab.observe.trace.counting import MARKER, count, resolve_command
from perflab.observe.trace.errors import (
    CommandNotFound,
    MeasurementUnavailable,
    MechanismRefused,
    TraceIncomplete,
    TraceUnavailable,
)
from perflab.observe.trace.mechanisms import MECHANISMS
from perflab.observe.trace.result import CloneCall, ControlReport, TraceResult, Unavailable

__all__ = [
    "MARKER",
    "MECHANISMS",
    "CloneCall",
    "CommandNotFound",
    "ControlReport",
    "MeasurementUnavailable",
    "MechanismRefused",
    "TraceIncomplete",
    "TraceResult",
    "TraceUnavailable",
    "Unavailable",
    "count",
    "resolve_command",
]
