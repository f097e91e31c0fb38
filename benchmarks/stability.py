"""Steadiness of the verdicts (issue 11, item 8): N runs in a row of the same claims at
the same budget, each with its own seed and a throw-away database, then per claim the
verdicts seen, how often the A/A failed at the first attempt (and the claim was measured
again at the end of the run), and the spread of its decision quantity.

    python benchmarks/stability.py                  # 10 quick runs of every claim
    python benchmarks/stability.py --runs 3 io      # 3 quick runs of the io.* claims
    python benchmarks/stability.py --budget default --json > stability.json

The target (issue 11): every claim the same verdict in 10 of 10 runs on a quiet 2-vCPU
host. A claim that flips is listed with the verdicts it gave; fix its cause (plan,
samples, statistic), not its threshold. Prints a table on stdout (or JSON with --json);
progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

PERFLAB = Path(sys.executable).parent / "perflab"


def one_run(selectors: list[str], budget: str, seed: int, db: Path) -> tuple[list[dict], float]:
    argv = [str(PERFLAB), "run", *selectors, "--budget", budget, "--seed", str(seed), "--json", "--db", str(db)]
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"stability: run {seed} failed ({p.returncode}): {p.stderr.strip().splitlines()[-1:]}")
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()], wall


def verdict(rec: dict) -> str:
    return f"{rec['outcome']} ({rec['reason']})" if rec.get("reason") else rec["outcome"]


def summarise(runs: list[list[dict]]) -> dict[str, dict]:
    by_claim: dict[str, list[dict]] = defaultdict(list)
    for recs in runs:
        for rec in recs:
            by_claim[rec["claim"]].append(rec)
    out = {}
    for cid, recs in sorted(by_claim.items()):
        seen = Counter(verdict(r) for r in recs)
        values = [r["decision"]["value"] for r in recs
                  if r.get("decision") and isinstance(r["decision"].get("value"), (int, float))]
        spread = None
        if values:
            med = statistics.median(values)
            spread = {"median": med, "min": min(values), "max": max(values),
                      "relative": (max(values) - min(values)) / abs(med) if med else None,
                      "quantity": recs[0]["decision"].get("quantity", "")}
        out[cid] = {
            "runs": len(recs),
            "verdicts": dict(seen.most_common()),
            "steady": len(seen) == 1,
            "aa_failed_first": sum(1 for r in recs if "first_attempt" in r.get("evidence", {})),
            "duration_s": statistics.median(r.get("duration_s", 0.0) for r in recs),
            "decision": spread,
        }
    return out


def table(summary: dict[str, dict], walls: list[float], args) -> str:
    lines = [f"{len(walls)} {args.budget} runs; wall time median {statistics.median(walls):.1f} s "
             f"({min(walls):.1f}-{max(walls):.1f} s)", ""]
    lines.append(f"{'claim':34} {'verdicts':44} {'A/A rerun':>9} {'time s':>6}  decision quantity: median (min..max, spread)")
    for cid, s in summary.items():
        seen = ", ".join(f"{v} {n}/{s['runs']}" for v, n in s["verdicts"].items())
        d = s["decision"]
        dq = "-" if d is None else (f"{d['median']:.3g} ({d['min']:.3g}..{d['max']:.3g}"
                                    + (f", {d['relative']:.0%})" if d["relative"] is not None else ")"))
        mark = " " if s["steady"] else "*"
        lines.append(f"{mark}{cid:33} {seen:44} {s['aa_failed_first']:>9} {s['duration_s']:>6.1f}  {dq}")
    steady = sum(1 for s in summary.values() if s["steady"])
    lines += ["", f"{steady} of {len(summary)} claims gave one verdict in every run (* marks the others)"]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("selectors", nargs="*", help="claims or topics (default: all)")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--budget", default="quick")
    ap.add_argument("--seed", type=int, default=1000, help="the first run's seed; run i uses seed + i")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", metavar="DIR", help="also write each run's records to DIR/runN.jsonl")
    args = ap.parse_args()
    runs, walls = [], []
    with tempfile.TemporaryDirectory(prefix="perflab-stability-") as tmp:
        for i in range(args.runs):
            recs, wall = one_run(args.selectors, args.budget, args.seed + i, Path(tmp) / f"run{i}.db")
            runs.append(recs)
            if args.keep:
                Path(args.keep).mkdir(parents=True, exist_ok=True)
                (Path(args.keep) / f"run{i}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
            walls.append(wall)
            counts = Counter(r["outcome"] for r in recs)
            print(f"stability: run {i + 1}/{args.runs} in {wall:.1f} s: "
                  + ", ".join(f"{n} {o}" for o, n in counts.most_common()), file=sys.stderr, flush=True)
    summary = summarise(runs)
    host = runs[0][0]["host"] if runs and runs[0] else {}
    if args.json:
        print(json.dumps({"budget": args.budget, "runs": args.runs, "wall_s": walls, "host": host,
                          "claims": summary}, indent=1))
    else:
        print(f"host: {host.get('cpu_model', '?')}, {host.get('cores_online', os.cpu_count())} CPUs, kernel {host.get('kernel', '?')}")
        print(table(summary, walls, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
