"""The measured part of a record: series of points (each the median of its fresh
processes' samples, with a CI), the fits of a sweep, and the samples themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass
class Fit:
    """An estimate with its confidence interval: ``value`` in ``[lo, hi]`` at ``conf``."""

    value: float
    lo: float
    hi: float
    conf: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "ci": [self.lo, self.hi], "conf": self.conf}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Fit | None:
        if not d:
            return None
        ci = d.get("ci") or [None, None]
        return cls(d.get("value"), ci[0], ci[1], d.get("conf"))


@dataclass
class AffineFit:
    """cost = a + b*x over every point (a in the series' unit, b in unit per x)."""

    a: Fit
    b: Fit
    r2: float

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a.to_json(), "b": self.b.to_json(), "r2": self.r2}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> AffineFit | None:
        if not d:
            return None
        return cls(Fit.from_json(d["a"]), Fit.from_json(d["b"]), d.get("r2"))


@dataclass
class Point:
    """One x of a series: the median of its per-process samples with a bootstrap CI."""

    x: Any  # a number, a label, or None for a single-point series
    median: float
    ci: tuple[float, float]
    n: int  # processes
    samples: list[float] | None = None  # one value per fresh process, in the order taken
    rounds: list[int | None] | None = None  # the round of the run each sample was taken in

    def to_json(self, samples: bool = True) -> dict[str, Any]:
        out = {"x": self.x, "median": self.median, "ci": list(self.ci), "n": self.n}
        if samples and self.samples is not None:
            out["samples"] = list(self.samples)
            if self.rounds is not None and any(r is not None for r in self.rounds):
                out["rounds"] = list(self.rounds)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Point:
        return cls(d["x"], d["median"], tuple(d["ci"]), d["n"], d.get("samples"), d.get("rounds"))


@dataclass
class Series:
    """One measured curve as reported: its points and, for a sweep, both fits."""

    name: str
    x: str | None  # name of the swept variable; None for single points
    unit: str
    role: str = "evidence"  # "evidence" | "control"
    points: list[Point] = field(default_factory=list)
    growth_exponent: Fit | None = None
    affine_fit: AffineFit | None = None

    @property
    def has_samples(self) -> bool:
        return all(p.samples is not None for p in self.points)

    def samples_by_x(self) -> dict[Any, tuple[list[float], list[int | None] | None]]:
        """Each x's raw samples and their rounds (None when the record has no rounds)."""
        return {p.x: (list(p.samples or []), p.rounds) for p in self.points}

    def to_json(self, samples: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "x": self.x, "unit": self.unit, "role": self.role,
                               "points": [p.to_json(samples) for p in self.points]}
        if self.growth_exponent is not None:
            out["growth_exponent"] = self.growth_exponent.to_json()
        if self.affine_fit is not None:
            out["affine_fit"] = self.affine_fit.to_json()
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Series:
        return cls(d["name"], d.get("x"), d.get("unit", ""), d.get("role", "evidence"),
                   [Point.from_json(p) for p in d.get("points", [])],
                   Fit.from_json(d.get("growth_exponent")), AffineFit.from_json(d.get("affine_fit")))


@dataclass
class Sample:
    """One fresh process: the value it gave and the kernel's JSON record it came from."""

    series: str
    x: Any
    round: int
    value: float
    record: dict[str, Any]
    cpu: int | None = None  # the CPU it was pinned to (None: not pinned)

    def to_json(self) -> dict[str, Any]:
        return {"series": self.series, "x": self.x, "round": self.round, "value": self.value,
                "cpu": self.cpu, "record": self.record}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Sample:
        return cls(d["series"], d.get("x"), d.get("round", 0), d["value"], d.get("record") or {}, d.get("cpu"))


