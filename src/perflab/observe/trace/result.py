"""What a trace found: frozen dataclasses, built from the tracer kernel's JSON record.

A quantity a mechanism cannot measure is an :class:`Unavailable` with its reason,
never 0 or None: ``result.context_switches`` is either an ``int`` or an
``Unavailable``. :meth:`TraceResult.require` turns the latter into an exception for
callers that cannot go on without the number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from perflab.observe.trace import clone_flags
from perflab.observe.trace.errors import MeasurementUnavailable


@dataclass(frozen=True)
class Unavailable:
    """A quantity this mechanism, here, cannot measure; ``reason`` says why."""

    reason: str

    def __str__(self) -> str:
        return f"unavailable ({self.reason})"


Count = Union[int, Unavailable]

COUNTERS = ("faults_min", "faults_maj", "context_switches", "cpu_migrations", "task_clock_ns")


@dataclass(frozen=True)
class CloneCall:
    """One kind of clone/clone3 call the command made, and how many times."""

    syscall: str  # "clone" or "clone3"
    flags: int | Unavailable  # clone3 under perf: its struct clone_args was not seen
    exit_signal: int | Unavailable
    count: int
    in_region: bool  # made between the two marker calls

    @property
    def flag_names(self) -> tuple[str, ...]:
        if isinstance(self.flags, Unavailable):
            return ()
        return clone_flags.flag_names(self.flags, self.syscall)

    def has(self, *names: str) -> bool:
        """True when every named flag is set (False when the flags are unavailable)."""
        return set(names) <= set(self.flag_names)

    @property
    def exit_signal_name(self) -> str | None | Unavailable:
        if isinstance(self.exit_signal, Unavailable):
            return self.exit_signal
        return clone_flags.signal_name(self.exit_signal)

    def describe(self) -> str:
        if isinstance(self.flags, Unavailable) or isinstance(self.exit_signal, Unavailable):
            return str(self.flags)
        return clone_flags.describe(self.flags, self.syscall, self.exit_signal)


@dataclass(frozen=True)
class ControlReport:
    """The positive control's verdict on a mechanism (perflab.observe.trace.control)."""

    mechanism: str
    passed: bool
    checks: tuple[str, ...]  # what was checked and seen, one line each
    failures: tuple[str, ...]  # the checks that failed

    @property
    def reason(self) -> str:
        return "; ".join(self.failures) if self.failures else "passed"


@dataclass(frozen=True)
class TraceResult:
    """Counts of what one command did, from its execve to the exit of its last task."""

    mechanism: str
    argv: tuple[str, ...]
    path: str
    exit_status: int  # the exit code, or 128 + signal number (as a shell reports it)
    exit_signal: str | None  # "SIGSEGV" when a signal ended it
    elapsed_ns: int
    syscalls: dict[str, int]  # by name, whole run, the command's own execve included
    region: dict[str, int] | Unavailable | None  # between the markers; None: not asked
    region_marker: str | None
    markers: int | None  # marker calls seen (2 for a complete region)
    clone_calls: tuple[CloneCall, ...] | Unavailable
    faults_min: Count
    faults_maj: Count
    context_switches: Count
    cpu_migrations: Count
    task_clock_ns: Count
    counter_sources: dict[str, str]  # "perf" (exact, from exec) or "rusage" (getrusage)
    counters_note: str | None  # why perf software counters were refused (then rusage)
    lost_samples: int  # perf: samples the kernel dropped; bpf: program runs it skipped (counts are then low)
    other_abi: int  # calls through a 32-bit ABI, not counted by name (ptrace only)
    control: ControlReport | None = None
    rejected: dict[str, str] = field(default_factory=dict)  # better mechanisms, why not
    stdout: str | None = None  # the command's output when captured
    stderr: str | None = None

    @property
    def total(self) -> int:
        return sum(self.syscalls.values())

    def calls(self, name: str) -> int:
        """Calls of one system call over the whole run (0 when never made)."""
        return self.syscalls.get(name, 0)

    def region_calls(self, name: str) -> int:
        """Calls of one system call between the markers."""
        region = self.region
        if region is None:
            raise MeasurementUnavailable("no region was asked for (count(..., region=MARKER))")
        if isinstance(region, Unavailable):
            raise MeasurementUnavailable(f"region counts {region}")
        return region.get(name, 0)

    def minus(self, baseline: TraceResult) -> dict[str, int]:
        """Calls per system call beyond a baseline run (the same program doing nothing,
        e.g. a kernel's --variant=empty): start-up and exit cancel out. Names whose
        difference is 0 are left out; a negative difference is kept (it is a finding)."""
        names = set(self.syscalls) | set(baseline.syscalls)
        diff = {n: self.calls(n) - baseline.calls(n) for n in sorted(names)}
        return {n: d for n, d in diff.items() if d}

    def require(self, name: str) -> int:
        """The value of a counter (e.g. "faults_min"); raise if it is unavailable."""
        value = getattr(self, name)
        if isinstance(value, Unavailable):
            raise MeasurementUnavailable(f"{name} {value} (mechanism {self.mechanism})")
        return value

    def to_json(self) -> dict[str, Any]:
        def count(v: Count, name: str) -> dict[str, Any]:
            if isinstance(v, Unavailable):
                return {"unavailable": v.reason}
            return {"value": v, "source": self.counter_sources.get(name)}

        def unav(v: Any) -> Any:
            return {"unavailable": v.reason} if isinstance(v, Unavailable) else v

        clones: Any
        if isinstance(self.clone_calls, Unavailable):
            clones = {"unavailable": self.clone_calls.reason}
        else:
            clones = [
                {
                    "syscall": c.syscall,
                    "flags": unav(c.flags),
                    "flag_names": list(c.flag_names),
                    "exit_signal": unav(c.exit_signal),
                    "exit_signal_name": unav(c.exit_signal_name),
                    "count": c.count,
                    "in_region": c.in_region,
                }
                for c in self.clone_calls
            ]
        return {
            "command": list(self.argv),
            "path": self.path,
            "mechanism": self.mechanism,
            "rejected": dict(self.rejected),
            "control": None
            if self.control is None
            else {
                "mechanism": self.control.mechanism,
                "passed": self.control.passed,
                "checks": list(self.control.checks),
                "failures": list(self.control.failures),
            },
            "exit_status": self.exit_status,
            "exit_signal": self.exit_signal,
            "elapsed_ns": self.elapsed_ns,
            "syscalls": dict(self.syscalls),
            "syscalls_total": self.total,
            "region": None
            if self.region is None
            else {"marker": self.region_marker, "markers": self.markers, "syscalls": unav(self.region)},
            "clone_calls": clones,
            "counters": {name: count(getattr(self, name), name) for name in COUNTERS},
            "counters_note": self.counters_note,
            "lost_samples": self.lost_samples,
            "other_abi": self.other_abi,
        }


