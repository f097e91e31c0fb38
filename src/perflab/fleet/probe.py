"""What runs on the scheduler or a worker before any claim: small functions sent by value.

cloudpickle sends a function of an importable module by reference (module and name), so
a worker without perflab, or with an older one, could not even load it. This module is
registered with cloudpickle.register_pickle_by_value (cloudpickle's README, "Overriding
pickle's serialization mechanism for importable constructs"; ``by_value`` below): its
functions travel as code and run on any worker that has distributed. So they import
nothing at module level and import perflab inside, guarded, to report what is there.
"""

from __future__ import annotations

from typing import Any

# The fleet's task protocol (fleet/task.py: its arguments, messages and result); a worker
# whose perflab speaks another cannot run this client's tasks.
PROTOCOL = 1


def describe() -> dict[str, Any]:
    """Run on a worker (Client.run): its perflab, record schema, protocol, host facts and
    whether its kernels are built; ``error`` instead when perflab cannot be imported."""
    import os
    import platform
    import sys

    out: dict[str, Any] = {"python": sys.executable, "python_version": platform.python_version(), "pid": os.getpid()}
    try:
        import perflab
    except (ImportError, SyntaxError, OSError) as exc:  # not installed, or broken: said, not raised
        out["error"] = f"perflab cannot be imported there ({type(exc).__name__}: {exc})"
        return out
    out["perflab"] = getattr(perflab, "__version__", None)
    try:
        from perflab.core.record import SCHEMA_VERSION
        from perflab.engine import process
        from perflab.observe import host
    except (ImportError, SyntaxError, OSError) as exc:  # another perflab, laid out otherwise
        out["incomplete"] = f"{type(exc).__name__}: {exc}"
        return out
    out["record_schema"] = SCHEMA_VERSION
    try:
        from perflab.fleet import probe as installed  # the worker's own copy of this module
    except ImportError:  # a perflab from before the fleet
        installed = None
    out["protocol"] = getattr(installed, "PROTOCOL", None)
    out["kernels_built"] = os.access(process.kernel_dir() / process.LAUNCH, os.X_OK)
    out["facts"] = host.collect()
    return out


def allowed_failures(dask_scheduler: Any = None, value: int | None = None) -> int:
    """Run on the scheduler (Client.run_on_scheduler): its allowed-failures, set to
    ``value`` when given; the value it had. The scheduler reads the setting
    (distributed.scheduler.allowed-failures) once, into this attribute, and compares a
    task's count of workers lost under it against the attribute (scheduler.py,
    remove_worker): at 0, a worker lost mid-task errs the task with KilledWorker instead
    of running it again elsewhere."""
    before = dask_scheduler.allowed_failures
    if value is not None:
        dask_scheduler.allowed_failures = value
    return before


def by_value() -> None:
    """Send this module's functions as code (see the module's docstring)."""
    import sys

    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
