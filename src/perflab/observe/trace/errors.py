"""Typed errors of perflab.observe.trace (caught once by the CLI: one line, exit 1)."""

from __future__ import annotations

from perflab.core.errors import EnvironmentRefused


class MechanismRefused(EnvironmentRefused):
    """One tracing mechanism cannot run here; the message says why."""


class TraceUnavailable(EnvironmentRefused):
    """No mechanism can count here: every one was refused or failed its control."""

    def __init__(self, reasons: dict[str, str]):
        self.reasons = dict(reasons)
        listed = "; ".join(f"{name}: {why}" for name, why in reasons.items())
        super().__init__(f"no tracing mechanism works here ({listed})")


class CommandNotFound(EnvironmentRefused):
    """The command to trace is not on PATH or cannot be executed."""


class TraceIncomplete(EnvironmentRefused):
    """The mechanism ran but could not see every call (the perf ring buffer overflowed)."""


class MeasurementUnavailable(EnvironmentRefused):
    """A caller required a quantity the chosen mechanism could not measure."""
