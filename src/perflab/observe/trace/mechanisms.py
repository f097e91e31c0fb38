"""The three ways to count a command's system calls, what each needs, and running one.

In order of preference (docs/trace.md explains the order and the measured costs):

- ``bpf``: a hand-assembled BPF program on the raw_syscalls:sys_enter raw tracepoint,
  counting by syscall number the calls of tasks in a fresh cgroup-v2 (the command is
  moved there before execve). ~+0.1 us per call; creating a thread costs nothing more.
  Needs CAP_BPF and CAP_PERFMON (root) and a cgroup-v2 hierarchy.
- ``perf``: perf_event_open sampling raw_syscalls:sys_enter at every call, one ring
  buffer per CPU, inherited by every task. Needs CAP_PERFMON (or perf_event_paranoid
  -1) and tracefs (mounted for the trace if absent). clone3 flags are not seen.
- ``ptrace``: the C tracer stops the command at each call. Needs nothing but the right
  to trace one's own child; ~+20 us per call.

All three also read perf software counters (faults, switches, migrations, task clock)
when kernel-context counting is allowed, else the reaped tree's rusage. The actual work is the
``tracer`` kernel (src/perflab/kernels/tracer/); this module prepares what it needs
(cgroup, tracefs), checks privileges first for a clearer reason, and runs it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from perflab.engine import process
from perflab.core.errors import KernelFailed, KernelUnsupported
from perflab.observe.trace import cgroup, tracefs
from perflab.observe.trace.errors import CommandNotFound, MechanismRefused
from perflab.observe.trace.result import TraceResult, from_record
from perflab.core.safe import safe

# every mechanism is run by the tracer kernel (kernels/tracer/): its source is part of
# what any traced count means
PROVENANCE = ("tracer",)

MECHANISMS = ("bpf", "perf", "ptrace")

SUMMARY = {
    "bpf": "BPF program on raw_syscalls:sys_enter (bpf(2), hand-assembled), filtered by a "
    "fresh cgroup-v2; perf software counters",
    "perf": "perf_event_open sampling raw_syscalls:sys_enter at every call; perf software counters",
    "ptrace": "ptrace(2) stop at every system call (C tracer); perf software counters or "
    "rusage",
}

# include/uapi/linux/capability.h
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


def effective_caps(status: str | None = None) -> int:
    """CapEff from /proc/self/status (proc(5)), as a bit mask."""
    text = status if status is not None else Path("/proc/self/status").read_text()
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def _has(caps: int, cap: int) -> bool:
    return bool(caps >> cap & 1)


def _sysctl(name: str) -> str:
    try:
        return Path("/proc/sys", *name.split(".")).read_text().strip()
    except OSError:
        return "?"


def precheck(name: str, caps: int | None = None) -> str | None:
    """Why `name` cannot run for this process, or None to try it. The tracer's own
    attempt decides in the end; this only gives the common refusals a clearer reason."""
    caps = effective_caps() if caps is None else caps
    admin = _has(caps, CAP_SYS_ADMIN)
    who = f"uid {os.geteuid()}"
    if name == "bpf":
        if not ((_has(caps, CAP_BPF) or admin) and (_has(caps, CAP_PERFMON) or admin)):
            return (
                "loading a tracing BPF program needs CAP_BPF and CAP_PERFMON (root); "
                f"{who} has neither (kernel.unprivileged_bpf_disabled="
                f"{_sysctl('kernel.unprivileged_bpf_disabled')})"
            )
    elif name == "perf":
        paranoid = _sysctl("kernel.perf_event_paranoid")
        if not (_has(caps, CAP_PERFMON) or admin or paranoid == "-1"):
            return (
                "syscall tracepoints need CAP_PERFMON (root) or kernel.perf_event_paranoid=-1; "
                f"it is {paranoid} and {who} has no CAP_PERFMON"
            )
        if tracefs.find() is None and not admin:
            return f"tracefs is not mounted and mounting it needs CAP_SYS_ADMIN ({who})"
    elif name != "ptrace":
        raise ValueError(f"unknown mechanism {name!r}")
    return None


@contextlib.contextmanager
def _resources(name: str) -> Iterator[list[str]]:
    """The tracer options for `name`, with what they point at set up and torn down."""
    if name == "bpf":
        with cgroup.fresh_cgroup() as path:
            yield [f"--cgroup={path}"]
    elif name == "perf":
        with tracefs.mounted() as path:
            yield [f"--tracefs={path}"]
    else:
        yield []


def run(
    name: str,
    argv: Sequence[str],
    *,
    region: str | None = None,
    capture: bool = True,
    timeout: float | None = None,
) -> TraceResult:
    """Trace `argv` (argv[0] a path) once with mechanism `name`.

    capture=True: the command reads /dev/null and its output is kept in the result;
    False: it shares perflab's stdin, stdout and stderr. Raises MechanismRefused when the
    mechanism cannot run here, CommandNotFound when the command cannot be executed.
    """
    reason = precheck(name)
    if reason:
        raise MechanismRefused(reason)
    with contextlib.ExitStack() as stack:
        if capture:
            files = [
                stack.enter_context(open(os.devnull, "rb")),
                stack.enter_context(tempfile.TemporaryFile()),
                stack.enter_context(tempfile.TemporaryFile()),
            ]
            fds = [f.fileno() for f in files]
        else:
            fds = [_dup_or_devnull(i, stack) for i in range(3)]
        extra = stack.enter_context(_resources(name))
        cmd = [
            "tracer",
            f"--mechanism={name}",
            *extra,
            *([f"--marker={region}"] if region else []),
            f"--stdin-fd={fds[0]}",
            f"--stdout-fd={fds[1]}",
            f"--stderr-fd={fds[2]}",
            "--",
            *argv,
        ]
        try:
            record = process.run_kernel(cmd, timeout=timeout, pass_fds=tuple(fds))
        except KernelUnsupported as exc:  # exit 77: "tracer: <why>"
            raise MechanismRefused(str(exc).removeprefix("tracer: ")) from None
        except KernelFailed as exc:  # say what the tracer said, not just its exit code
            last = exc.stderr.strip().splitlines()[-1:] or ["no message"]
            raise KernelFailed(f"{exc}: {safe(last[0])}", exc.stderr, exc.returncode) from None
        out = err = None
        if capture:
            out, err = (_read(f) for f in files[1:])
    if record.get("exec_error"):
        raise CommandNotFound(f"cannot execute {safe(record['path'])}: {record['exec_error']}")
    return replace(from_record(record), stdout=out, stderr=err)


def _dup_or_devnull(fd: int, stack: contextlib.ExitStack) -> int:
    """A copy of perflab's own fd (a number >= 3, which Popen's pass_fds keeps), or
    /dev/null where perflab was started with that fd closed."""
    try:
        new = os.dup(fd)
    except OSError:
        new = os.open(os.devnull, os.O_RDWR)
    stack.callback(os.close, new)
    return new


def _read(f) -> str:
    f.seek(0)
    return f.read().decode(errors="replace")
