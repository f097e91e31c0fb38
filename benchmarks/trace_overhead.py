#!/usr/bin/env python3
"""What tracing adds per system call, and to a workload that creates 1,000 threads:
perflab trace's three mechanisms against strace -f -c and perf stat -e
'syscalls:sys_enter_*', on the same workloads. Needs root (bpf, perf, perf stat).

Workloads (src/perflab/kernels/trace_control.c), timed *inside* the workload with
clock_gettime between its two marker calls, so tool start-up and tear-down are not in
the per-call figures:
- getppid-loop: N getppid(2) calls; ns per call. Added = traced - untraced. Twice: wall
  time, and the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), which time spent waiting
  for a CPU other processes hold does not inflate: on a shared machine the wall-time
  figures of one run can differ by 2x while the CPU-time ones stay within a few ns.
  Every tool's per-call cost lands in the traced thread's CPU time (the BPF program,
  perf's tracepoint probe and ptrace's stops all run in its system calls; ptrace's and
  strace's tracer switches too, but not the tracer's own CPU time).
- threads: 1,000 threads created (each makes one getppid) and joined; slowdown =
  traced / untraced elapsed.
Separately, the wall time of tracing /bin/true (start-up and tear-down of each tool).

Each (tool, workload) runs --repeats times, all runs in a shuffled order; medians are
reported, with min-max, and each tool's added cost as a ratio to perf stat's (and
strace's). Every perflab run's getppid count is checked against N.

    sudo .venv/bin/python benchmarks/trace_overhead.py [--repeats 5] [--json out.json]
        [--kernels LABEL=DIR ...]

--kernels adds "perflab bpf (LABEL)": the bpf mechanism with the tracer built in DIR
(PERFLAB_KERNEL_DIR), e.g. another commit's, in the same shuffled run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from perflab.engine.process import kernel_dir
from perflab.observe.trace import mechanisms, tracefs

WORKLOAD = str(kernel_dir() / "trace_control")
N_FAST = 1_000_000  # untraced ~0.23 s
N_SLOW = 20_000  # under ptrace/strace (~20 us per call): ~0.4 s
THREADS = 1000


def workload_json(stdout: str) -> dict:
    """The workload's JSON line ({} for /bin/true, which prints nothing)."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def run_plain(argv: list[str]) -> tuple[dict, float]:
    t = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, check=True)
    return workload_json(p.stdout), time.perf_counter() - t


def run_perflab(mech: str, argv: list[str], kernel_dir: str | None = None) -> tuple[dict, float]:
    saved = os.environ.get("PERFLAB_KERNEL_DIR")
    if kernel_dir:
        os.environ["PERFLAB_KERNEL_DIR"] = kernel_dir
    try:
        t = time.perf_counter()
        r = mechanisms.run(mech, argv, capture=True)
        wall = time.perf_counter() - t
    finally:
        if kernel_dir:
            if saved is None:
                del os.environ["PERFLAB_KERNEL_DIR"]
            else:
                os.environ["PERFLAB_KERNEL_DIR"] = saved
    rec = workload_json(r.stdout)
    if r.lost_samples:  # perf ring buffer overrun: the counts are low; say so, keep going
        print(f"WARNING: {mech} lost {r.lost_samples} samples", file=sys.stderr)
    elif rec.get("variant") in ("getppid-loop", "threads"):
        assert r.calls("getppid") == rec["n"], f"{mech}: {r.calls('getppid')} getppid, expected {rec['n']}"
    return {**rec, "lost_samples": r.lost_samples}, wall


def run_strace(argv: list[str]) -> tuple[dict, float]:
    with tempfile.NamedTemporaryFile() as out:
        t = time.perf_counter()
        p = subprocess.run(["strace", "-f", "-c", "-o", out.name, "--", *argv],
                           capture_output=True, text=True, check=True)
        return workload_json(p.stdout), time.perf_counter() - t


def run_perf_stat(argv: list[str]) -> tuple[dict, float]:
    with tempfile.NamedTemporaryFile() as out:
        t = time.perf_counter()
        p = subprocess.run(["perf", "stat", "-x,", "-o", out.name, "-e", "syscalls:sys_enter_*", "--", *argv],
                           capture_output=True, text=True, check=True)
        return workload_json(p.stdout), time.perf_counter() - t


TOOLS = {
    "untraced": run_plain,
    "perflab bpf": lambda a: run_perflab("bpf", a),
    "perflab perf": lambda a: run_perflab("perf", a),
    "perflab ptrace": lambda a: run_perflab("ptrace", a),
    "strace -f -c": run_strace,
    "perf stat -e 'syscalls:sys_enter_*'": run_perf_stat,
}
SLOW = {"perflab ptrace", "strace -f -c"}


