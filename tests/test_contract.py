"""The contract every registered claim keeps, checked over all of them automatically."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from perflab.engine import process
from perflab.engine import registry
from perflab.cli.main import build_parser
from perflab.core.model import Outcome

CLAIMS = registry.all_claims()
IDS = [c.id for c in CLAIMS]
HOST_FACTS = {"cpu_model", "cores_online", "caches", "kernel", "glibc", "virtualization", "root",
              "capabilities", "perf_event_paranoid", "thp", "clocksource", "rlimit_nofile"}


@pytest.mark.parametrize("claim", CLAIMS, ids=IDS)
def test_definition(claim):
    assert re.fullmatch(r"[a-z]+\.[a-z0-9-]+", claim.id)
    assert claim.statement and claim.seed_point and len(claim.mechanism) > 100
    assert claim.thresholds, "thresholds are part of the claim (CLAIMS.md)"
    assert process.kernel_path(claim.kernel).exists()
    for p in claim.params:
        assert p.lo <= p.default <= p.hi and p.help
    assert claim.source.endswith(".py")
    package = Path(registry.__file__).resolve().parent.parent
    for rel in claim.sources:
        assert (package / rel).is_file(), f"{claim.id}: source {rel} missing"
    assert len(registry.source_hash(claim)) == 16


@pytest.mark.live
@pytest.mark.parametrize("claim", CLAIMS, ids=IDS)
def test_record(claim, quick_records):
    rec = quick_records[claim.id]
    assert rec["outcome"] in {o.value for o in Outcome}
    assert rec["summary"] and rec["explanation"] == claim.mechanism
    assert HOST_FACTS <= set(rec["host"])
    assert rec["run_id"] and rec["duration_s"] >= 0 and rec["source_hash"] == registry.source_hash(claim)
    # the rerun command parses and reproduces claim, seed and budget
    args = build_parser().parse_args(rec["rerun"].split()[1:])
    assert args.selectors == [claim.id] and args.seed == 12345 and args.budget == "quick"
    if rec["outcome"] in ("skipped", "error"):
        return
    dec = rec["decision"]
    assert dec["quantity"] and dec["thresholds"]
    for s in rec["series"]:
        assert s["name"] and s["unit"]
        for pt in s["points"]:
            assert set(pt) == {"x", "median", "ci", "n"} and pt["n"] >= 1
            assert pt["ci"][0] <= pt["median"] <= pt["ci"][1]
    for c in rec["controls"].values():
        assert c["kind"] in ("negative", "positive") and c["passed"] in (True, False, None)
    if rec["outcome"] in ("supported", "refuted"):
        assert all(c["passed"] for c in rec["controls"].values()), "a decisive verdict needs passing controls"
        assert dec["outcome"] == rec["outcome"]
