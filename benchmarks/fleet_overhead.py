"""What the fleet costs: dispatch overhead per host, and N hosts against one.

    python benchmarks/fleet_overhead.py [--repeats 5] [--claim clone.thread-flags]
                                        [--scaling-claim space.syscall-in-context]

Starts a Dask scheduler and one worker per CPU on loopback (tests/loopback.py: the
processes the fleet's tests start, each worker pinned to its own CPU with taskset(1), so
that hosts on one machine do not share a CPU: perflab pins its kernels to the last CPU it
may use, which is then that worker's own).

- overhead: ``perflab fleet run CLAIM --quick --hosts w0`` against ``perflab run CLAIM
  --quick`` pinned to the same CPU, both whole commands (interpreter start included),
  interleaved, ``--repeats`` times each; the overhead is the median of the paired
  differences (fleet minus local). The issue's budget: 1 s or less per host.
- scaling: ``perflab fleet run SCALING_CLAIM --quick`` on 1, then 2... N workers, the
  same repeats; the budget: N hosts take about the wall time of one, up to the cores.

Prints one JSON object per measurement on stderr and the summary as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from loopback import Cluster  # noqa: E402 - the fleet tests' loopback cluster


def timed(argv: list[str], db: Path) -> tuple[float, list[dict]]:
    t0 = time.monotonic()
    p = subprocess.run([*argv, "--json", "--db", str(db)], capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return wall, [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--claim", default="clone.thread-flags", help="the quick claim of the overhead measurement")
    ap.add_argument("--scaling-claim", default="space.syscall-in-context")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))[:args.workers]
    perflab = [sys.executable, "-m", "perflab"]
    with tempfile.TemporaryDirectory(prefix="perflab-fleet-bench-") as tmp:
        work = Path(tmp)
        cluster = Cluster(work)
        try:
            cluster.scheduler()
            names = [f"w{i}" for i in range(len(cpus))]
            for name, cpu in zip(names, cpus):
                cluster.worker(name, cpus=str(cpu))
            cluster.wait_for(names)
            fleet = [*perflab, "fleet", "run", "--scheduler", cluster.address, "--quick"]
            local = ["taskset", "-c", str(cpus[0]), *perflab, "run", "--quick"]
            diffs, fleet_walls, local_walls = [], [], []
            for r in range(args.repeats):
                pair = {}
                for kind in (("local", "fleet") if r % 2 == 0 else ("fleet", "local")):
                    argv = [*(local if kind == "local" else fleet + ["--hosts", names[0]]), args.claim]
                    pair[kind], recs = timed(argv, work / f"{kind}.db")
                    print(json.dumps({"measure": "overhead", "kind": kind, "wall_s": round(pair[kind], 3),
                                      "outcomes": [x["outcome"] for x in recs]}), file=sys.stderr)
                fleet_walls.append(pair["fleet"])
                local_walls.append(pair["local"])
                diffs.append(pair["fleet"] - pair["local"])
            scaling = {}
            for n in range(1, len(names) + 1):
                walls = []
                for _ in range(args.repeats):
                    wall, recs = timed([*fleet, "--hosts", ",".join(names[:n]), args.scaling_claim], work / "s.db")
                    walls.append(wall)
                    print(json.dumps({"measure": "scaling", "hosts": n, "wall_s": round(wall, 3),
                                      "outcomes": [x["outcome"] for x in recs]}), file=sys.stderr)
                scaling[n] = walls
        finally:
            cluster.stop()
    one = statistics.median(scaling[1])
    print(json.dumps({
        "host": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                 "kernel": platform.release(), "python": platform.python_version(), "load_avg": os.getloadavg()},
        "repeats": args.repeats,
        "overhead": {"claim": args.claim, "local_median_s": round(statistics.median(local_walls), 3),
                     "fleet_median_s": round(statistics.median(fleet_walls), 3),
                     "overhead_median_s": round(statistics.median(diffs), 3),
                     "overhead_min_s": round(min(diffs), 3), "overhead_max_s": round(max(diffs), 3)},
        "scaling": {"claim": args.scaling_claim,
                    "hosts": {n: {"median_s": round(statistics.median(w), 3), "min_s": round(min(w), 3),
                                  "max_s": round(max(w), 3), "vs_one": round(statistics.median(w) / one, 3)}
                              for n, w in scaling.items()}},
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
