"""What a claim is: a pre-registered prediction with its plan, rule and mechanism.

A claim file (``perflab/claims/<topic>.py`` or a third-party module registered under the
``perflab.claims`` entry-point group) defines a module-level ``CLAIMS`` list of
:class:`Claim`. Nothing else needs editing: the registry finds it, the CLI lists it and
the contract test covers it (CONTRIBUTING.md has the recipe).

Data flows one way: the plan reads the host (``Settings.host``, files, sockets) and says
what to measure and what it found (``Plan.facts``); the runner measures; ``decide`` is a
pure function of the evidence (samples and facts) and the rule, so a stored run can be
decided again anywhere. A structural claim does the same with ``observe`` (which may do
I/O) and ``judge`` (pure, on the observations).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from perflab.core.params import Budget, Param
from perflab.core.record import Control, Decision
from perflab.core.rule import Rule


@dataclass(frozen=True)
class Settings:
    """Everything one claim execution depends on; the rerun command reproduces it."""

    params: Mapping[str, Any]
    budget: Budget
    seed: int
    cpu: int  # CPU the kernels are pinned to
    host: Mapping[str, Any]  # observe.host.collect()


@dataclass(frozen=True)
class SeriesSpec:
    """One curve of the plan: which kernel to run at each x and what to read from it."""

    name: str
    x: str | None  # swept variable, None for a single point
    unit: str
    xs: tuple[Any, ...]
    argv: Callable[[Any], list[str]]  # x -> kernel argv (bare name = perflab kernel)
    value: Callable[[dict[str, Any]], float]  # kernel record -> one sample
    role: str = "evidence"  # "evidence" (shown) or "control"
    timeout_s: float = 60.0
    # more series read from the same processes: (name, unit, record -> sample)
    derived: tuple[tuple[str, str, Callable[[dict[str, Any]], float]], ...] = ()
    # x -> how many rounds (the first ones) measure it; None: every round. For points that
    # are dear to take (a working set of gigabytes) and whose effect is large
    rounds_at: Callable[[Any], int | None] | None = None
    # a sweep that goes on until its curve says it may stop: after each round, (the curve
    # so far, its kernel records by x) -> more x to measure (caught up on the rounds done)
    extend: Callable[[Curve, Mapping[Any, list[dict[str, Any]]]], tuple[Any, ...]] | None = None


@dataclass
class Plan:
    """What to measure, and what the plan found out about the host that the decision
    needs (cache sizes, a listening cache server, the allocators installed). ``facts``
    must be JSON: they are stored with the verdict and given back to ``decide``."""

    series: list[SeriesSpec]
    facts: dict[str, Any] = field(default_factory=dict)


class Samples(list):
    """The values at one x, one per fresh process in the order taken, and the round each
    was taken in (``rounds``; None where unknown, e.g. a record of version 1 read back from
    its points). A list, so every list operation works; the blocked statistics
    (decide/blocked.py) read the rounds."""

    def __init__(self, values: Any = (), rounds: Any = None):
        super().__init__(values)
        self.rounds: list[int | None] = list(rounds) if rounds is not None else [None] * len(self)

    def add(self, value: float, round: int | None = None) -> None:  # noqa: A002 - a round of the run
        self.append(value)
        self.rounds.append(round)


@dataclass
class Curve:
    """One measured curve as the rule sees it: raw samples (one per process) at each x."""

    name: str
    x: str | None  # name of the swept variable; None for a single point
    unit: str
    role: str = "evidence"  # "evidence" | "control"
    points: dict[Any, list[float]] = field(default_factory=dict)

    def add(self, x: Any, value: float, round: int | None = None) -> None:  # noqa: A002
        at = self.points.get(x)
        if not isinstance(at, Samples):
            at = self.points[x] = Samples(at or ())
        at.add(value, round)


@dataclass
class Evidence:
    """All a rule may look at: the curves, the plan's facts, and how sure to be. ``rng``
    is seeded from the run's seed, the claim and the look, so deciding again reproduces
    the same bootstrap draws."""

    series: Mapping[str, Curve]
    facts: Mapping[str, Any]
    conf: float
    n_boot: int
    rng: random.Random


@dataclass(frozen=True)
class Check:
    """One exact check of a structural claim. ``holds`` is None when it did not decide:
    by default because it could not be evaluated here (e.g. frame numbers without root:
    the verdict's reason is then ``capped``), or, with ``inconclusive="between"``, because
    what was observed lies between the claim's two thresholds; ``note`` says which."""

    name: str
    expected: Any
    observed: Any
    holds: bool | None
    note: str = ""
    inconclusive: str | None = None  # a Reason value, when holds is None for another cause than "capped"

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "expected": self.expected, "observed": self.observed,
               "holds": self.holds, "note": self.note}
        if self.inconclusive:
            out["inconclusive"] = self.inconclusive
        return out


