"""perflab trace [--mechanism M] [--region [SYSCALL]] [--json] [-o FILE] -- COMMAND [ARGS]

Counts what COMMAND does (system calls by name, clone flags, faults, switches,
migrations, task clock; every thread and child), like ``strace -c -f`` but cheap, with
the mechanism named and its positive control shown. The command keeps perflab's
terminal; the report goes to stderr (as strace -c's), the --json record to stdout
(after anything the command printed there: it is the last line), or either to -o FILE
(results/output.py: never through a symlink, a FIFO or character device only written
through, a regular file replaced atomically).

Exit status: when the trace completed, the command's own (its exit code, or 128 + the
signal that killed it), as strace(1) and time(1) pass it through; the report (and
--json's ``exit_status``) says the same. perflab's own failures print one line
``perflab: ...`` on stderr and no report: 1 when the command cannot be executed, no
mechanism works here or the report cannot be written; 2 for usage errors; 130 when
perflab itself is interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from perflab.observe import trace
from perflab.core.errors import UsageError
from perflab.observe.trace.mechanisms import SUMMARY
from perflab.observe.trace.result import COUNTERS, TraceResult, Unavailable
from perflab.results import output
from perflab.core.safe import safe

COUNTER_LABELS = {
    "faults_min": "minor page faults",
    "faults_maj": "major page faults",
    "context_switches": "context switches",
    "cpu_migrations": "CPU migrations",
    "task_clock_ns": "task clock",
}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "trace",
        help="count the system calls, faults and switches of a command",
        description="Count what a command does, from its execve to the exit of its last "
        "thread or child, with the cheapest mechanism that passes a positive control here.",
        epilog="The command keeps this terminal; the report goes to stderr (as strace -c's), "
        "--json to stdout. Exits with the command's own status (128 + N when signal N "
        "killed it); perflab's own errors print one 'perflab: ...' line and exit 1 (or 2 for "
        "usage). Method and mechanisms: docs/trace.md.",
    )
    p.add_argument("--mechanism", choices=trace.MECHANISMS, help="use this mechanism (default: the best that works)")
    p.add_argument(
        "--region",
        nargs="?",
        const=trace.MARKER,
        metavar="SYSCALL",
        help=f"also count only between the command's first two calls of SYSCALL (default {trace.MARKER})",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout instead of the report")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report (or JSON) to FILE")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS]", help="the command to trace")
    p.set_defaults(func=run)


def run(args) -> int:
    argv = list(args.command)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise UsageError("trace: no command given (perflab trace [--json] -- COMMAND [ARGS])")
    out = args.output
    if out is not None:  # before the command runs: its trace must have somewhere to go
        output.check_target(out)
    try:
        result = trace.count(argv, mechanism=args.mechanism, region=args.region, capture=False)
    except trace.TraceUnavailable as exc:
        if args.json:
            _emit(out, json.dumps({"command": argv, "mechanism": "unavailable", "reasons": exc.reasons}) + "\n")
        raise
    if args.json:
        _emit(out, json.dumps(result.to_json()) + "\n")
    else:
        _emit(out, render(result), default=sys.stderr)
    return result.exit_status  # the command's, passed through (strace(1), time(1))


def _emit(out: str | None, text: str, default: TextIO | None = None) -> None:
    """To -o FILE (whole or not at all, never through a planted link), else to the stream."""
    if out is not None:
        output.write_file(out, text)
        return
    stream = sys.stdout if default is None else default
    with output.writing(stream, "stderr" if stream is sys.stderr else "stdout"):
        stream.write(text)


def _fmt_count(name: str, value: int | Unavailable, source: str | None) -> str:
    if isinstance(value, Unavailable):
        return f"unavailable: {value.reason}"
    shown = f"{value / 1e6:.3f} ms" if name == "task_clock_ns" else str(value)
    return f"{shown}  ({source})"


def _table(counts: dict[str, int], indent: str = "  ") -> list[str]:
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    lines = [f"{indent}{'calls':>9}  syscall"]
    lines += [f"{indent}{n:>9}  {name}" for name, n in rows]
    lines.append(f"{indent}{sum(counts.values()):>9}  total")
    return lines


def render(r: TraceResult) -> str:
    """The human report (plain text, one screen for a small command). The command's
    arguments and the reasons (which may quote paths) are the outside's: made safe."""
    ending = f"killed by {r.exit_signal}" if r.exit_signal else f"exited {r.exit_status}"
    out = [
        f"perflab trace: {' '.join(safe(a) for a in r.argv)}: {ending} after {r.elapsed_ns / 1e6:.3f} ms",
        f"mechanism: {r.mechanism} ({SUMMARY[r.mechanism]})",
    ]
    for name, why in r.rejected.items():
        out.append(f"  not {name}: {safe(why)}")
    if r.control is not None:
        ok = "passed" if r.control.passed else f"FAILED ({safe(r.control.reason)})"
        out.append(f"positive control: {ok}, {len(r.control.checks)} checks on a known "
                   "workload (threads, a fork, markers; details with --json)")
    out.append("")
    out.append("system calls, whole run (from the command's execve):")
    out += _table(r.syscalls)
    if r.region is not None:
        out.append("")
        if isinstance(r.region, Unavailable):
            out.append(f"between the {r.region_marker} markers: {r.region}")
        else:
            out.append(f"between the {r.region_marker} markers:")
            out += _table(r.region)
    out.append("")
    if isinstance(r.clone_calls, Unavailable):
        out.append(f"clone flags: {r.clone_calls}")
    elif r.clone_calls:
        out.append("clone calls:")
        for c in r.clone_calls:
            where = "  (in region)" if c.in_region and r.region is not None else ""
            out.append(f"  {c.count:>5} x {c.syscall}({c.describe()}){where}")
    else:
        out.append("clone calls: none")
    out.append("")
    out.append("counters:")
    for name in COUNTERS:
        value = getattr(r, name)
        out.append(f"  {COUNTER_LABELS[name]:<18} {_fmt_count(name, value, r.counter_sources.get(name))}")
    if "rusage" in r.counter_sources.values():
        out.append(f"  (rusage: getrusage(2) RUSAGE_CHILDREN of the tracer less the child's usage before execve; task clock in "
                   f"scheduler ticks. perf software counters refused: {safe(r.counters_note or '')})")
    if r.other_abi:
        out.append(f"  {r.other_abi} calls through a 32-bit ABI (int 0x80) are not counted by name")
    return "\n".join(out) + "\n"
