"""A claim file's content once validated: what to run, what to read from it, and the
rule, as plain data.

The ``Definition`` is the claim as its author pre-registered it. Its ``experiment()``
(kind, metric, commands, setup, sweep, ranges, sampling) is what may not change between
runs whose verdicts are compared; ``definition_hash`` hashes it. Words (statement,
reason, mechanism) and the rule's version are not in it: rewording a statement does not
make old verdicts incomparable, and a version bump is recorded on each verdict anyway.

A Definition travels with every verdict (``evidence.facts.definition``), so a stored
record says exactly what was run and can be decided again without the file.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

from perflab.core.rule import num

KINDS = ("ratio", "scaling", "threshold")
WALL_UNIT = "ms"  # wall time is reported and thresholded in milliseconds


TIMES = ("wall", "cpu")  # the metrics cmdtime measures itself, in ms


@dataclass(frozen=True)
class Metric:
    """What one run of a command yields: its wall time (ms, fork to reap), its CPU time
    (ms, user + system, from wait4(2)'s rusage: the command and every descendant it
    waited for), or the number the regular expression's first group matches in its
    stdout, in ``unit``."""

    time: str | None = "wall"  # "wall" or "cpu"; None with a regex
    regex: str | None = None
    unit: str = WALL_UNIT

    @property
    def wall(self) -> bool:
        return self.time == "wall"

    def words(self) -> str:
        if self.time == "wall":
            return "wall time (ms)"
        if self.time == "cpu":
            return "CPU time, user + system (ms)"
        return f"the number /{self.regex}/ reads from stdout ({self.unit})"

    def to_json(self) -> Any:
        return self.time if self.time else {"regex": self.regex, "unit": self.unit}

    @classmethod
    def from_json(cls, d: Any) -> Metric:
        return cls(time=d) if d in TIMES else cls(time=None, regex=str(d["regex"]), unit=str(d["unit"]))


def _ends(r: tuple[float, float]) -> list[float | None]:
    """A range as JSON, which has no infinity: an infinite end is null (Rule.describe)."""
    return [v if math.isfinite(v) else None for v in r]


def _range(v: list[float | None]) -> tuple[float, float]:
    return (-math.inf if v[0] is None else float(v[0]), math.inf if v[1] is None else float(v[1]))


@dataclass(frozen=True)
class Definition:
    id: str
    statement: str
    kind: str  # one of KINDS
    metric: Metric
    # the commands by role: ratio {"a", "b"}; scaling and threshold {"argv"} (scaling's
    # holds "{n}"); each an argv list, run without a shell
    commands: Mapping[str, tuple[str, ...]]
    supported: tuple[float, float]
    refuted: tuple[float, float]
    n: tuple[float, ...] = ()  # scaling: the sweep
    baseline: float | None = None  # scaling: the n whose cost is subtracted (the fixed part)
    aa_n: float | None = None  # scaling: where the A/A control runs
    setup: tuple[str, ...] | None = None  # run once before sampling
    runs: int | None = None  # runs of the command per sample (None: the budget's batches)
    timeout_s: float = 60.0  # one run's limit
    pin: bool = True  # pinned to the run's CPU, as every kernel
    reason: str = ""
    mechanism: str = ""
    version: int = 1
    path: str = ""  # the claim file
    directory: str = ""  # where the commands run (the claim file's directory)

    # ---- the pre-registered experiment -----------------------------------------------

    def experiment(self) -> dict[str, Any]:
        """Everything that defines what is measured and how it is decided (EXPERIMENT_KEYS)."""
        return {
            "kind": self.kind,
            "metric": self.metric.to_json(),
            "commands": {k: list(v) for k, v in sorted(self.commands.items())},
            "setup": list(self.setup) if self.setup is not None else None,
            "n": list(self.n),
            "baseline": self.baseline,
            "aa_n": self.aa_n,
            "supported": _ends(self.supported),
            "refuted": _ends(self.refuted),
            "runs": self.runs,
            "timeout_s": self.timeout_s,
            "pin": self.pin,
        }

    @property
    def definition_hash(self) -> str:
        blob = json.dumps(self.experiment(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    # ---- as stored with each verdict -------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "statement": self.statement, **self.experiment(), "reason": self.reason,
                "mechanism": self.mechanism, "version": self.version, "path": self.path,
                "directory": self.directory}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Definition:
        names = {f.name for f in fields(cls)}
        return cls(
            id=str(d["id"]), statement=str(d["statement"]), kind=str(d["kind"]),
            metric=Metric.from_json(d["metric"]),
            commands={k: tuple(v) for k, v in d["commands"].items()},
            supported=_range(d["supported"]), refuted=_range(d["refuted"]),
            n=tuple(d.get("n") or ()), baseline=d.get("baseline"), aa_n=d.get("aa_n"),
            setup=tuple(d["setup"]) if d.get("setup") is not None else None,
            runs=d.get("runs"), timeout_s=float(d.get("timeout_s", 60.0)), pin=bool(d.get("pin", True)),
            **{k: d[k] for k in ("reason", "mechanism", "version", "path", "directory") if k in d and k in names},
        )


EXPERIMENT_KEYS = ("kind", "metric", "commands", "setup", "n", "baseline", "aa_n", "supported", "refuted", "runs",
                   "timeout_s", "pin")


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two stored definitions' experiments, in words
    ("supported: [1.8, 2.2] -> [1.7, 2.3]"), for history."""
    out = []
    for key in EXPERIMENT_KEYS:
        if old.get(key) != new.get(key):
            out.append(f"{key}: {_show(old.get(key))} -> {_show(new.get(key))}")
    return out


def _show(v: Any) -> str:
    """A stored value as the file wrote it: 20, not 20.0; an open end as inf."""
    if v is None:
        return "unset"
    if isinstance(v, list) and len(v) == 2 and all(x is None or isinstance(x, (int, float)) for x in v):
        return f"[{'-inf' if v[0] is None else num(v[0])}, {'inf' if v[1] is None else num(v[1])}]"
    return json.dumps(v)