def loop_argv(tool: str) -> list[str]:
    n = N_SLOW if tool in SLOW else N_FAST
    return [WORKLOAD, "--variant=getppid-loop", f"--n={n}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", metavar="FILE", help="also write every sample here")
    ap.add_argument("--skip-perf-stat", action="store_true",
                    help="perf stat with ~360 tracepoints takes ~13 s per run to tear down")
    ap.add_argument("--kernels", action="append", default=[], metavar="LABEL=DIR",
                    help="also the bpf mechanism with the tracer of DIR (repeatable)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (bpf, perf and perf stat on syscall tracepoints)")
    for spec in args.kernels:
        label, _, kdir = spec.partition("=")
        if not kdir or not os.access(os.path.join(kdir, "tracer"), os.X_OK):
            sys.exit(f"--kernels {spec}: no tracer built in {kdir!r}")
        TOOLS[f"perflab bpf ({label})"] = lambda a, kdir=kdir: run_perflab("bpf", a, kdir)
    tools = [t for t in TOOLS if not (args.skip_perf_stat and t.startswith("perf stat"))]
    for needed, tool in (("strace", "strace -f -c"), ("perf", "perf stat -e 'syscalls:sys_enter_*'")):
        if tool in tools and shutil.which(needed) is None:
            tools.remove(tool)
            print(f"skipping {tool}: {needed} not installed", file=sys.stderr)

    plan = [(tool, kind) for tool in tools for kind in ("loop", "threads", "true") for _ in range(args.repeats)]
    # the untraced loop also at N_SLOW, so slow tools compare against the same N
    plan += [("untraced-slow", "loop")] * args.repeats
    random.Random(1).shuffle(plan)
    samples: dict[tuple[str, str], list[dict]] = {}
    # perf stat mounts tracefs if it is missing and leaves it mounted: hold our own mount
    # (unmounted at the end if we made it)
    with tracefs.mounted() if any(t.startswith("perf") for t in tools) else contextlib.nullcontext():
        for i, (tool, kind) in enumerate(plan):
            runner = TOOLS["untraced" if tool == "untraced-slow" else tool]
            if kind == "loop":
                argv = [WORKLOAD, "--variant=getppid-loop", f"--n={N_SLOW}"] if tool == "untraced-slow" else loop_argv(tool)
            elif kind == "threads":
                argv = [WORKLOAD, "--variant=threads", f"--n={THREADS}"]
            else:
                argv = ["/bin/true"]
            rec, wall = runner(argv)
            samples.setdefault((tool, kind), []).append({"wall_s": wall, **rec})
            print(f"[{i + 1}/{len(plan)}] {tool:40s} {kind:8s} wall {wall * 1e3:9.1f} ms"
                  + (f"  {rec['per_op_ns']:10.1f} ns/op" if rec.get("per_op_ns") else ""), file=sys.stderr)

    def med(tool: str, kind: str, key: str) -> tuple[float, float, float]:
        v = [s[key] for s in samples[(tool, kind)]]
        return statistics.median(v), min(v), max(v)

    base_fast = med("untraced", "loop", "per_op_ns")[0]
    base_slow = med("untraced-slow", "loop", "per_op_ns")[0]
    cpu_fast = med("untraced", "loop", "per_op_cpu_ns")[0]
    cpu_slow = med("untraced-slow", "loop", "per_op_cpu_ns")[0]
    base_thr = med("untraced", "threads", "elapsed_ns")[0]

    def added(tool: str, key: str) -> float:
        fast, slow = (base_fast, base_slow) if key == "per_op_ns" else (cpu_fast, cpu_slow)
        return med(tool, "loop", key)[0] - (slow if tool in SLOW else fast)

    refs = [t for t in ("perf stat -e 'syscalls:sys_enter_*'", "strace -f -c") if t in tools]
    print(f"\nuntraced getppid: {base_fast:.0f} ns/call wall, {cpu_fast:.0f} ns CPU (N={N_FAST:,}); "
          f"{base_slow:.0f} / {cpu_slow:.0f} ns (N={N_SLOW:,}); 1,000 threads: {base_thr / 1e6:.2f} ms; "
          f"repeats {args.repeats}, medians (min-max)\n")
    print("| tool | ns per getppid, wall | added, wall | ns per getppid, CPU | added, CPU | "
          + " | ".join(f"added CPU / {r.split()[0]} {r.split()[1]}'s" for r in refs)
          + " | 1,000 threads: ms | slowdown | wall for /bin/true: ms |")
    print("|---" * (8 + len(refs)) + "|")
    for tool in tools:
        m, lo, hi = med(tool, "loop", "per_op_ns")
        c, clo, chi = med(tool, "loop", "per_op_cpu_ns")
        ratios = [f"{added(tool, 'per_op_cpu_ns') / added(r, 'per_op_cpu_ns'):.3f}" if tool != "untraced" else "-"
                  for r in refs]
        t, tlo, thi = med(tool, "threads", "elapsed_ns")
        w, wlo, whi = med(tool, "true", "wall_s")
        untraced = tool == "untraced"
        print(f"| {tool} | {m:.0f} ({lo:.0f}-{hi:.0f}) | {0 if untraced else added(tool, 'per_op_ns'):.0f} | "
              f"{c:.0f} ({clo:.0f}-{chi:.0f}) | {0 if untraced else added(tool, 'per_op_cpu_ns'):.0f} | "
              + "".join(f"{r} | " for r in ratios)
              + f"{t / 1e6:.2f} ({tlo / 1e6:.2f}-{thi / 1e6:.2f}) | {t / base_thr:.2f}x | "
              f"{w * 1e3:.1f} ({wlo * 1e3:.1f}-{whi * 1e3:.1f}) |")
    if args.json:
        Path(args.json).write_text(json.dumps({f"{k[0]}|{k[1]}": v for k, v in samples.items()}, indent=1))


if __name__ == "__main__":
    main()
