"""The JSON record of one verdict: what --json prints (one line per claim), what the
store keeps and what `show` prints again. Fields are documented in the README."""

from __future__ import annotations

from typing import Any

from perflab.core.model import Verdict


def to_record(verdict: Verdict, claim_statement: str, host: dict[str, Any], run_id: str, version: str) -> dict[str, Any]:
    return {
        "claim": verdict.claim,
        "statement": claim_statement,
        "outcome": verdict.outcome.value,
        "summary": verdict.summary,
        "explanation": verdict.explanation,
        "rerun": verdict.rerun,
        "params": verdict.params,
        "series": verdict.series_stats,
        "decision": verdict.decision.to_dict() if verdict.decision else None,
        "controls": {c.name: c.to_dict() for c in verdict.controls},
        "evidence": verdict.evidence,
        "host": host,
        "run_id": run_id,
        "duration_s": round(verdict.duration_s, 3),
        "source_hash": verdict.source_hash,
        "perflab_version": version,
    }
