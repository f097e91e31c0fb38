"""Plan execution: rounds of fresh kernel processes, sequential looks, verdict.

One round runs every (series, x) point of the plan once, plus the A/A control's two
interleaved sets, in an order shuffled by the claim's seeded RNG (randomized and
interleaved across variants, so drift hits every point alike). After the rounds named
by the budget's ``looks`` the rule is evaluated at confidence 1 - alpha/K (the error
rate split evenly among the K pre-planned looks, Bonferroni): a decisive answer with
passing controls stops early; otherwise sampling goes on to the last look, where an
undecided rule ends inconclusive. Deciding is engine/judge.py's; this module measures.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from statistics import median
from typing import Any, Callable

from perflab.core.claim import Claim, Curve, Evidence, Measure, SeriesSpec, Settings
from perflab.core.errors import ClaimSkipped, KernelFailed, KernelUnsupported
from perflab.core.record import Outcome, Sample, Verdict
from perflab.decide import controls as ctl
from perflab.decide.rules import exact_rule
from perflab.decide.summary import summarize
from perflab.engine import judge, process
from perflab.engine.judge import AA_A, AA_B
from perflab.engine.provenance import source_hash
from perflab.observe.trace.errors import MeasurementUnavailable

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


def rerun_command(claim: Claim, settings: Settings) -> str:
    # a claim file (userclaims/) is selected by its path, every other claim by its id
    selector = claim.source if claim.source.endswith(".toml") else claim.id
    parts = ["perflab", "run", selector, "--seed", str(settings.seed), "--budget", settings.budget.name]
    parts += ["--cpu", str(settings.cpu)]
    for name, value in sorted(settings.params.items()):
        param = claim.param(name)
        if param is not None:  # "0 = decided by this host" is written as the value it took here
            value = param.resolved(value, settings.host)
        parts += ["--param", f"{name}={value}"]
    return " ".join(shlex.quote(p) for p in parts)


def _active(spec: SeriesSpec, x: Any, rnd: int) -> bool:
    limit = spec.rounds_at(x) if spec.rounds_at else None
    return limit is None or rnd < limit


def _units(specs: list[SeriesSpec], xs_of: dict[str, list[Any]], aa: tuple[str, Any] | None, aa_per_round: int,
           rnd: int) -> list[list[_Job]]:
    """Round ``rnd``'s jobs in the units it is shuffled in: each point alone, each A/A pair
    back to back (A B, then B A for the next pair: an ABBA order, so that a drift within
    the round hits both sets alike)."""
    units = [[_Job(spec, x, spec.name)] for spec in specs for x in xs_of[spec.name] if _active(spec, x, rnd)]
    if aa:
        spec = next(s for s in specs if s.name == aa[0])
        for k in range(aa_per_round):
            pair = [_Job(spec, aa[1], AA_A), _Job(spec, aa[1], AA_B)]
            units.append(pair if k % 2 == 0 else pair[::-1])
    return units


def _base(claim: Claim, settings: Settings, outcome: Outcome, summary: str, t0: float) -> Verdict:
    return Verdict(
        claim=claim.id,
        outcome=outcome,
        summary=summary,
        statement=claim.statement,
        explanation=claim.mechanism,
        rerun=rerun_command(claim, settings),
        params=dict(settings.params),
        duration_s=time.monotonic() - t0,
        source_hash=source_hash(claim),
    )


def _failed(claim: Claim, settings: Settings, exc: KernelFailed, t0: float, argv: list[str] | None = None) -> Verdict:
    v = _base(claim, settings, Outcome.ERROR, f"error: {exc}", t0)
    v.evidence = {"stderr": exc.stderr[-STDERR_KEEP:], "returncode": exc.returncode}
    if argv is not None:
        v.evidence["argv"] = argv
    return v


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
    budget = settings.budget
    try:
        plan = claim.plan(settings)
    except (ClaimSkipped, KernelUnsupported) as exc:  # the plan found what the comparison lacks (no Go...)
        return _base(claim, settings, Outcome.SKIPPED, f"skipped: {exc}", t0)
    except KernelFailed as exc:  # what the plan prepares failed (a claim file's setup command): stderr kept
        return _failed(claim, settings, exc, t0)
    facts = judge.as_json(plan.facts)
    lacking = claim.skip(facts) if claim.skip else None
    if lacking:
        v = _base(claim, settings, Outcome.SKIPPED, f"skipped: {lacking}", t0)
        v.evidence = {"facts": facts}
        return v
    specs = plan.series
    curves = {s.name: Curve(s.name, s.x, s.unit, s.role) for s in specs}
    for spec in specs:
        for name, unit, _fn in spec.derived:
            curves[name] = Curve(name, spec.x, unit, spec.role)
    aa = claim.aa_config(settings)
    if aa:
        aa_spec = next(s for s in specs if s.name == aa[0])
        for name in (AA_A, AA_B):
            curves[name] = Curve(name, aa_spec.x, aa_spec.unit, "control")
    per_round = claim.aa_per_round or budget.aa_per_round
    xs_of = {s.name: list(s.xs) for s in specs}
    order_rng = judge.claim_rng(settings.seed, claim.id, "order")
    samples: list[Sample] = []
    records: dict[str, dict[Any, list[dict[str, Any]]]] = {s.name: {} for s in specs}
    planned = sum(len(u) for u in _units(specs, xs_of, aa, per_round, 0)) * budget.looks[-1]
    done = rounds = reused = 0
    conf = budget.conf_at_look()
    decision, controls = None, []
    looks_taken = []
    uses: dict[tuple[str, ...], int] = {}

    def take(job: _Job, rnd: int) -> Verdict | None:
        """One fresh process for ``job`` in round ``rnd``; a verdict if it ends the claim."""
        nonlocal reused, done
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
            return _failed(claim, settings, exc, t0, argv)
        value = float(job.spec.value(record))
        curves[job.series].add(job.x, value, rnd)
        if job.series == job.spec.name:  # not for the A/A sets
            records[job.spec.name].setdefault(job.x, []).append(record)
            for name, _unit, fn in job.spec.derived:
                curves[name].add(job.x, float(fn(record)), rnd)
        samples.append(Sample(job.series, job.x, rnd, value, record, process.pinned_cpu(argv)))
        done += 1
        if progress:
            progress(claim.id, done, planned, f"round {rnd + 1}/{budget.looks[-1]}")
        return None

    for look in budget.looks:
        while rounds < look:
            order = _units(specs, xs_of, aa, per_round, rounds)
            order_rng.shuffle(order)
            for job in (j for unit in order for j in unit):
                ended = take(job, rounds)
                if ended:
                    return ended
            rounds += 1
            for spec in (s for s in specs if s.extend):  # a sweep that goes on until its curve levels off
                while True:
                    more = [x for x in spec.extend(curves[spec.name], records[spec.name]) if x not in xs_of[spec.name]]
                    if not more:
                        break
                    for x in more:
                        xs_of[spec.name].append(x)
                        for rnd in range(rounds):  # caught up on the rounds done: every block stays whole
                            if _active(spec, x, rnd):
                                ended = take(_Job(spec, x, spec.name), rnd)
                                if ended:
                                    return ended
        ev = Evidence(curves, facts, conf, budget.n_boot, judge.look_rng(settings.seed, claim.id, rounds))
        decision, controls = judge.evaluate(claim, ev, aa)
        looks_taken.append({"round": rounds, "outcome": decision.outcome.value,
                            "controls_passed": ctl.controls_ok(controls)})
        if decision.outcome.decisive and ctl.controls_ok(controls):
            break
    assert decision is not None
    v = _base(claim, settings, Outcome.INCONCLUSIVE, "", t0)
    summary_rng = judge.claim_rng(settings.seed, claim.id, "summary")
    v.series = [summarize(c, REPORT_CONF, summary_rng, budget.n_boot) for c in curves.values()]
    v.evidence = {
        "rounds": rounds,
        "looks": looks_taken,
        "stopped_early": rounds < budget.looks[-1],
        "samples": len(samples),
        "samples_shared_with_earlier_claims": reused,
        "conf_per_look": conf,
        "n_boot": budget.n_boot,
        "seed": settings.seed,
        "cpu": settings.cpu,
        "aa": list(aa) if aa else None,
        "overheads": _overheads(samples),
        "facts": facts,
    }
    judge.settle(v, decision, controls)
    if claim.derive:
        v.evidence["derived"] = judge.derived(claim, ev)
    v.samples = samples
    v.duration_s = time.monotonic() - t0
    return v


def _run_structural(claim: Claim, settings: Settings, measure: Measure, t0: float) -> Verdict:
    """A structural claim: it observes once; its judge turns the observations into exact
    checks (pure), and the checks decide (decide.rules.exact_rule)."""
    try:
        observed = judge.as_json(claim.observe(settings, measure))
    except (ClaimSkipped, KernelUnsupported) as exc:
        return _base(claim, settings, Outcome.SKIPPED, f"skipped: {exc}", t0)
    except KernelFailed as exc:
        return _failed(claim, settings, exc, t0)
    except MeasurementUnavailable as exc:  # e.g. a traced kernel's marker region was incomplete
        return _failed(claim, settings, KernelFailed(f"could not measure: {exc}"), t0)
    checked = claim.judge(observed, claim.rule)
    decision = exact_rule(checked.checks, claim.rule)
    v = _base(claim, settings, Outcome.INCONCLUSIVE, "", t0)
    rng = judge.claim_rng(settings.seed, claim.id, "summary")
    v.series = [summarize(c, REPORT_CONF, rng, settings.budget.n_boot) for c in checked.series]
    v.evidence = {"checks": [c.to_dict() for c in checked.checks], **judge.as_json(checked.evidence),
                  "observed": observed}
    judge.settle_structural(v, decision, checked.controls, len(checked.checks))
    v.duration_s = time.monotonic() - t0
    return v


def _overheads(samples: list[Sample]) -> dict[str, Any]:
    """Timer and loop overhead the kernels measured and subtracted (medians)."""
    out = {}
    for key in ("timer_overhead_ns", "loop_overhead_ns"):
        vals = [s.record[key] for s in samples if isinstance(s.record.get(key), (int, float))]
        if vals:
            out[key] = median(vals)
    return out
