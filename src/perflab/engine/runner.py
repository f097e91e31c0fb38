"""Plan execution: rounds of fresh kernel processes, sequential looks, verdict.

One round runs every (series, x) point of the plan once, plus the A/A control's two
interleaved sets, in an order shuffled by the claim's seeded RNG (randomized and
interleaved across variants, so drift hits every point alike). After the rounds named
by the budget's ``looks`` the rule is evaluated at confidence 1 - alpha/K (the error
rate split evenly among the K pre-planned looks, Bonferroni): a decisive answer with
passing controls stops early; otherwise sampling goes on to the last look, where an
undecided rule ends inconclusive.
"""

from __future__ import annotations

import random
import shlex
import time
from statistics import median
from dataclasses import dataclass
from typing import Any, Callable

from perflab.engine import process
from perflab.decide import rules
from perflab.core.claim import Claim, Measure, SeriesSpec, Settings
from perflab.core.errors import ClaimSkipped, KernelFailed, KernelUnsupported
from perflab.core.model import Control, Decision, Outcome, Series, Verdict
from perflab.engine.registry import source_hash

AA_A, AA_B = "a/a:A", "a/a:B"
REPORT_CONF = 0.95
STDERR_KEEP = 4000

# progress(claim_id, jobs_done, jobs_planned_max, note)
Progress = Callable[[str, int, int, str], None]


@dataclass
class _Job:
    spec: SeriesSpec
    x: Any
    series: str


