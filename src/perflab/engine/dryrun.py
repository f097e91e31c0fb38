"""``perflab run --dry-run``: a claim's plan, described without measuring anything.

What is described is what the runner would do (engine/runner.py): the series and the
exact argv of each point, the A/A control, the budget's looks and how many processes
that means, and the rule. The plan is made as for a run (it may read the host), but
inside ``planning()``: a plan that prepares something before sampling (a claim file's
``setup`` command) asks ``active()`` and only says what it would run.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any, Iterator

from perflab.core.claim import Claim, Settings
from perflab.core.errors import ClaimSkipped
from perflab.engine.runner import rerun_command

_ACTIVE: ContextVar[bool] = ContextVar("perflab_dry_run", default=False)


def active() -> bool:
    """True while a plan is made for a dry run: prepare nothing, say what would be done."""
    return _ACTIVE.get()


@contextlib.contextmanager
def planning() -> Iterator[None]:
    token = _ACTIVE.set(True)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def describe(claim: Claim, settings: Settings) -> dict[str, Any]:
    """The plan of one claim as JSON: what a run with these settings would measure."""
    budget = settings.budget
    out: dict[str, Any] = {"claim": claim.id, "statement": claim.statement, "source": claim.source,
                           "kernel": claim.kernel, "rule": claim.rule.describe(),
                           "rerun": rerun_command(claim, settings)}
    why = claim.unavailable(settings.host)
    if why:
        return {**out, "runnable": False, "reason": why}
    if claim.structural:
        return {**out, "runnable": True, "structural": True,
                "measures": "observes once, then decides by exact checks (no sampling)"}
    try:
        with planning():
            plan = claim.plan(settings)
    except ClaimSkipped as exc:
        return {**out, "runnable": False, "reason": str(exc)}
    series = [{"name": s.name, "x": s.x, "unit": s.unit, "role": s.role, "timeout_s": s.timeout_s,
               "points": [{"x": x, "argv": s.argv(x)} for x in s.xs]} for s in plan.series]
    per_round = sum(len(s.xs) for s in plan.series)
    aa = claim.aa_config(settings)
    pairs = claim.aa_per_round or budget.aa_per_round
    if aa:
        per_round += 2 * pairs
    return {**out, "runnable": True, "series": series, "facts": plan.facts,
            "aa": {"series": aa[0], "x": aa[1], "pairs_per_round": pairs} if aa else None,
            "looks": list(budget.looks), "conf_per_look": budget.conf_at_look(), "processes_per_round": per_round,
            "processes": {"fewest": per_round * budget.looks[0], "most": per_round * budget.looks[-1]}}
