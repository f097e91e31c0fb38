"""How long `perflab inspect` takes on a big process, beside `ps -L` and psutil; and how
its time grows with the process.

    python benchmarks/inspect_scale.py [--threads 10000] [--fds 19000] [--repeats 9]
        [--also LABEL=PYTHONPATH ...] [--json]
    python benchmarks/inspect_scale.py --scale 1000,10000,30000 [--scale-fds 1000,19000]

The subject is subject_threads with N threads (stacks of 16, 24, 32 and 48 KiB in turn)
and M open fds of seven types (regular, pipe, socket, eventfd, epoll, timerfd,
signalfd); the hard RLIMIT_NOFILE must allow them. Every tool runs in a fresh process
(wall time from fork to exit, output to /dev/null), interleaved, so drifting load hits
every tool alike; the table gives the median, min and max wall time over the repeats,
the median CPU time (user + system of the tool and what it waited for, from wait4(2))
and the largest RSS (the tool's, or a child's such as procsnap: wait4 reports the
larger). On a shared 2-vCPU machine the wall time follows the load, the CPU time much
less.

What each does differs, so read the table with the row's "reads" column:
  perflab inspect   all threads (stat, status, syscall), smaps (RSS/PSS per mapping,
                    classified), every fd (link, fdinfo, stat), kcmp groups for 6 resources
  ps -L -p PID      one line per thread (stat/status of every thread)
  psutil            Process.threads() + memory_maps(grouped=False) + open_files() +
                    num_fds() + num_ctx_switches() + net_connections(): its nearest
                    equivalent (no fd types other than regular files, no per-thread
                    switches, no stacks, no kcmp)
psutil is a benchmark-only dependency: pip install psutil.

--also LABEL=PYTHONPATH adds "perflab inspect --json (LABEL)" run with that PYTHONPATH
first (another checkout's src/, e.g. `git archive main src | tar -x -C /tmp/main`), in
the same interleaved run. The perflab packages' .py files are byte-compiled first
(compileall, as `pip install .` does), so no run pays for compiling its modules.

--scale runs perflab inspect --json and the terminal view, ps -L and psutil on a subject
of every size (threads x fds), and fits perflab's median wall and CPU time to
a + b * tasks + c * fds (least squares); a size the host refuses (pid_max, threads-max,
memory, RLIMIT_NOFILE) is reported with the subject's own reason and left out.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from perflab.engine import process

PSUTIL_CODE = """
import sys, psutil
p = psutil.Process(int(sys.argv[1]))
t = p.threads(); m = p.memory_maps(grouped=False); f = p.open_files(); n = p.num_fds()
c = p.num_ctx_switches(); s = p.net_connections(kind="all")
print(len(t), len(m), len(f), n, len(s))
"""


def timed(argv: list[str], env: dict | None = None) -> tuple[float, float, int]:
    """(wall s, CPU s, max RSS KiB) of one run: wait4(2) of the tool, whose rusage holds
    what it and the children it waited for used (ru_maxrss: the largest of them)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = proc.stderr.read()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def start_subject(threads: int, fds: int) -> tuple[subprocess.Popen | None, int | str]:
    """The subject and its PID, or None and why it could not start here."""
    proc = subprocess.Popen(
        [str(process.kernel_path("subject_threads")), f"--threads={threads}", "--stack-kib=16,24,32,48",
         f"--fds={fds}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline()
    if not line:
        reason = proc.stderr.read().decode(errors="replace").strip()
        proc.wait()
        return None, reason or f"exit status {proc.returncode}"
    return proc, json.loads(line)["pid"]


def stop_subject(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    proc.wait()


def tools_for(pid: int, also: list[tuple[str, str]]) -> dict[str, tuple[list[str], dict | None]]:
    perflab = [sys.executable, "-m", "perflab", "inspect", str(pid)]
    tools: dict[str, tuple[list[str], dict | None]] = {
        "perflab inspect --json": (perflab + ["--json"], None),
        "perflab inspect (terminal)": (perflab, None),
    }
    for label, path in also:
        env = {**os.environ, "PYTHONPATH": path + os.pathsep + os.environ.get("PYTHONPATH", "")}
        tools[f"perflab inspect --json ({label})"] = (perflab + ["--json"], env)
        tools[f"perflab inspect (terminal, {label})"] = (perflab, env)
    tools["ps -L -p PID"] = (["ps", "-L", "-p", str(pid)], None)
    if importlib.util.find_spec("psutil"):  # a benchmark-only dependency
        tools["psutil (nearest equivalent)"] = ([sys.executable, "-c", PSUTIL_CODE, str(pid)], None)
    return tools


def measure(tools: dict, repeats: int) -> dict[str, dict]:
    times: dict[str, list[tuple[float, float, int]]] = {name: [] for name in tools}
    for _ in range(repeats):  # interleaved, so drifting load hits every tool alike
        for name, (argv, env) in tools.items():
            times[name].append(timed(argv, env))
    rows = {}
    for name, v in times.items():
        walls = [w for w, _, _ in v]
        rows[name] = {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
                      "cpu_median_s": statistics.median(c for _, c, _ in v),
                      "max_rss_mib": max(r for _, _, r in v) / 1024}
    return rows


def fit(points: list[tuple[int, int, float]]) -> tuple[float, float, float]:
    """Least squares a + b * tasks + c * fds through (tasks, fds, seconds): the normal
    equations, solved by Gaussian elimination (three unknowns, no numpy needed)."""
    xs = [(1.0, float(t), float(f)) for t, f, _ in points]
    ys = [y for _, _, y in points]
    m = [[sum(x[i] * x[j] for x in xs) for j in range(3)] + [sum(x[i] * y for x, y in zip(xs, ys))]
         for i in range(3)]
    for i in range(3):
        p = max(range(i, 3), key=lambda r: abs(m[r][i]))
        m[i], m[p] = m[p], m[i]
        for r in range(3):
            if r != i:
                k = m[r][i] / m[i][i]
                m[r] = [a - k * b for a, b in zip(m[r], m[i])]
    return tuple(m[i][3] / m[i][i] for i in range(3))


def compile_packages(paths: list[str]) -> None:
    """Byte-compile perflab as `pip install .` does (here PYTHONDONTWRITEBYTECODE may be
    set: then every run would compile every module it imports again)."""
    import perflab

    for root in [str(Path(perflab.__file__).parent), *(os.path.join(p, "perflab") for p in paths)]:
        compileall.compile_dir(root, quiet=1)


def print_rows(rows: dict) -> None:
    print("| tool | wall median s | wall min s | wall max s | CPU median s (user+sys) | max RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['median_s']:.2f} | {r['min_s']:.2f} | {r['max_s']:.2f} | "
              f"{r['cpu_median_s']:.2f} | {r['max_rss_mib']:.0f} |")


def one_size(args, also) -> int:
    load = os.getloadavg()  # before the subject: its threads exiting inflate it
    proc, pid = start_subject(args.threads, args.fds)
    if proc is None:
        print(f"subject_threads failed: {pid}", file=sys.stderr)
        return 1
    try:
        tasks = len(os.listdir(f"/proc/{pid}/task"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        tools = tools_for(pid, also)
        if not any(name.startswith("psutil") for name in tools):
            print("psutil is not installed (pip install psutil): its row is left out", file=sys.stderr)
        rows = measure(tools, args.repeats)
        inproc = json.loads(subprocess.run(tools["perflab inspect --json"][0], capture_output=True, text=True,
                                           check=True).stdout)["elapsed_s"]
    finally:
        stop_subject(proc)
    if args.json:
        print(json.dumps({"tasks": tasks, "fds": fds, "repeats": args.repeats, "load_avg_before": load,
                          "perflab_collect_s": inproc, "tools": rows}))
        return 0
    print(f"subject: {tasks} tasks, {fds} fds; {args.repeats} repeats; load average before {load[0]:.2f}; "
          f"perflab's own reading time (elapsed_s) {inproc:.2f} s\n")
    print_rows(rows)
    return 0


def scale(args, also) -> int:
    sizes = [(int(t), int(f)) for t in args.scale.split(",") for f in args.scale_fds.split(",")]
    points, refused, results = [], [], []
    for threads, nfds in sizes:
        proc, pid = start_subject(threads, nfds)
        if proc is None:
            refused.append({"threads": threads, "fds": nfds, "reason": pid})
            print(f"{threads} threads, {nfds} fds: refused here: {pid}", file=sys.stderr)
            continue
        try:
            tasks = len(os.listdir(f"/proc/{pid}/task"))
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            rows = measure(tools_for(pid, also), args.repeats)
        finally:
            stop_subject(proc)
        results.append({"tasks": tasks, "fds": fds, "tools": rows})
        points.append((tasks, fds, rows["perflab inspect --json"]))
        print(f"{tasks} tasks, {fds} fds: perflab --json {rows['perflab inspect --json']['median_s']:.3f} s",
              file=sys.stderr)
    out = {"repeats": args.repeats, "sizes": results, "refused": refused, "fit": {}}
    if len(points) >= 3:
        for key in ("median_s", "cpu_median_s"):
            a, b, c = fit([(t, f, r[key]) for t, f, r in points])
            worst = max(abs(r[key] - (a + b * t + c * f)) / r[key] for t, f, r in points)
            out["fit"][key] = {"a_s": a, "per_task_us": b * 1e6, "per_fd_us": c * 1e6, "worst_residual": worst}
    if args.json:
        print(json.dumps(out))
        return 0
    names = list(results[0]["tools"]) if results else []
    print("| tasks | fds | " + " | ".join(f"{n}: wall s (CPU s)" for n in names) + " |")
    print("|---:|---:|" + "---:|" * len(names))
    for r in results:
        print(f"| {r['tasks']} | {r['fds']} | " + " | ".join(
            f"{r['tools'][n]['median_s']:.3f} ({r['tools'][n]['cpu_median_s']:.3f})" for n in names) + " |")
    for key, f in out["fit"].items():
        print(f"\nperflab inspect --json, {key}: {f['a_s'] * 1e3:.1f} ms + {f['per_task_us']:.1f} us x tasks + "
              f"{f['per_fd_us']:.1f} us x fds (largest residual {f['worst_residual']:.0%})")
    for r in refused:
        print(f"\nrefused here: {r['threads']} threads, {r['fds']} fds: {r['reason']}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=10000)
    ap.add_argument("--fds", type=int, default=19000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--also", action="append", default=[], metavar="LABEL=PYTHONPATH",
                    help="also perflab from another source tree (repeatable)")
    ap.add_argument("--scale", metavar="N,N,...", help="thread counts: the scale run")
    ap.add_argument("--scale-fds", default="1000,19000", metavar="M,M,...", help="fd counts of the scale run")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()
    also = [tuple(a.split("=", 1)) for a in args.also]
    if any(len(a) != 2 or not os.path.isdir(a[1]) for a in also):
        ap.error("--also takes LABEL=PYTHONPATH, a directory")
    compile_packages([p for _, p in also])
    return scale(args, also) if args.scale else one_size(args, also)


if __name__ == "__main__":
    sys.exit(main())
