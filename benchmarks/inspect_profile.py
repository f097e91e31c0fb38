"""Where `perflab inspect --json` spends its time on a big process, phase by phase, on
the Python path and on the procsnap path, in one process, interleaved.

    python benchmarks/inspect_profile.py [--threads 10000] [--fds 19000] [--repeats 5]

Python path phases (observe/procfs/snapshot.py and fdtable.py, called one by one): the
threads (task/TID/{stat,status,syscall}), smaps read and parsed, the classification and
rows of the address space, the fd table, kcmp grouping (sharing_of), json.dumps of the
whole. procsnap path: the reader's run with the parse of its output here (wall, and the
reader's CPU: the kernel's work reading the files, its parsing and formatting), kcmp
grouping with its presets, and the whole of collect_json. Start-up is apart:
`python -X importtime -m perflab inspect PID --json` shows the imports.

Each phase's wall time and this process's CPU time (time.process_time) are medians over
--repeats; the subject is benchmarks/inspect_scale.py's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from perflab.observe.procfs import fdtable, native, parse, parse_maps, snapshot
from perflab.observe.procfs.read import ProcDir
from perflab.observe.procfs.sharing import KcmpState, sharing_of

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inspect_scale import start_subject, stop_subject  # noqa: E402  (the same subject)


def clocked(phases: dict, name: str, fn, *args, **kw):
    c0, w0 = time.process_time(), time.perf_counter()
    ru0 = os.times()
    out = fn(*args, **kw)
    ru1 = os.times()
    phases.setdefault(name, []).append((time.perf_counter() - w0, time.process_time() - c0,
                                        (ru1.children_user + ru1.children_system) - (ru0.children_user + ru0.children_system)))
    return out


def python_path(pid: int, phases: dict) -> None:
    pd = ProcDir(pid)
    try:
        st = parse.parse_stat(pd.read("stat"))
        status = parse.parse_status(pd.read("status"))
        ticks = os.sysconf("SC_CLK_TCK")
        process = snapshot._process(pd, st, status, ticks, False, False)
        threads, sps, _ = clocked(phases, "python: threads (30,000 files)", snapshot._threads, pd, st, ticks, False)
        raw = clocked(phases, "python: smaps read", pd.read, "smaps")
        clocked(phases, "python: smaps parse", parse_maps.parse_smaps, raw)
        space = clocked(phases, "python: address space (read, parse, classify, rows)", snapshot._address_space,
                        pd, pid, threads, sps, process["exe"])
        fds = clocked(phases, "python: fd table (in this process)", fdtable.read_fds, pd)
        live = [t["tid"] for t in threads if t["state"] not in "ZX"]
        with KcmpState("/proc") as ks:
            shares = clocked(phases, "python: kcmp grouping (ctypes)", sharing_of, pd, st, live, False, ks)
        out = {"process": process, "address_space": space, "fds": fds, "threads": threads, "sharing": shares}
        clocked(phases, "python: json.dumps", json.dumps, out, check_circular=False, separators=(",", ":"))
    finally:
        pd.close()


def native_path(pid: int, phases: dict) -> None:
    pd = ProcDir(pid)
    try:
        st = parse.parse_stat(pd.read("stat"))
        with KcmpState("/proc") as ks:
            job = native.start(pd, st.ppid, True)
            got = clocked(phases, "procsnap: its run, and the parse of its output here", job.result)
            kinds = [kind for kind, _ in snapshot.RESOURCES.values()]
            ks.kc.presets = {kinds[res]: preset for res, preset in got.kcmp.items()}
            live = [t for t, s in zip(got.tids, got.states) if s not in "ZX"]
            clocked(phases, "procsnap: kcmp grouping (presets)", sharing_of, pd, st, live, False, ks)
    finally:
        pd.close()
    clocked(phases, "procsnap: the whole collect_json (json_chunks)", snapshot.json_chunks, pid)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=10000)
    ap.add_argument("--fds", type=int, default=19000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    proc, pid = start_subject(args.threads, args.fds)
    if proc is None:
        print(f"subject_threads failed: {pid}", file=sys.stderr)
        return 1
    phases: dict[str, list] = {}
    try:
        for _ in range(args.repeats):
            python_path(pid, phases)
            native_path(pid, phases)
    finally:
        stop_subject(proc)
    print(f"subject: {args.threads} threads, {args.fds} fds; {args.repeats} repeats, medians\n")
    print("| phase | wall ms | CPU ms, this process | CPU ms, children |")
    print("|---|---:|---:|---:|")
    for name, v in phases.items():
        print(f"| {name} | {statistics.median(w for w, _, _ in v) * 1e3:.0f} | "
              f"{statistics.median(c for _, c, _ in v) * 1e3:.0f} | {statistics.median(k for _, _, k in v) * 1e3:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
