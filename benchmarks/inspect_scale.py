"""How long `perflab inspect` takes on a big process, beside `ps -L` and psutil.

    python benchmarks/inspect_scale.py [--threads 10000] [--fds 19000] [--repeats 5]

The subject is subject_threads with 10,000 threads (stacks of 16, 24, 32 and 48 KiB in
turn) and 19,000 open fds of seven types (regular, pipe, socket, eventfd, epoll, timerfd,
signalfd); the hard RLIMIT_NOFILE must allow them. Every tool runs in a fresh process
(wall time from fork to exit, output to /dev/null) and the table gives the median, min
and max over the repeats, interleaved, plus the median CPU time (user + system, from
getrusage of the children): on a shared 2-vCPU machine the wall time follows the load,
the CPU time much less.

What each does differs, so read the table with the row's "reads" column:
  perflab inspect   all threads (stat, status, syscall), smaps (RSS/PSS per mapping,
                    classified), every fd (link, fdinfo, stat), kcmp groups for 6 resources
  ps -L -p PID      one line per thread (stat/status of every thread)
  psutil            Process.threads() + memory_maps(grouped=False) + open_files() +
                    num_fds() + num_ctx_switches() + net_connections(): its nearest
                    equivalent (no fd types other than regular files, no per-thread
                    switches, no stacks, no kcmp)
psutil is a benchmark-only dependency: pip install psutil.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from perflab.engine import process

PSUTIL_CODE = """
import sys, psutil
p = psutil.Process(int(sys.argv[1]))
t = p.threads(); m = p.memory_maps(grouped=False); f = p.open_files(); n = p.num_fds()
c = p.num_ctx_switches(); s = p.net_connections(kind="all")
print(len(t), len(m), len(f), n, len(s))
"""


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall s, CPU s = user + system of the tool and its children, from getrusage)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=10000)
    ap.add_argument("--fds", type=int, default=19000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()

    load = os.getloadavg()  # before the subject: its 10,000 threads exiting inflate it
    proc = subprocess.Popen(
        [str(process.kernel_path("subject_threads")), f"--threads={args.threads}", "--stack-kib=16,24,32,48",
         f"--fds={args.fds}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline()
    if not line:
        print(f"subject_threads failed: {proc.stderr.read().decode().strip()}", file=sys.stderr)
        return 1
    pid = json.loads(line)["pid"]
    try:
        tasks = len(os.listdir(f"/proc/{pid}/task"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        perflab = [sys.executable, "-m", "perflab", "inspect", str(pid)]
        tools = {
            "perflab inspect --json": perflab + ["--json"],
            "perflab inspect (terminal)": perflab,
            "ps -L -p PID": ["ps", "-L", "-p", str(pid)],
        }
        if importlib.util.find_spec("psutil"):  # a benchmark-only dependency
            tools["psutil (nearest equivalent)"] = [sys.executable, "-c", PSUTIL_CODE, str(pid)]
        else:
            print("psutil is not installed (pip install psutil): its row is left out", file=sys.stderr)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in tools}
        for _ in range(args.repeats):  # interleaved, so drifting load hits every tool alike
            for name, argv in tools.items():
                times[name].append(timed(argv))
        inproc = json.loads(subprocess.run(perflab + ["--json"], capture_output=True, text=True,
                                           check=True).stdout)["elapsed_s"]
    finally:
        proc.stdin.close()
        proc.wait()

    rows = {}
    for name, v in times.items():
        walls, cpus = [w for w, _ in v], [c for _, c in v]
        rows[name] = {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
                      "cpu_median_s": statistics.median(cpus)}
    if args.json:
        print(json.dumps({"tasks": tasks, "fds": fds, "repeats": args.repeats, "load_avg_before": load,
                          "perflab_collect_s": inproc, "tools": rows}))
        return 0
    print(f"subject: {tasks} tasks, {fds} fds; {args.repeats} repeats; load average before {load[0]:.2f}; "
          f"perflab's own reading time (elapsed_s) {inproc:.2f} s\n")
    print("| tool | wall median s | wall min s | wall max s | CPU median s (user+sys) |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['median_s']:.2f} | {r['min_s']:.2f} | {r['max_s']:.2f} | {r['cpu_median_s']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
