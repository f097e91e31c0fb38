"""Recorded runs of real machines (tests/fixtures/runs/README.md) and helpers the
report, compare, export and import tests share."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import cli

RUNS = Path(__file__).resolve().parent / "fixtures" / "runs"
AMD = RUNS / "amd-epyc-default.jsonl"  # record version 2, raw samples on every point
# record version 1, no samples: the Intel host's run as recorded (tests/fixtures/hosts/README.md)
INTEL_V1 = RUNS.parent / "hosts" / "intel-xeon-2vcpu" / "default-run.jsonl"


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_records(path: Path, recs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def imported(db: Path, path: Path, env: dict | None = None) -> str:
    """Import a file of records into db; the new run's id."""
    p = cli("import", str(path), "--db", str(db), env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().splitlines()[-1]


def one_line_error(proc: subprocess.CompletedProcess, code: int, needle: str) -> str:
    """Failed with ``code`` and said so in one line, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("perflab: "), proc.stderr
    assert needle in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]
