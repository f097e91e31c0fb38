"""The record of a verdict: typed, versioned, portable.

One ``Verdict`` is what ``perflab run --json`` prints as one line, what the database keeps
and what ``show``, ``rejudge``, ``compare`` and ``import`` read back. Its shape is fixed by
``SCHEMA_VERSION`` and described by the JSON Schema in ``core/schema.py`` (``perflab
schema`` prints it). With its raw samples (``--samples``, and always in the database) a
record can be stored and decided again on another machine: every point keeps the value
of each fresh process, and ``evidence.facts`` / ``evidence.observed`` keep what the plan
and the exact checks read from the host.

Versions:
  1  perflab's first JSON lines: no ``schema_version``; points have median, CI and n only.
  2  ``schema_version``; ``reason`` (why an inconclusive is inconclusive) and ``action``;
     ``decision.rule`` (the rule and version that decided it); raw ``samples`` on each
     point; ``samples`` (kernel records) with --samples.
Reading a version-1 line upgrades it (``from_json``); a newer version than this
perflab's is refused (``RecordError``), never guessed at.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from perflab.core.series import AffineFit, Fit, Point, Sample, Series

__all__ = ["SCHEMA_VERSION", "RecordError", "Outcome", "Reason", "ACTIONS", "Fit", "AffineFit", "Point", "Series",
           "Sample", "Control", "Decision", "Host", "Verdict", "upgrade_v1", "read_lines"]

SCHEMA_VERSION = 2


class RecordError(ValueError):
    """A JSON object that is not a perflab record this version can read (the message says why)."""


class Outcome(str, enum.Enum):
    """The five outcomes of CLAIMS.md, "How a verdict is decided"."""

    SUPPORTED = "supported"
    REFUTED = "refuted"
    INCONCLUSIVE = "inconclusive"
    SKIPPED = "skipped"
    ERROR = "error"

    @property
    def decisive(self) -> bool:
        return self in (Outcome.SUPPORTED, Outcome.REFUTED)


class Reason(str, enum.Enum):
    """Why a verdict is inconclusive (CLAIMS.md): exactly one, stored and shown."""

    BETWEEN = "between"  # the interval lies in the gap between the thresholds: a smaller effect
    NOISY = "noisy"  # the interval straddles a threshold: more samples or a quieter host could decide
    CONTROL = "control"  # a control failed (A/A spread, positive control, a check of the setup)
    CAPPED = "capped"  # the host could not give the plan what it needed (a limit, with its value)


ACTIONS = {
    Reason.BETWEEN: ("the interval lies between the two thresholds: the effect is not the size the claim says "
                     "(nor what would refute it); more samples will not change that"),
    Reason.NOISY: "rerun with --rigorous, or on a quieter machine",
    Reason.CONTROL: "rerun later on a quieter machine; a failed positive control means the probe cannot see the effect here",
    Reason.CAPPED: "raise the named limit and rerun",
}


@dataclass
class Control:
    """A control's result. ``passed`` is None when the control could not be evaluated."""

    name: str
    kind: str  # "negative" (A/A) | "positive"
    passed: bool | None
    detail: dict[str, Any] = field(default_factory=dict)

    def why(self) -> str:
        """Why it did not pass, in words (empty when it passed): its own ``why`` or, for one
        that could not be evaluated, its ``reason``; otherwise what it expected against what
        it observed, so that no failed control leaves a verdict without a reason."""
        if self.passed is True:
            return ""
        d = self.detail
        if d.get("why"):
            return str(d["why"])
        if self.passed is None:
            return f"could not be evaluated ({d['reason']})" if d.get("reason") else "could not be evaluated"
        shown = {k: v for k, v in d.items() if k not in ("expected", "reason") and not isinstance(v, (list, dict))}
        observed = ", ".join(f"{k} {v}" for k, v in shown.items())
        expected = f"expected {d['expected']}" if d.get("expected") else "failed"
        return f"{expected}; observed {observed}" if observed else expected

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "passed": self.passed, **self.detail}

    @classmethod
    def from_json(cls, name: str, d: Mapping[str, Any]) -> Control:
        detail = {k: v for k, v in d.items() if k not in ("kind", "passed")}
        return cls(name, d.get("kind", "positive"), d.get("passed"), detail)


