"""Accuracy: perflab's null system call against `perf bench syscall basic`.

Both are pinned to the same CPU and alternated (perflab, perf, perflab, perf, ...) so
that drift hits both alike; the figure is the median of the per-alternation ratios.

    python benchmarks/syscall_accuracy.py [--rounds 7] [--cpu 1]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys

from perflab.engine import process


def perflab_ns(cpu: int) -> float:
    rec = process.run_kernel(["space", "--variant=syscall-getppid", f"--cpu={cpu}", "--batches=7"])
    return statistics.median(rec["per_op_ns"])


def perf_bench_ns(cpu: int) -> float:
    out = subprocess.run(["taskset", "-c", str(cpu), "perf", "bench", "syscall", "basic"],
                         capture_output=True, text=True, check=True).stdout
    usecs = float(re.search(r"([\d.]+)\s+usecs/op", out).group(1))
    return usecs * 1000.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--cpu", type=int, default=max(__import__("os").sched_getaffinity(0)))
    args = ap.parse_args()
    if not shutil.which("perf"):
        print("perf not installed: apt install linux-perf", file=sys.stderr)
        return 1
    rows = []
    for i in range(args.rounds):
        ours, theirs = perflab_ns(args.cpu), perf_bench_ns(args.cpu)
        rows.append({"round": i, "perflab_ns": round(ours, 1), "perf_bench_ns": round(theirs, 1),
                     "ratio": round(ours / theirs, 3)})
        print(json.dumps(rows[-1]), file=sys.stderr)
    summary = {
        "cpu": args.cpu,
        "rounds": args.rounds,
        "perflab_median_ns": statistics.median(r["perflab_ns"] for r in rows),
        "perf_bench_median_ns": statistics.median(r["perf_bench_ns"] for r in rows),
        "median_ratio": statistics.median(r["ratio"] for r in rows),
    }
    summary["within_10_percent"] = abs(summary["median_ratio"] - 1) <= 0.10
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
