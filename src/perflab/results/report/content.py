"""The words and tables of a report, shared by the HTML and Markdown pages: plain
strings (not yet escaped) and rows, drawn from the typed record."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from perflab.core.record import Verdict
from perflab.engine import registry
from perflab.results.report import figures
from perflab.results.sources import Source
from perflab.results.terminal import fmt_detail
from perflab.userclaims.build import from_record

HOST_ROWS = (("hostname", "host name"), ("cpu_model", "CPU"), ("cores_online", "cores online"),
             ("cpus_allowed", "CPUs allowed"), ("caches", "caches"), ("kernel", "kernel"), ("glibc", "C library"),
             ("python", "Python"), ("virtualization", "virtualization"), ("root", "root"),
             ("capabilities", "capabilities"), ("perf_event_paranoid", "perf_event_paranoid"),
             ("thp", "transparent huge pages"), ("clocksource", "clock source"), ("rlimit_nofile", "RLIMIT_NOFILE"),
             ("mem_available_bytes", "MemAvailable"), ("mitigations", "CPU vulnerabilities"),
             ("machine", "machine id (keyed hash)"))


@dataclass
class Item:
    """One claim of one run in the report, with its anchor and what to draw."""

    source: Source
    verdict: Verdict
    anchor: str
    key: str  # prefix of its figures' keys (SVG ids, PNG names)
    plan: figures.Plan


def num(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def interval(ci) -> str:
    return f"[{num(ci[0])}, {num(ci[1])}]" if ci else ""


def headline(v: Verdict) -> tuple[str, str]:
    """(the decision quantity, its value [CI]) for the verdict table."""
    d = v.decision
    if d is None:
        return "", ""
    return d.quantity, (num(d.value) + (" " + interval(d.ci) if d.ci else "")) if d.value is not None else "n/a"


def outcome_words(v: Verdict) -> str:
    return v.outcome.value + (f" ({v.reason.value})" if v.reason else "")


def decision_rows(v: Verdict) -> list[tuple[str, str]]:
    d = v.decision
    if d is None:
        return []
    rows = [("decided on", d.quantity), ("value", num(d.value) + (f" {interval(d.ci)}" if d.ci else "")),
            ("the rule alone", d.outcome.value + (f" ({d.inconclusive.value})" if d.inconclusive else ""))]
    for key, words in d.thresholds.items():
        if isinstance(words, dict):
            part = f"supported {words.get('supported', '?')}; refuted {words.get('refuted', '?')}; " \
                   f"value {num(words.get('value'))} {interval(words.get('ci'))}; {words.get('outcome', '')}"
            rows.append((f"part: {key}", part))
        else:
            rows.append((key, str(words)))
    rows.append(("rule version", str(d.rule_version)))
    if d.reason:
        rows.append(("why", d.reason))
    if v.reason:
        rows.append(("inconclusive because", v.reason.value + (f": {v.action}" if v.action else "")))
    return rows


def control_rows(v: Verdict) -> list[tuple[str, str, str, str]]:
    """(name, kind, passed, its numbers) per control."""
    out = []
    for c in v.controls:
        passed = {True: "passed", False: "FAILED", None: "not evaluated"}[c.passed]
        out.append((c.name, c.kind, passed, "; ".join(f"{k}: {_detail(val)}" for k, val in c.detail.items())))
    return out


def check_rows(v: Verdict) -> list[tuple[str, str, str, str, str]]:
    """A structural claim's exact checks: (name, expected, observed, holds, note)."""
    out = []
    for c in v.evidence.get("checks") or []:
        if isinstance(c, dict):
            holds = {True: "holds", False: "FAILS", None: "not evaluated"}.get(c.get("holds"), str(c.get("holds")))
            out.append((str(c.get("name", "")), _detail(c.get("expected")), _detail(c.get("observed")), holds,
                        str(c.get("note", ""))))
    return out


def _detail(value: Any) -> str:
    """A control's or check's detail as the terminal shows it (results/terminal.py); none: empty."""
    return "" if value is None else fmt_detail(value)


def host_rows(host) -> list[tuple[str, str]]:
    facts = host.to_json()
    rows = []
    for key, label in HOST_ROWS:
        value = facts.get(key)
        if key == "caches" and isinstance(value, list):
            value = ", ".join(f"L{c.get('level')} {c.get('type', '')} {c.get('size', '')}" for c in value
                              if isinstance(c, dict))
        elif key == "mitigations" and isinstance(value, dict):
            value = "; ".join(f"{k}: {x}" for k, x in value.items())
        elif key == "mem_available_bytes" and isinstance(value, int):
            value = figures.binary_size(value)
        rows.append((label, "unknown" if value is None else _detail(value)))
    for key, value in facts.items():
        if key not in dict(HOST_ROWS):
            rows.append((key, json.dumps(value) if not isinstance(value, str) else value))
    return rows


def host_line(host) -> str:
    return (f"{host.hostname or '?'}: {host.cpu_model or '?'}, {host.cores_online or '?'} cores, "
            f"{host.kernel or '?'}, THP {host.thp or '?'}")


def run_rows(src: Source) -> tuple[str, str, str, str, str]:
    """(run, started, status and budget, host, claims) for the table of runs."""
    info = src.info
    where = f"file {src.path}" if src.path else ""
    started = info.started_at if info else where
    status = f"{info.status}, budget {info.budget}, seed {info.seed}" if info else "from a file"
    return (src.run_id or "(no id)", started, status, host_line(src.host), str(len(src.verdicts)))


def anchor(index: int, claim: str) -> str:
    return f"c{index}-" + re.sub(r"[^A-Za-z0-9_.-]", "_", claim)


def items(srcs: list[Source]) -> list[Item]:
    """Every verdict of every source, with the rule of its claim: registered, or rebuilt from
    the definition a claim file's record carries (else none)."""
    rules = {c.id: c.rule for c in registry.all_claims()}
    out = []
    for i, src in enumerate(srcs):
        for j, v in enumerate(src.verdicts):
            key = f"f{i}-{j}"
            rule = rules.get(v.claim)
            if rule is None:  # a claim file's record carries its definition: its rule, rebuilt
                built = from_record(v)
                rule = built.rule if built else None
            out.append(Item(src, v, anchor(i, v.claim), key, figures.plan(v, rule, key)))
    return out


def counts(its: list[Item]) -> str:
    tally: dict[str, int] = {}
    for it in its:
        tally[it.verdict.outcome.value] = tally.get(it.verdict.outcome.value, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in tally.items())
