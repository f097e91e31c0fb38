"""Claim parameters and sample budgets: what a user may set on the command line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from perflab.core.errors import UsageError


@dataclass(frozen=True)
class Param:
    """A claim parameter: a name, a default, an allowed range and a unit."""

    name: str
    default: int | float
    lo: int | float
    hi: int | float
    help: str
    unit: str = ""
    kind: type = int
    # when the default stands for "decided by this host" (max_fds 0 = hard RLIMIT_NOFILE
    # minus 16): the value it takes given the host facts, so a rerun names the real value
    auto: Callable[[Mapping[str, Any]], int | float] | None = None
    # a rule beyond the range (e.g. "0 or >= 1000"): the reason a value is refused, or None
    check: Callable[[int | float], str | None] | None = None

    def resolved(self, value: int | float, host: Mapping[str, Any]) -> int | float:
        return self.auto(host) if self.auto is not None and value == self.default else value

    def parse(self, text: str) -> int | float:
        # int() and float() also take "1_0", " 10 ", non-ASCII digits ("١٢"), "nan" and
        # "inf" (docs.python.org, int() and float()): only ASCII digits, sign, point and
        # exponent reach them here, and they refuse any malformed arrangement of those
        allowed = "0123456789+-" if self.kind is int else "0123456789+-.eE"
        try:
            if not set(text) <= set(allowed):
                raise ValueError(text)
            value = self.kind(text)
        except ValueError:
            raise UsageError(
                f"bad value for parameter {self.name}: {text!r} is not {'an integer' if self.kind is int else 'a number'}"
            ) from None
        if not self.lo <= value <= self.hi:
            raise UsageError(
                f"parameter {self.name}={text} out of range: allowed {self.lo}..{self.hi}{' ' + self.unit if self.unit else ''}"
            )
        why = self.check(value) if self.check is not None else None
        if why:
            raise UsageError(f"parameter {self.name}={text}: {why}")
        return value


@dataclass(frozen=True)
class Budget:
    """How many samples a run may take; never the range of a sweep.

    ``looks`` are the pre-planned rounds after which the data are examined; the error
    rate is split evenly among them (Bonferroni), so looking several times keeps the
    overall rate at ``alpha``.
    """

    name: str
    looks: tuple[int, ...]
    batches: int
    aa_per_round: int
    n_boot: int
    alpha: float = 0.05

    def conf_at_look(self) -> float:
        return 1.0 - self.alpha / len(self.looks)


BUDGETS: dict[str, Budget] = {
    "quick": Budget("quick", looks=(3, 5), batches=5, aa_per_round=3, n_boot=400),
    "default": Budget("default", looks=(3, 6, 10), batches=7, aa_per_round=3, n_boot=1000),
    "rigorous": Budget("rigorous", looks=(5, 10, 20, 30), batches=11, aa_per_round=3, n_boot=2000),
}
