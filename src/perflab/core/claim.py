"""What a claim is: a pre-registered prediction with its plan, rule and mechanism.

A claim file (``perflab/claims/<topic>.py`` or a third-party module registered under the
``perflab.claims`` entry-point group) defines a module-level ``CLAIMS`` list of
:class:`Claim`. Nothing else needs editing: the registry finds it, the CLI lists it and
the contract test covers it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from perflab.core.model import Budget, Control, Decision, Param, Series


@dataclass(frozen=True)
class Settings:
    """Everything one claim execution depends on; the rerun command reproduces it."""

    params: Mapping[str, Any]
    budget: Budget
    seed: int
    cpu: int  # CPU the kernels are pinned to
    host: Mapping[str, Any]


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


@dataclass(frozen=True)
class Check:
    """One exact check of a structural claim. ``holds`` is None when it could not be
    evaluated here (e.g. frame numbers without root); ``note`` says why."""

    name: str
    expected: Any
    observed: Any
    holds: bool | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "expected": self.expected, "observed": self.observed,
                "holds": self.holds, "note": self.note}


@dataclass
class Checked:
    """What a structural claim's ``check`` returns: its checks, controls, evidence and
    any series it measured on the way (shown, not decided on)."""

    checks: list[Check]
    controls: list[Control] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    series: list[Series] = field(default_factory=list)


# measure(argv, timeout_s) -> kernel record (perflab.engine.process.run_kernel, a fake in tests)
Measure = Callable[[list[str], float], dict[str, Any]]
# check(settings, measure) -> Checked; raise perflab.core.errors.ClaimSkipped when nothing can run
CheckFn = Callable[[Settings, Measure], Checked]

# decide(series by name, confidence level, rng, n_boot) -> Decision
DecideFn = Callable[[Mapping[str, Series], float, random.Random, int], Decision]
# positive control(series by name, confidence level, rng, n_boot) -> Control
ControlFn = Callable[[Mapping[str, Series], float, random.Random, int], Control]


@dataclass(frozen=True)
class Claim:
    id: str  # "topic.name", stable: the key results are stored under
    statement: str
    seed_point: str  # which point of the reading group's notes it tests
    mechanism: str  # one paragraph: why the kernel behaves so, with sources
    kernel: str
    thresholds: Mapping[str, Any]
    # A measured claim has a plan (series to sample) and a rule (decide); a structural
    # claim has a check instead, decided exactly (every check holds / one contradicts).
    plan: Callable[[Settings], list[SeriesSpec]] | None = None
    decide: DecideFn | None = None
    check: CheckFn | None = None
    params: tuple[Param, ...] = ()
    # A/A negative control: (series name, x), x either a value or a function of Settings
    aa: tuple[str, Any] | None = None
    # A/A processes per set per round, where the budget's default is too few for a
    # measurement whose processes vary a lot (e.g. whole-process host interference)
    aa_per_round: int | None = None
    positive: ControlFn | None = None
    requires: Callable[[Mapping[str, Any]], str | None] | None = None
    # figures derived from the series for the evidence (ratios, per-event costs)
    derive: Callable[[Mapping[str, Series]], dict[str, Any]] | None = None
    # files beyond the claim file and kernels/<kernel>.c whose text defines the
    # experiment (other kernels, subjects), relative to the perflab package: hashed too
    sources: tuple[str, ...] = ()
    source: str = field(default="", compare=False)  # file the claim came from (set by registry)

    def __post_init__(self) -> None:
        measured = self.plan is not None and self.decide is not None
        if measured == (self.check is not None):
            raise TypeError(f"claim {self.id}: give either plan and decide, or check")

    @property
    def structural(self) -> bool:
        return self.check is not None

    @property
    def topic(self) -> str:
        return self.id.split(".", 1)[0]

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def aa_config(self, settings: Settings) -> tuple[str, Any] | None:
        if self.aa is None:
            return None
        name, x = self.aa
        return name, (x(settings) if callable(x) else x)

    def unavailable(self, host: Mapping[str, Any]) -> str | None:
        """Why this claim cannot run here, or None."""
        return self.requires(host) if self.requires else None