@dataclass
class Decision:
    """What the rule said on the evidence, before the controls had their say."""

    outcome: Outcome
    quantity: str
    value: float | None
    ci: tuple[float, float] | None
    thresholds: dict[str, Any]  # the rule's thresholds in words (core/rule.py), parts included
    reason: str = ""  # in words: what decided it, or why nothing could
    inconclusive: Reason | None = None  # set exactly when outcome is inconclusive
    rule_version: int = 1
    # what the rule computed on the way that is not a threshold (a ladder's table, steps):
    # stored as the record's evidence["rule"]
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "value": self.value, "ci": list(self.ci) if self.ci else None,
                "thresholds": self.thresholds, "outcome": self.outcome.value, "reason": self.reason,
                "inconclusive": self.inconclusive.value if self.inconclusive else None,
                "rule": {"version": self.rule_version}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None, evidence: Mapping[str, Any] | None = None) -> Decision | None:
        if not d:
            return None
        why = d.get("inconclusive")
        return cls(Outcome(d["outcome"]), d.get("quantity", ""), d.get("value"),
                   tuple(d["ci"]) if d.get("ci") else None, dict(d.get("thresholds") or {}), d.get("reason", ""),
                   Reason(why) if why else None, int((d.get("rule") or {}).get("version", 1)),
                   dict(evidence or {}))


HOST_FIELDS = ("hostname", "cpu_model", "cores_online", "cpus_allowed", "caches", "kernel", "glibc", "python",
               "virtualization", "root", "capabilities", "perf_event_paranoid", "thp", "clocksource",
               "rlimit_nofile", "mem_available_bytes")
FINGERPRINT_FIELDS = ("hostname", "cpu_model", "cores_online", "kernel", "glibc", "virtualization")


