"""Wall time and size of `perflab report` and `perflab compare` on full default runs.

    python benchmarks/report_speed.py [--repeats 3]

Budgets (issue 12): the report of a full default run writes in <= 10 s and is <= 2 MB;
compare of two full runs takes <= 2 s. The full run is the AMD machine's recorded default
run (tests/fixtures/runs/amd-epyc-default.jsonl: 33 claims, raw samples on every point),
imported into a throw-away database. Compare is timed on two pairs: that run against a
second run of the same machine with raw samples (a copy of it with every sample scaled by
lognormal noise, sigma 3%, seeded: the bootstrap runs on every shared point, the costly
case), and against the Intel machine's default run (version 1, no samples: ratios only).
Each figure is the median wall time of the whole command, Python's start included.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AMD = ROOT / "tests" / "fixtures" / "runs" / "amd-epyc-default.jsonl"
INTEL = ROOT / "tests" / "fixtures" / "hosts" / "intel-xeon-2vcpu" / "default-run.jsonl"
BUDGET = {"report_s": 10.0, "report_bytes": 2_000_000, "compare_s": 2.0}


def perflab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "perflab", *args], capture_output=True, text=True, check=True)


def timed(*args: str, repeats: int) -> list[float]:
    walls = []
    for _ in range(repeats):
        t0 = time.monotonic()
        perflab(*args)
        walls.append(time.monotonic() - t0)
    return walls


def second_run(path: Path, out: Path) -> Path:
    """The same machine's run again: each raw sample times exp(N(0, 0.03)), medians and
    CIs recomputed from them as the record keeps them (median, min..max as the interval)."""
    rng = random.Random(12)
    lines = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        rec["run_id"] = "20261207T120000-b0b0"
        for s in rec["series"]:
            for p in s["points"]:
                if p.get("samples"):
                    p["samples"] = [v * math.exp(rng.gauss(0, 0.03)) for v in p["samples"]]
                    p["median"] = statistics.median(p["samples"])
                    p["ci"] = [min(p["samples"]), max(p["samples"])]
        lines.append(json.dumps(rec))
    out.write_text("\n".join(lines) + "\n")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "b.db")
        run = perflab("import", str(AMD), "--db", db).stdout.strip()
        twin = perflab("import", str(second_run(AMD, Path(tmp) / "twin.jsonl")), "--db", db).stdout.strip()
        html = Path(tmp) / "report.html"
        report = timed("report", run, "-o", str(html), "--db", db, repeats=args.repeats)
        size = html.stat().st_size
        md = timed("report", run, "--format", "md", "-o", str(Path(tmp) / "report.md"), "--db", db, repeats=1)
        same = timed("compare", run, twin, "--db", db, repeats=args.repeats)
        across = timed("compare", str(INTEL), run, "--db", db, repeats=args.repeats)
        moved = json.loads(perflab("compare", run, twin, "--json", "--db", db).stdout)["counts"]
    result = {
        "report_html_s": round(statistics.median(report), 2), "report_html_all_s": [round(w, 2) for w in report],
        "report_html_bytes": size, "report_md_s": round(md[0], 2),
        "compare_same_machine_s": round(statistics.median(same), 2),
        "compare_same_machine_counts": moved,
        "compare_two_machines_s": round(statistics.median(across), 2),
        "within_budget": statistics.median(report) <= BUDGET["report_s"] and size <= BUDGET["report_bytes"]
        and max(statistics.median(same), statistics.median(across)) <= BUDGET["compare_s"],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
