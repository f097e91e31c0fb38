"""Records as other tools read them: CSV (long form), JSON Lines, OpenMetrics text.

Each function takes sources (results/sources.py) and returns the whole text, so that a
file is written whole or not at all (results/output.py).

- CSV (RFC 4180 as Python's csv module writes it): one row per point of every series,
  the columns in ``CSV_COLUMNS``. A text cell that a spreadsheet would run as a formula
  (starting with ``= + - @``, a tab or a carriage return) gets a leading ``'``, as OWASP
  "CSV Injection" recommends; numbers are written as numbers.
- JSON Lines: the records themselves, as ``perflab show --json`` prints them.
- OpenMetrics text (openmetrics.io, "OpenMetrics 1.0", "Text Format"): names with the
  ``perflab_`` prefix, values in base units (seconds, bytes) with a ``# UNIT`` line, every
  family's samples together, ``# EOF`` last. ``perflab_verdict_info`` is a gauge of value
  1, as node_exporter's ``node_uname_info`` is, so that the Prometheus text format
  0.0.4 that node_exporter's textfile collector parses reads the same file (a ``# UNIT``
  line and ``# EOF`` are comments there). No timestamps: the textfile collector refuses
  them (node_exporter README, "Textfile Collector").
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Iterable

from perflab.core.record import SCHEMA_VERSION, Verdict
from perflab.results.sources import Source

CSV_COLUMNS = ("run", "host", "claim", "series", "x", "median", "ci_lo", "ci_hi", "n", "unit", "schema_version",
               "role", "outcome", "host_fingerprint")
FORMATS = ("csv", "jsonl", "openmetrics")


def _cell(value: Any) -> Any:
    """A cell no spreadsheet runs as a formula (OWASP, "CSV Injection")."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _x(x: Any) -> Any:
    return "" if x is None else x


def csv_text(srcs: Iterable[Source]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")  # RFC 4180, section 2: CRLF
    w.writerow(CSV_COLUMNS)
    for src in srcs:
        host = src.host
        for v in src.verdicts:
            for s in v.series:
                for p in s.points:
                    w.writerow([_cell(src.run_id), _cell(host.hostname or ""), _cell(v.claim), _cell(s.name),
                                _cell(_x(p.x)), p.median, p.ci[0], p.ci[1], p.n, _cell(s.unit), v.schema_version,
                                s.role, v.outcome.value, host.fingerprint()])
    return out.getvalue()


def jsonl_text(srcs: Iterable[Source], samples: bool = False) -> str:
    return "".join(json.dumps(v.to_json(samples=samples)) + "\n" for src in srcs for v in src.verdicts)


# ---- OpenMetrics ------------------------------------------------------------------------

# unit (or the part before "/" of a unit per something) -> (base unit, factor)
BASE_UNITS = {"ns": ("seconds", 1e-9), "us": ("seconds", 1e-6), "µs": ("seconds", 1e-6), "ms": ("seconds", 1e-3),
              "s": ("seconds", 1.0), "bytes": ("bytes", 1.0), "B": ("bytes", 1.0), "KiB": ("bytes", 1024.0),
              "MiB": ("bytes", 1024.0**2), "GiB": ("bytes", 1024.0**3)}


def base_unit(unit: str) -> tuple[str | None, float, str]:
    """(base unit or None, factor to it, what it is per): "ns/hop" -> ("seconds", 1e-9, "hop")."""
    head, _, per = unit.partition("/")
    head = head.strip()
    if head in BASE_UNITS:
        base, factor = BASE_UNITS[head]
        return base, factor, per.strip()
    return None, 1.0, ""


def _escape(value: Any) -> str:
    """A label value (OpenMetrics ABNF: escaped-string escapes \\, " and newline)."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _label_x(x: Any) -> str:
    if x is None:
        return ""
    return json.dumps(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


class _Families:
    """Metric families in the order first used, each family's samples together."""

    def __init__(self) -> None:
        self.meta: dict[str, tuple[str, str, str | None]] = {}
        self.samples: dict[str, list[str]] = {}

    def add(self, family: str, kind: str, help_text: str, unit: str | None, labels: dict[str, Any],
            value: float, sample_name: str | None = None) -> None:
        if family not in self.meta:
            self.meta[family] = (kind, help_text, unit)
            self.samples[family] = []
        body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        self.samples[family].append(f"{sample_name or family}{{{body}}} {_number(value)}")

    def text(self) -> str:
        lines = []
        for family, (kind, help_text, unit) in self.meta.items():
            lines.append(f"# TYPE {family} {kind}")
            if unit:
                lines.append(f"# UNIT {family} {unit}")
            lines.append(f"# HELP {family} {help_text}")
            lines += self.samples[family]
        return "\n".join(lines + ["# EOF"]) + "\n"


def openmetrics_text(srcs: Iterable[Source]) -> str:
    fam = _Families()
    for src in srcs:
        host = src.host.hostname or ""
        for v in src.verdicts:
            base = {"run": src.run_id, "host": host, "claim": v.claim}
            _verdict_metrics(fam, base, v)
            for s in v.series:
                unit, factor, per = base_unit(s.unit)
                family = f"perflab_point_{unit}" if unit else "perflab_point"
                for p in s.points:
                    labels = {**base, "series": s.name, "role": s.role, "x": _label_x(p.x)}
                    labels |= {"per": per} if unit else {"unit": s.unit}
                    for stat, value in (("median", p.median), ("ci_lo", p.ci[0]), ("ci_hi", p.ci[1])):
                        fam.add(family, "gauge", "median of the per-process samples of a point, and its CI"
                                + ("" if unit else " (in the series' own unit, label unit)"),
                                unit, {**labels, "stat": stat}, value * factor)
    return fam.text()


def _verdict_metrics(fam: _Families, base: dict[str, Any], v: Verdict) -> None:
    d = v.decision
    fam.add("perflab_verdict_info", "gauge", "a claim's verdict (value 1): outcome, inconclusive reason, rule version",
            None, {**base, "outcome": v.outcome.value, "reason": v.reason.value if v.reason else "",
                   "rule_version": d.rule_version if d else "", "schema_version": SCHEMA_VERSION}, 1.0)
    fam.add("perflab_claim_duration_seconds", "gauge", "wall time the claim took", "seconds", base, v.duration_s)
    if d is not None and d.value is not None:
        quantity = {**base, "quantity": d.quantity}
        fam.add("perflab_decision", "gauge", "the decision quantity (its own unit) and its CI", None,
                {**quantity, "stat": "value"}, float(d.value))
        if d.ci:
            fam.add("perflab_decision", "gauge", "", None, {**quantity, "stat": "ci_lo"}, float(d.ci[0]))
            fam.add("perflab_decision", "gauge", "", None, {**quantity, "stat": "ci_hi"}, float(d.ci[1]))


def render(fmt: str, srcs: list[Source], samples: bool = False) -> str:
    if fmt == "csv":
        return csv_text(srcs)
    if fmt == "jsonl":
        return jsonl_text(srcs, samples)
    if fmt == "openmetrics":
        return openmetrics_text(srcs)
    raise ValueError(f"unknown export format {fmt!r}")