@dataclass
class Host:
    """The machine facts recorded with every verdict (observe/host.py collects them).
    Facts a newer perflab records are kept in ``extra`` and written back unchanged."""

    hostname: str | None = None
    cpu_model: str | None = None
    cores_online: int | None = None
    cpus_allowed: list[int] | None = None
    caches: list[dict[str, Any]] = field(default_factory=list)
    kernel: str | None = None
    glibc: str | None = None
    python: str | None = None
    virtualization: str | None = None
    root: bool | None = None
    capabilities: list[str] | None = None
    perf_event_paranoid: int | None = None
    thp: str | None = None
    clocksource: str | None = None
    rlimit_nofile: dict[str, int] | None = None
    mem_available_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in HOST_FIELDS}, **self.extra}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Host:
        d = dict(d or {})
        return cls(**{k: d.pop(k) for k in HOST_FIELDS if k in d}, extra=d)

    def fingerprint(self) -> str:
        """Stable id of the machine configuration results may be compared across."""
        blob = json.dumps({k: getattr(self, k) for k in FINGERPRINT_FIELDS}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---- the verdict ----------------------------------------------------------------------------


@dataclass
class Verdict:
    claim: str
    outcome: Outcome
    summary: str
    statement: str = ""
    explanation: str = ""
    rerun: str = ""
    reason: Reason | None = None  # why it is inconclusive; None for every other outcome
    action: str = ""  # what would change an inconclusive
    params: dict[str, Any] = field(default_factory=dict)
    decision: Decision | None = None
    series: list[Series] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    host: Host = field(default_factory=Host)
    run_id: str = ""
    duration_s: float = 0.0
    source_hash: str = ""
    perflab_version: str = ""
    samples: list[Sample] = field(default_factory=list)  # kernel records, one per process
    schema_version: int = SCHEMA_VERSION

    def control(self, name: str) -> Control | None:
        return next((c for c in self.controls if c.name == name), None)

    def series_named(self, name: str) -> Series | None:
        return next((s for s in self.series if s.name == name), None)

    @property
    def has_samples(self) -> bool:
        return bool(self.series) and all(s.has_samples for s in self.series)

    def to_json(self, samples: bool = False) -> dict[str, Any]:
        """The JSON line. ``samples``: raw values on every point and the kernel records."""
        out: dict[str, Any] = {
            "schema_version": self.schema_version,
            "claim": self.claim,
            "statement": self.statement,
            "outcome": self.outcome.value,
            "reason": self.reason.value if self.reason else None,
            "action": self.action,
            "summary": self.summary,
            "explanation": self.explanation,
            "rerun": self.rerun,
            "params": self.params,
            "series": [s.to_json(samples) for s in self.series],
            "decision": self.decision.to_json() if self.decision else None,
            "controls": {c.name: c.to_json() for c in self.controls},
            "evidence": self.evidence,
            "host": self.host.to_json(),
            "run_id": self.run_id,
            "duration_s": round(self.duration_s, 3),
            "source_hash": self.source_hash,
            "perflab_version": self.perflab_version,
        }
        if samples:
            out["samples"] = [s.to_json() for s in self.samples]
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Verdict:
        """Read a record of any version up to SCHEMA_VERSION (version 1 upgraded)."""
        if not isinstance(d, Mapping):
            raise RecordError(f"a perflab record is a JSON object, not {type(d).__name__}")
        version = d.get("schema_version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise RecordError(f"schema_version must be a positive integer, got {version!r}")
        if version > SCHEMA_VERSION:
            raise RecordError(f"record of schema version {version}, newer than this perflab's {SCHEMA_VERSION}: "
                              "upgrade perflab to read it")
        try:
            if version == 1:
                d = upgrade_v1(d)
            outcome = Outcome(d["outcome"])
            reason = Reason(d["reason"]) if d.get("reason") else None
            evidence = dict(d.get("evidence") or {})
            return cls(
                claim=str(d["claim"]),
                outcome=outcome,
                summary=str(d.get("summary", "")),
                statement=str(d.get("statement", "")),
                explanation=str(d.get("explanation", "")),
                rerun=str(d.get("rerun", "")),
                reason=reason,
                action=str(d.get("action", "")),
                params=dict(d.get("params") or {}),
                decision=Decision.from_json(d.get("decision"), evidence.get("rule")),
                series=[Series.from_json(s) for s in d.get("series") or []],
                controls=[Control.from_json(k, v) for k, v in (d.get("controls") or {}).items()],
                evidence=evidence,
                host=Host.from_json(d.get("host")),
                run_id=str(d.get("run_id", "")),
                duration_s=float(d.get("duration_s") or 0.0),
                source_hash=str(d.get("source_hash", "")),
                perflab_version=str(d.get("perflab_version", "")),
                samples=[Sample.from_json(s) for s in d.get("samples") or []],
                schema_version=SCHEMA_VERSION,
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise RecordError(f"not a perflab record ({type(exc).__name__}: {exc})") from None


def upgrade_v1(d: Mapping[str, Any]) -> dict[str, Any]:
    """A version-1 line as version 2: no raw samples (points keep median, CI and n); the
    inconclusive reason is not known ("decided by rule version 1" is all that is)."""
    out = dict(d)
    dec = out.get("decision")
    if dec:
        dec = dict(dec)
        dec.setdefault("rule", {"version": 1})
        dec.setdefault("inconclusive", None)
        out["decision"] = dec
    out.setdefault("reason", None)
    out.setdefault("action", "")
    out["schema_version"] = 2
    return out


def read_lines(lines: Iterable[str], source: str = "input") -> list[Verdict]:
    """JSON Lines of records (blank lines skipped); RecordError names the line."""
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise RecordError(f"{source}, line {number}: not JSON ({exc})") from None
        try:
            out.append(Verdict.from_json(obj))
        except RecordError as exc:
            raise RecordError(f"{source}, line {number}: {exc}") from None
    return out
