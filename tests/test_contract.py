"""The contract every registered claim keeps, checked over all of them automatically."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from perflab.cli.main import build_parser
from perflab.core.record import Outcome, Verdict
from perflab.core.rule import Rule
from perflab.core.schema import SCHEMA
from perflab.engine import process, provenance, registry

CLAIMS = registry.all_claims()
IDS = [c.id for c in CLAIMS]
HOST_FACTS = {"cpu_model", "cores_online", "caches", "kernel", "glibc", "virtualization", "root",
              "capabilities", "perf_event_paranoid", "thp", "clocksource", "rlimit_nofile", "mem_available_bytes"}


@pytest.mark.parametrize("claim", CLAIMS, ids=IDS)
def test_definition(claim):
    assert re.fullmatch(r"[a-z]+\.[a-z0-9-]+", claim.id)
    assert claim.statement and claim.seed_point and len(claim.mechanism) > 100
    assert isinstance(claim.rule, Rule) and claim.rule.version >= 1 and claim.rule.reason
    th = claim.thresholds
    assert th["supported"] and th["refuted"], "thresholds are part of the claim (CLAIMS.md)"
    assert process.kernel_path(claim.kernel).exists()
    for p in claim.params:
        assert p.lo <= p.default <= p.hi and p.help
    assert claim.source.endswith(".py")
    package = Path(registry.__file__).resolve().parent.parent
    for rel in claim.sources:
        assert (package / rel).is_file() or process.kernel_path(rel).exists(), f"{claim.id}: source {rel} missing"
    assert len(provenance.source_hash(claim)) == 16
    json.dumps(claim.rule.describe())  # the rule as data is plain JSON (perflab list --json)


@pytest.mark.live
@pytest.mark.parametrize("claim", CLAIMS, ids=IDS)
def test_record(claim, quick_records):
    jsonschema = pytest.importorskip("jsonschema")
    rec = quick_records[claim.id]
    jsonschema.validate(rec, SCHEMA)
    v = Verdict.from_json(rec)
    assert v.outcome in set(Outcome)
    assert v.summary and v.explanation == claim.mechanism and v.statement == claim.statement
    assert HOST_FACTS <= set(rec["host"])
    assert v.run_id and v.duration_s >= 0 and v.source_hash == provenance.source_hash(claim)
    # the rerun command parses and reproduces claim, seed and budget (the next seed where
    # the verdict is the end-of-run second attempt of a claim whose A/A failed)
    args = build_parser().parse_args(v.rerun.split()[1:])
    seed = 12346 if "first_attempt" in v.evidence else 12345
    assert args.selectors == [claim.id] and args.seed == seed and args.budget == "quick"
    # every inconclusive says why, and nothing else does
    assert (v.reason is not None) == (v.outcome is Outcome.INCONCLUSIVE), v.summary
    assert (bool(v.action)) == (v.outcome is Outcome.INCONCLUSIVE)
    if v.outcome in (Outcome.SKIPPED, Outcome.ERROR):
        return
    dec = v.decision
    assert dec.quantity and dec.thresholds and dec.rule_version == claim.rule.version
    for k, text in claim.thresholds.items():
        assert dec.thresholds[k] == text, "the record's thresholds are the rule's words"
    for s in v.series:
        assert s.name and s.unit
        for pt in s.points:
            assert pt.n >= 1 and pt.ci[0] <= pt.median <= pt.ci[1]
            assert pt.samples is not None and len(pt.samples) == pt.n  # --samples: raw values kept
    for c in v.controls:
        assert c.kind in ("negative", "positive") and c.passed in (True, False, None)
    if v.outcome.decisive:
        assert all(c.passed for c in v.controls), "a decisive verdict needs passing controls"
        assert dec.outcome is v.outcome
