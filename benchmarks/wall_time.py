"""Wall time of `perflab run io space.syscall-in-context` at the quick and default budgets.

    python benchmarks/wall_time.py [--repeats 3] [--budgets quick default]

Each run uses a throw-away database; the figure is the median over the repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(budget: str, selectors: list[str]) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "perflab", "run", *selectors, "--budget", budget, "--json",
                            "--db", str(Path(tmp) / "b.db")], capture_output=True, text=True, check=True)
        wall = time.monotonic() - t0
    outcomes = {r["claim"]: r["outcome"] for r in map(json.loads, p.stdout.splitlines())}
    return wall, outcomes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budgets", nargs="+", default=["quick", "default"])
    ap.add_argument("--selectors", nargs="+", default=["io", "space.syscall-in-context"])
    args = ap.parse_args()
    for budget in args.budgets:
        walls = []
        for _ in range(args.repeats):
            wall, outcomes = one(budget, args.selectors)
            walls.append(wall)
            print(json.dumps({"budget": budget, "wall_s": round(wall, 2), "outcomes": outcomes}), file=sys.stderr)
        print(json.dumps({"budget": budget, "selectors": args.selectors, "repeats": args.repeats,
                          "median_wall_s": round(statistics.median(walls), 2),
                          "min_wall_s": round(min(walls), 2), "max_wall_s": round(max(walls), 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