class SampleCache:
    """Kernel records of this run by exact argv, so claims that need the same
    measurement (io.epoll-flat and io.epoll-needs-edge both time level-triggered epoll)
    reuse fresh-process samples instead of repeating them. Within one claim every sample
    is still a distinct process: a claim's k-th use of an argv takes the k-th record."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, ...], list[dict[str, Any]]] = {}

    def get(self, argv: list[str], index: int) -> dict[str, Any] | None:
        found = self.records.get(tuple(argv), [])
        return found[index] if index < len(found) else None

    def put(self, argv: list[str], record: dict[str, Any]) -> None:
        self.records.setdefault(tuple(argv), []).append(record)


def claim_rng(seed: int, claim_id: str) -> random.Random:
    """Each claim's randomness depends only on the run seed and its id, so rerunning one
    claim with the same seed reproduces its plan order and bootstrap draws."""
    return random.Random(f"{seed}:{claim_id}")


def rerun_command(claim: Claim, settings: Settings) -> str:
    parts = ["perflab", "run", claim.id, "--seed", str(settings.seed), "--budget", settings.budget.name]
    parts += ["--cpu", str(settings.cpu)]
    for name, value in sorted(settings.params.items()):
        param = claim.param(name)
        if param is not None:  # "0 = decided by this host" is written as the value it took here
            value = param.resolved(value, settings.host)
        parts += ["--param", f"{name}={value}"]
    return " ".join(shlex.quote(p) for p in parts)


def _jobs(specs: list[SeriesSpec], aa: tuple[str, Any] | None, aa_per_round: int) -> list[_Job]:
    jobs = [_Job(spec, x, spec.name) for spec in specs for x in spec.xs]
    if aa:
        spec = next(s for s in specs if s.name == aa[0])
        for _ in range(aa_per_round):
            jobs += [_Job(spec, aa[1], AA_A), _Job(spec, aa[1], AA_B)]
    return jobs


def _base(claim: Claim, settings: Settings, outcome: Outcome, summary: str, t0: float) -> Verdict:
    return Verdict(
        claim=claim.id,
        outcome=outcome,
        summary=summary,
        explanation=claim.mechanism,
        rerun=rerun_command(claim, settings),
        params=dict(settings.params),
        duration_s=time.monotonic() - t0,
        source_hash=source_hash(claim),
    )


def evaluate(
    claim: Claim,
    series: dict[str, Series],
    aa: tuple[str, Any] | None,
    conf: float,
    rng: random.Random,
    n_boot: int,
) -> tuple[Decision, list[Control]]:
    """The rule and the controls on the data so far (pure: no I/O)."""
    decision = claim.decide(series, conf, rng, n_boot)
    controls: list[Control] = []
    if aa:
        a, b = (series[name].points.get(aa[1], []) for name in (AA_A, AA_B))
        controls.append(rules.aa_control(a, b, rng, n_boot))
    if claim.positive:
        controls.append(claim.positive(series, conf, rng, n_boot))
    return decision, controls


def final_outcome(decision: Decision, controls: list[Control]) -> tuple[Outcome, str]:
    """A failed or unevaluated control makes the verdict inconclusive, never confident."""
    failed = rules.failed_controls(controls)
    notes = "; ".join(f"{c.name}: {c.detail['why']}" for c in controls if c.passed is False and c.detail.get("why"))
    if failed and decision.outcome.decisive:
        why = f"the rule said {decision.outcome.value}, but control(s) {', '.join(failed)} did not pass"
        return Outcome.INCONCLUSIVE, f"{why} ({notes})" if notes else why
    if notes:
        return decision.outcome, "; ".join(r for r in (decision.reason, f"control {notes}") if r)
    return decision.outcome, decision.reason


def run_claim(
    claim: Claim,
    settings: Settings,
    measure: Measure = process.run_kernel,
    progress: Progress | None = None,
    cache: SampleCache | None = None,
) -> Verdict:
    t0 = time.monotonic()
    reason = claim.unavailable(settings.host)
    if reason:
        return _base(claim, settings, Outcome.SKIPPED, f"skipped: {reason}", t0)
    if claim.structural:
        return _run_structural(claim, settings, measure, t0)
    rng = claim_rng(settings.seed, claim.id)
    budget = settings.budget
    specs = claim.plan(settings)
    series = {s.name: Series(s.name, s.x, s.unit, s.role) for s in specs}
    for spec in specs:
        for name, unit, _fn in spec.derived:
            series[name] = Series(name, spec.x, unit, spec.role)
    aa = claim.aa_config(settings)
    if aa:
        aa_spec = next(s for s in specs if s.name == aa[0])
        for name in (AA_A, AA_B):
            series[name] = Series(name, aa_spec.x, aa_spec.unit, "control")
    jobs = _jobs(specs, aa, claim.aa_per_round or budget.aa_per_round)
    samples: list[dict[str, Any]] = []
    planned = len(jobs) * budget.looks[-1]
    done = 0
    rounds = 0
    conf = budget.conf_at_look()
    decision: Decision | None = None
    controls: list[Control] = []
    looks_taken = []
    uses: dict[tuple[str, ...], int] = {}
    reused = 0
    for look in budget.looks:
        while rounds < look:
            order = jobs[:]
            rng.shuffle(order)
            for job in order:
                argv = job.spec.argv(job.x)
                index = uses.get(tuple(argv), 0)
                uses[tuple(argv)] = index + 1
                record = cache.get(argv, index) if cache else None
                try:
                    if record is None:
                        record = measure(argv, job.spec.timeout_s)
                        if cache:
                            cache.put(argv, record)
                    else:
                        reused += 1
                except KernelUnsupported as exc:
                    return _base(claim, settings, Outcome.SKIPPED, f"skipped: {exc}", t0)
                except KernelFailed as exc:
                    v = _base(claim, settings, Outcome.ERROR, f"error: {exc}", t0)
                    v.evidence = {"stderr": exc.stderr[-STDERR_KEEP:], "returncode": exc.returncode, "argv": argv}
                    return v
                value = float(job.spec.value(record))
                series[job.series].add(job.x, value)
                if job.series == job.spec.name:  # not for the A/A sets
                    for name, _unit, fn in job.spec.derived:
                        series[name].add(job.x, float(fn(record)))
                samples.append({"series": job.series, "x": job.x, "round": rounds, "value": value, "record": record})
                done += 1
                if progress:
                    progress(claim.id, done, planned, f"round {rounds + 1}/{budget.looks[-1]}")
            rounds += 1
        decision, controls = evaluate(claim, series, aa, conf, rng, budget.n_boot)
        looks_taken.append({"round": rounds, "outcome": decision.outcome.value, "controls_passed": rules.controls_ok(controls)})
        if decision.outcome.decisive and rules.controls_ok(controls):
            break
    assert decision is not None
    outcome, why = final_outcome(decision, controls)
    v = _base(claim, settings, outcome, "", t0)
    v.decision = decision
    v.controls = controls
    v.series = list(series.values())
    v.series_stats = [rules.point_stats(s, REPORT_CONF, rng, budget.n_boot) for s in series.values()]
    v.evidence = {
        "rounds": rounds,
        "looks": looks_taken,
        "stopped_early": rounds < budget.looks[-1],
        "samples": len(samples),
        "samples_shared_with_earlier_claims": reused,
        "conf_per_look": conf,
        "cpu": settings.cpu,
        "overheads": _overheads(samples),
    }
    if decision.evidence:
        v.evidence["rule"] = decision.evidence
    if claim.derive:
        try:
            v.evidence["derived"] = claim.derive(series)
        except (ValueError, KeyError, ZeroDivisionError) as exc:
            v.evidence["derived"] = {"unavailable": str(exc)}
    v.summary = summarize(decision, outcome, why)
    v.samples = samples
    return v


def _run_structural(claim: Claim, settings: Settings, measure: Measure, t0: float) -> Verdict:
    """A structural claim: its check runs once; exact checks decide (rules.exact_rule)."""
    try:
        checked = claim.check(settings, measure)
    except (ClaimSkipped, KernelUnsupported) as exc:
        return _base(claim, settings, Outcome.SKIPPED, f"skipped: {exc}", t0)
    except KernelFailed as exc:
        v = _base(claim, settings, Outcome.ERROR, f"error: {exc}", t0)
        v.evidence = {"stderr": exc.stderr[-STDERR_KEEP:], "returncode": exc.returncode}
        return v
    decision = rules.exact_rule(checked.checks)
    outcome, why = final_outcome(decision, checked.controls)
    v = _base(claim, settings, outcome, "", t0)
    v.decision = decision
    v.controls = checked.controls
    v.series = checked.series
    rng = claim_rng(settings.seed, claim.id)
    v.series_stats = [rules.point_stats(s, REPORT_CONF, rng, settings.budget.n_boot) for s in checked.series]
    v.evidence = {"checks": [c.to_dict() for c in checked.checks], **checked.evidence}
    held = int(decision.value or 0)
    v.summary = f"{outcome.value}: {held} of {len(checked.checks)} checks hold" + (f"; {why}" if why else "")
    return v


def _overheads(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Timer and loop overhead the kernels measured and subtracted (medians)."""
    out = {}
    for key in ("timer_overhead_ns", "loop_overhead_ns"):
        vals = [s["record"][key] for s in samples if isinstance(s["record"].get(key), (int, float))]
        if vals:
            out[key] = median(vals)
    return out


def summarize(decision: Decision, outcome: Outcome, why: str) -> str:
    if decision.value is None:
        core = f"{decision.quantity}: not measurable"
    else:
        ci = f" (CI {decision.ci[0]:.3g}..{decision.ci[1]:.3g})" if decision.ci else ""
        core = f"{decision.quantity} = {decision.value:.3g}{ci}"
    text = f"{outcome.value}: {core}"
    return f"{text}; {why}" if why else text