def _clone_call(rec: dict[str, Any], mechanism: str) -> CloneCall:
    if rec["readable"]:
        flags: int | Unavailable = int(rec["flags"])
        sig: int | Unavailable = int(rec["exit_signal"])
    else:
        why = (
            "a perf sample carries clone3's pointer, not the struct clone_args it points to"
            if mechanism == "perf"
            else "struct clone_args was not readable in the caller's memory"
        )
        flags = sig = Unavailable(why)
    return CloneCall(rec["syscall"], flags, sig, int(rec["count"]), bool(rec["in_region"]))


def from_record(record: dict[str, Any]) -> TraceResult:
    """Build a TraceResult from the tracer kernel's record (docs/kernels.md, "tracer")."""
    mechanism = record["mechanism"]
    counters: dict[str, Count] = {}
    sources: dict[str, str] = {}
    for name in COUNTERS:
        c = record["counters"][name]
        if "unavailable" in c:
            counters[name] = Unavailable(c["unavailable"])
        else:
            counters[name] = int(c["value"])
            sources[name] = c["source"]
    region_rec = record.get("region")
    region: dict[str, int] | Unavailable | None = None
    marker = markers = None
    if region_rec is not None:
        marker, markers = region_rec["marker"], int(region_rec["markers"])
        if markers == 2:
            region = {k: int(v) for k, v in region_rec["syscalls"].items()}
        else:
            region = Unavailable(f"the command made {markers} {marker} marker calls, not 2")
    clone_rec = record["clone_calls"]
    if isinstance(clone_rec, dict):
        clones: tuple[CloneCall, ...] | Unavailable = Unavailable(clone_rec["unavailable"])
    elif record.get("clone_kinds_lost"):
        clones = Unavailable(f"{record['clone_kinds_lost']} clone calls of too many distinct kinds")
    else:
        clones = tuple(_clone_call(c, mechanism) for c in clone_rec)
    return TraceResult(
        mechanism=mechanism,
        argv=tuple(record["argv"]),
        path=record["path"],
        exit_status=int(record["exit_status"]),
        exit_signal=record["exit_signal"],
        elapsed_ns=int(record["elapsed_ns"]),
        syscalls={k: int(v) for k, v in record["syscalls"].items()},
        region=region,
        region_marker=marker,
        markers=markers,
        clone_calls=clones,
        counter_sources=sources,
        counters_note=record.get("counters_note"),
        lost_samples=int(record.get("lost_samples", 0)),
        other_abi=int(record.get("other_abi", 0)),
        **counters,
    )
