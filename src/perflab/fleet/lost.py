"""The records of claims a host never sent back: outcome ``error``, with the reason.

A host lost mid-run (its worker died or left the scheduler), one past its
``--host-timeout``, or one whose ``perflab run`` failed before its end, leaves claims
without a verdict. Each becomes an error record (core/record.py: an error has no
inconclusive reason; the why is its summary, ``error: host lost ...``, and
``evidence.fleet``), with the host's facts and what the claim's record would have said of
itself (statement, mechanism, source hash: the host runs this same perflab, fleet/hosts.py),
so that the claims x hosts table has a cell for it and nothing is re-run to fill it.
"""

from __future__ import annotations

import shlex

from perflab import __version__
from perflab.core.claim import Claim
from perflab.core.record import Host, Outcome, Verdict
from perflab.engine.provenance import source_hash

LOST = "host lost"
TIMEOUT = "host timed out"
FAILED = "host failed"


def rerun(claim: Claim, budget: str, seed: int) -> str:
    return " ".join(shlex.quote(p) for p in ("perflab", "run", claim.id, "--seed", str(seed), "--budget", budget))


def missing(claims: list[Claim], arrived: set[str], host: Host, *, why: str, detail: str, fleet_id: str,
            host_name: str, run_id: str, budget: str, seed: int) -> list[Verdict]:
    """An error record for every claim of ``claims`` not in ``arrived``, in their order.
    ``why`` is one of LOST, TIMEOUT, FAILED; ``detail`` says what happened, in words."""
    out = []
    for claim in claims:
        if claim.id in arrived:
            continue
        out.append(Verdict(
            claim=claim.id,
            outcome=Outcome.ERROR,
            summary=f"error: {why}: {detail}; no verdict came back from {host_name} (a fleet never re-runs a claim)",
            statement=claim.statement,
            explanation=claim.mechanism,
            rerun=rerun(claim, budget, seed),
            evidence={"fleet": {"id": fleet_id, "host": host_name, "why": why, "detail": detail}},
            host=host,
            run_id=run_id,
            source_hash=source_hash(claim),
            perflab_version=__version__,
        ))
    return out


def why(v: Verdict) -> str | None:
    """The fleet's reason for an error record it made (LOST, TIMEOUT, FAILED), else None."""
    fleet = v.evidence.get("fleet") if isinstance(v.evidence, dict) else None
    return str(fleet.get("why")) if isinstance(fleet, dict) and fleet.get("why") else None
