"""The example plug-in: loaded by path, its claim runs on perflab's engine and gives its
known outcome; its rule reaches every outcome; installed (a .dist-info with its entry
point on PYTHONPATH), perflab lists and runs it with no change to perflab."""

from __future__ import annotations

import importlib
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from perflab.core.claim import Curve, Evidence, Settings
from perflab.core.params import BUDGETS
from perflab.core.record import Outcome, Reason
from perflab.engine import runner

ROOT = Path(__file__).resolve().parent.parent
CPU = sorted(os.sched_getaffinity(0))[-1]


@pytest.fixture(scope="module")
def claims(request):
    sys.path.insert(0, str(ROOT))
    request.addfinalizer(lambda: sys.path.remove(str(ROOT)))
    return importlib.import_module("perflab_example_claims.claims")


def samples(ms: float, noise: float, seed: int = 1, n: int = 8) -> Curve:
    rng = random.Random(seed)
    return Curve("sleep", None, "ms", points={None: [ms * math.exp(rng.gauss(0, noise)) for _ in range(n)]})


@pytest.mark.parametrize("ms,noise,expected", [
    (6.1, 0.02, (Outcome.SUPPORTED, None)),   # 5 ms plus the process's start and exit
    (3.0, 0.02, (Outcome.REFUTED, None)),     # a sleep cut short
    (4.8, 0.005, (Outcome.INCONCLUSIVE, Reason.BETWEEN)),
    (5.0, 0.2, (Outcome.INCONCLUSIVE, Reason.NOISY)),
])
def test_the_rule_reaches_every_outcome(claims, ms, noise, expected):
    (claim,) = claims.CLAIMS
    d = claim.decide(Evidence({"sleep": samples(ms, noise)}, {}, 0.975, 400, random.Random(7)), claim.rule)
    assert (d.outcome, d.inconclusive) == expected, d


def test_the_claim_runs_on_perflabs_engine(claims):
    (claim,) = claims.CLAIMS
    for seed in (1, 2, 3):  # a failed A/A (a busy moment) is run again, as perflab's own live tests do
        settings = Settings(params={}, budget=BUDGETS["quick"], seed=seed, cpu=CPU, host={})
        v = runner.run_claim(claim, settings)
        if all(c.passed for c in v.controls):
            break
    assert v.outcome is Outcome.SUPPORTED and v.decision.value >= 5, v.summary


def test_installed_it_is_listed_and_run_like_perflabs_own(tmp_path):
    dist = tmp_path / "perflab_example_claims-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: perflab-example-claims\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[perflab.claims]\nexample = perflab_example_claims.claims\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def perflab(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "perflab", *args], capture_output=True, text=True, env=env,
                              timeout=300)

    listed = perflab("list", "example", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = map(json.loads, listed.stdout.splitlines())
    assert row["claim"] == "example.sleep-not-early" and row["kernel"] == "cmdtime" and row["runnable"]
    ran = perflab("run", "example.sleep-not-early", "--quick", "--json", "--seed", "1", "--db", str(tmp_path / "p.db"))
    assert ran.returncode == 0, ran.stderr
    rec = json.loads(ran.stdout)
    assert rec["outcome"] in ("supported", "inconclusive") and rec["decision"]["value"] >= 5, rec["summary"]
    # the next seed where its A/A failed and the run measured it again at its end
    seed = 2 if "first_attempt" in rec["evidence"] else 1
    assert rec["rerun"].startswith(f"perflab run example.sleep-not-early --seed {seed} --budget quick")
