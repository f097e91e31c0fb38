"""A decision rule as data: the one place where a claim's thresholds are written.

CLAIMS.md, "How a verdict is decided": *supported* when the confidence interval of the
decision quantity lies wholly in the supported region, *refuted* when wholly in the
refuted region, *inconclusive* otherwise, with its reason: ``between`` when the interval
touches neither region (it lies in the gap: the effect is smaller than claimed) and
``noisy`` when it straddles a threshold (more samples could decide).

Everything that shows a threshold is generated from the ``Rule``: the decision's
``thresholds`` in the record, the terminal, ``perflab list``, README's claim table and
the decision lines of ``docs/claims`` (results/ruledoc.py). A test fails when any of
them disagrees, or when a rule's number is typed again in a claim module. Changing a
threshold is one line here plus ``version``; a stored verdict keeps the version that
decided it, and ``history`` marks verdicts of an older version.

Numbers a rule needs besides its two regions (a step's rise, a minimum count of steps,
the cores a refutation needs) are its ``constants``; ``supported_text`` and
``refuted_text`` may name them as ``{name}`` (and the regions as ``{supported}`` and
``{refuted}``), so the words are generated from the same numbers the decision uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from perflab.core.record import Outcome, Reason

INF = math.inf


def num(v: float) -> str:
    """A threshold as people write it: 0.8, 1.25, 10, 65536."""
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:g}"


@dataclass(frozen=True)
class Region:
    """A closed interval [lo, hi] of the decision quantity (either end may be infinite)."""

    lo: float = -INF
    hi: float = INF

    def __post_init__(self) -> None:
        if not self.lo <= self.hi:
            raise ValueError(f"region with lo > hi: [{self.lo}, {self.hi}]")

    def holds(self, lo: float, hi: float) -> bool:
        """The whole interval [lo, hi] lies in the region."""
        return self.lo <= lo and hi <= self.hi

    def touches(self, lo: float, hi: float) -> bool:
        """The interval [lo, hi] and the region share a point."""
        return lo <= self.hi and hi >= self.lo

    def text(self) -> str:
        if self.lo == -INF and self.hi == INF:
            return "any value"
        if self.lo == -INF:
            return f"<= {num(self.hi)}"
        if self.hi == INF:
            return f">= {num(self.lo)}"
        if self.lo == self.hi:
            return f"= {num(self.lo)}"
        return f"in [{num(self.lo)}, {num(self.hi)}]"

    def numbers(self) -> list[float]:
        return [v for v in (self.lo, self.hi) if math.isfinite(v)]


NEVER = None  # a rule side that no value can reach (written "never")


@dataclass(frozen=True)
class Rule:
    """One claim's decision rule. ``parts``: a rule decided on several parts, each a Rule
    with a ``name``; ``combine`` says in words how their outcomes make the claim's."""

    quantity: str  # the decision quantity, in words
    short: str  # the same, for tables ("exponent", "fork / thread")
    supported: Region | None = None  # None: no interval decides it (see supported_text)
    refuted: Region | None = None  # None: never refuted by this quantity
    unit: str = ""  # of the quantity; "" for ratios and exponents
    version: int = 1
    reason: str = ""  # why these thresholds, with the source (CLAIMS.md, a revision's measurement)
    constants: Mapping[str, float] = field(default_factory=dict)
    supported_text: str = ""  # templates over {supported}, {refuted} and the constants
    refuted_text: str = ""
    parts: tuple[Rule, ...] = ()
    combine: str = ""
    name: str = ""  # a part's name within its claim's rule

    def __post_init__(self) -> None:
        if self.supported and self.refuted and self.supported.touches(self.refuted.lo, self.refuted.hi):
            raise ValueError(f"rule {self.quantity!r}: the supported and refuted regions overlap")

    def __getitem__(self, name: str) -> float:
        """A constant of the rule, by name (``rule["step_rise"]``)."""
        try:
            return self.constants[name]
        except KeyError:
            raise KeyError(f"rule {self.quantity!r} has no constant {name!r}") from None

    def part(self, name: str) -> Rule:
        for p in self.parts:
            if p.name == name:
                return p
        raise KeyError(f"rule {self.quantity!r} has no part {name!r}")

    # ---- deciding --------------------------------------------------------------------------

    def judge(self, lo: float, hi: float) -> tuple[Outcome, Reason | None]:
        """The generic rule on an interval: supported, refuted, or inconclusive with its
        reason (``between``: the interval touches neither region; ``noisy``: it straddles
        a threshold). A NaN end is noisy: nothing is known."""
        if math.isnan(lo) or math.isnan(hi):
            return Outcome.INCONCLUSIVE, Reason.NOISY
        if self.supported and self.supported.holds(lo, hi):
            return Outcome.SUPPORTED, None
        if self.refuted and self.refuted.holds(lo, hi):
            return Outcome.REFUTED, None
        touches = any(r is not None and r.touches(lo, hi) for r in (self.supported, self.refuted))
        return Outcome.INCONCLUSIVE, (Reason.NOISY if touches else Reason.BETWEEN)

    # ---- words -----------------------------------------------------------------------------

    def _fill(self, template: str) -> str:
        values: dict[str, Any] = {k: num(v) for k, v in self.constants.items()}
        values["supported"] = self.supported.text() if self.supported else "never"
        values["refuted"] = self.refuted.text() if self.refuted else "never"
        return template.format(**values)

    def supported_words(self) -> str:
        if self.supported_text:
            return self._fill(self.supported_text)
        if self.parts:  # every part supports
            return " and ".join(p.supported_words() for p in self.parts if p.supported or p.supported_text)
        return f"{self.short} {self.supported.text()}" if self.supported else "never"

    def refuted_words(self) -> str:
        if self.refuted_text:
            return self._fill(self.refuted_text)
        if self.parts:  # any part refutes
            return " or ".join(p.refuted_words() for p in self.parts if p.refuted or p.refuted_text) or "never"
        return f"{self.short} {self.refuted.text()}" if self.refuted else "never"

    def thresholds(self) -> dict[str, Any]:
        """The thresholds in words, as the record's ``decision.thresholds`` holds them."""
        out: dict[str, Any] = {"supported": self.supported_words(), "refuted": self.refuted_words()}
        if self.parts:
            out["combine"] = self.combine or "supported if every part supports; refuted if any part refutes"
        return out

    def row(self) -> str:
        """One cell of README's claim table: the decision, fixed in advance."""
        sup, ref = self.supported_words(), self.refuted_words()
        return "; ".join(f"{words} {label}" for words, label in ((sup, "supported"), (ref, "refuted"))
                         if words != "never")

    def numbers(self) -> list[float]:
        """Every number this rule decides with (its regions' ends and its constants)."""
        out = [*(self.supported.numbers() if self.supported else []), *(self.refuted.numbers() if self.refuted else []),
               *self.constants.values()]
        for p in self.parts:
            out += p.numbers()
        return out

    def describe(self) -> dict[str, Any]:
        """The rule as data (``perflab list --json``, the provenance hash)."""
        def ends(r: Region | None) -> list[float | None] | None:  # JSON has no infinity: null
            return None if r is None else [v if math.isfinite(v) else None for v in (r.lo, r.hi)]

        out: dict[str, Any] = {"quantity": self.quantity, "version": self.version, "unit": self.unit,
                               "supported": ends(self.supported), "refuted": ends(self.refuted),
                               "constants": dict(self.constants), "thresholds": self.thresholds(),
                               "reason": self.reason}
        if self.parts:
            out["parts"] = {p.name: p.describe() for p in self.parts}
        return out


def exact(supported: str, refuted: str = "any check contradicts the claim", *, version: int = 1,
          reason: str = "CLAIMS.md: structural claims are decided by exact checks",
          constants: Mapping[str, float] | None = None) -> Rule:
    """The rule of a structural claim: supported when every check holds, refuted when one
    contradicts (decide.rules.exact_rule). Its numbers (a fault bound, a task limit) are
    constants, named in the words as {name}."""
    return Rule(quantity="exact checks", short="exact", supported_text=supported, refuted_text=refuted,
                version=version, reason=reason, constants=dict(constants or {}))
