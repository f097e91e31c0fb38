"""Terminal rendering keeps data verbatim (no rich markup interpretation)."""

import io

from perflab.core.record import Verdict
from perflab.results import terminal


def v(rec: dict) -> Verdict:
    return Verdict.from_json({"schema_version": 2, "host": {}, **rec})


def test_brackets_in_data_are_printed_verbatim():
    rec = {"claim": "malloc.x", "outcome": "supported", "summary": "supported: [heap] grew by brk",
           "statement": "the [heap] is its own", "explanation": "see [stack] and [vdso]",
           "rerun": "perflab run malloc.x", "duration_s": 0.1, "decision": None, "controls": {},
           "series": [], "evidence": {"checks": [{"name": "[heap] present", "expected": True,
                                                   "observed": True, "holds": True, "note": "[heap]"}]}}
    out = io.StringIO()
    terminal.render([v(rec)], out)
    text = out.getvalue()
    assert "the [heap] is its own" in text and "check [heap] present: holds" in text and "[vdso]" in text


def _rendered(rec: dict) -> str:
    base = {"claim": "fork.x", "outcome": "supported", "summary": "supported", "statement": "s", "explanation": "e",
            "rerun": "perflab run fork.x", "duration_s": 0.1, "controls": {}, "series": [], "evidence": {}}
    out = io.StringIO()
    terminal.render([v({**base, **rec})], out)
    return " ".join(out.getvalue().split())


def test_a_rule_of_parts_shows_each_part_with_its_thresholds():
    parts = {"vfork at 1024 / at 0": {"supported": "[0.8, 1.25]", "refuted": ">= 2", "value": 0.98,
                                      "ci": [0.95, 0.99], "outcome": "supported"},
             "posix_spawn at 1024 / at 0": {"supported": "[0.8, 1.25]", "refuted": ">= 2", "value": 1.4,
                                            "ci": [1.3, 1.5], "outcome": "inconclusive"}}
    text = _rendered({"decision": {"quantity": "both", "value": 0.98, "ci": [0.95, 0.99], "thresholds": parts,
                                   "outcome": "inconclusive", "reason": ""}})
    assert "thresholds (fixed in advance): decided" not in text  # no empty flat line
    assert "vfork at 1024 / at 0: 0.98 [0.95, 0.99] -> supported (supported: [0.8, 1.25]; refuted: >= 2)" in text
    assert "posix_spawn at 1024 / at 0: 1.4 [1.3, 1.5] -> inconclusive" in text


def test_flat_thresholds_and_the_rules_own_evidence():
    text = _rendered({"decision": {"quantity": "q", "value": 12.0, "ci": [11.0, 13.0],
                                   "thresholds": {"supported": ">= 10", "refuted": "< 3"}, "outcome": "supported",
                                   "reason": ""},
                      "evidence": {"rule": {"switches (ns)": {"asyncio": {"median_ns": 1800.0}}}}})
    assert "thresholds (fixed in advance, rule version 1): supported: >= 10; refuted: < 3" in text
    assert "found by the rule: switches (ns)" in text and "1800" in text
    assert "decided on every part" not in text


def _aa(passed, spread):
    return {"kind": "negative", "passed": passed, "ratio": 1.0, "ci": [0.9, 1.12], "spread_p90_over_p10": spread}


def test_noise_summary_names_the_claims_whose_aa_failed():
    from perflab.results.noise import noise_summary

    recs = [v({"claim": c, "outcome": "inconclusive", "reason": "control", "controls": ctl}) for c, ctl in (
        ("a.x", {"a/a": _aa(True, 1.05)}),
        ("b.y", {"a/a": _aa(False, 1.62), "probe": {"kind": "positive", "passed": False}}),
        ("c.z", {"a/a": _aa(False, 1.31)}),
        ("d.w", {}))]
    line = noise_summary(recs)
    assert line.startswith("2 of 3 A/A controls failed (b.y, c.z)") and "1.62x" in line
    assert noise_summary(recs[:1]) is None and noise_summary(recs[3:]) is None


def test_an_inconclusive_says_its_reason_and_what_would_change_it():
    text = _rendered({"outcome": "inconclusive", "reason": "noisy", "action": "rerun with --rigorous",
                      "summary": "inconclusive (noisy): q = 1"})
    assert "fork.x: inconclusive (noisy)" in text and "what would change it: rerun with --rigorous" in text