@dataclass
class Checked:
    """What a structural claim's ``judge`` returns: its checks, controls, evidence and
    any series it read from the observations (shown, not decided on)."""

    checks: list[Check]
    controls: list[Control] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    series: list[Curve] = field(default_factory=list)


# measure(argv, timeout_s) -> kernel record (engine.process.run_kernel, a fake in tests)
Measure = Callable[[list[str], float], dict[str, Any]]
PlanFn = Callable[[Settings], Plan]
DecideFn = Callable[[Evidence, Rule], Decision]
# observe(settings, measure) -> observations (JSON); raise ClaimSkipped when nothing can run
ObserveFn = Callable[[Settings, Measure], dict[str, Any]]
JudgeFn = Callable[[Mapping[str, Any], Rule], Checked]
ControlFn = Callable[[Evidence], Control]


@dataclass(frozen=True)
class Claim:
    id: str  # "topic.name", stable: the key results are stored under
    statement: str
    seed_point: str  # which point of the reading group's notes it tests
    mechanism: str  # one paragraph: why the kernel behaves so, with sources
    kernel: str
    rule: Rule
    # A measured claim has a plan (series to sample) and decide; a structural claim has
    # observe and judge instead, decided exactly (every check holds / one contradicts).
    plan: PlanFn | None = None
    decide: DecideFn | None = None
    observe: ObserveFn | None = None
    judge: JudgeFn | None = None
    params: tuple[Param, ...] = ()
    # A/A negative control: (series name, x), x a value or a function of Settings; or a
    # function of Settings giving the pair
    aa: Any = None
    # A/A processes per set per round, where the budget's default is too few for a
    # measurement whose processes vary a lot (e.g. whole-process host interference)
    aa_per_round: int | None = None
    positive: ControlFn | None = None
    requires: Callable[[Mapping[str, Any]], str | None] | None = None
    # why the plan's facts leave nothing to compare (no second allocator, no Go toolchain):
    # then the claim is skipped with that reason and the fix, live and when decided again
    skip: Callable[[Mapping[str, Any]], str | None] | None = None
    # an older record (version 1) has no plan facts: what the plan would have found, read
    # back from the record (its host, its evidence), for deciding it again
    recorded_facts: Callable[[Any], dict[str, Any]] | None = None
    # rule version -> how the plan has measured differently since: a record decided by an
    # older version cannot be decided again (perflab rejudge keeps it, with this reason)
    plan_changed: Mapping[int, str] | None = None
    # figures derived from the curves for the evidence (ratios, per-event costs); pure
    derive: Callable[[Evidence], dict[str, Any]] | None = None
    # files beyond the claim's module, its imports and its kernel whose text defines the
    # experiment (other kernels, subjects), relative to the perflab package: hashed too
    sources: tuple[str, ...] = ()
    source: str = field(default="", compare=False)  # file the claim came from (set by registry)

    def __post_init__(self) -> None:
        measured = self.plan is not None and self.decide is not None
        structural = self.observe is not None and self.judge is not None
        if measured == structural:
            raise TypeError(f"claim {self.id}: give either plan and decide, or observe and judge")

    @property
    def structural(self) -> bool:
        return self.observe is not None

    @property
    def topic(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def thresholds(self) -> dict[str, Any]:
        return self.rule.thresholds()

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def aa_config(self, settings: Settings) -> tuple[str, Any] | None:
        """(series, x) of the A/A control; ``aa`` may give x, or the pair, as a function of
        the settings."""
        if self.aa is None:
            return None
        if callable(self.aa):
            return self.aa(settings)
        name, x = self.aa
        return name, (x(settings) if callable(x) else x)

    def unavailable(self, host: Mapping[str, Any]) -> str | None:
        """Why this claim cannot run here, or None."""
        return self.requires(host) if self.requires else None
