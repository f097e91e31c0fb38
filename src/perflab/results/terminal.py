"""Terminal rendering with rich: a verdict table and, per claim, its evidence."""

from __future__ import annotations

from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from perflab.core.record import Verdict
from perflab.core.safe import safe_tree

STYLE = {
    "supported": "bold green",
    "refuted": "bold red",
    "inconclusive": "yellow",
    "skipped": "dim",
    "error": "bold magenta",
}


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    else:
        text = str(value)
    return f"{text} {unit}".rstrip()


def short(quantity: str) -> str:
    return quantity.replace(" over the top decade of ", " by ").replace("growth exponent of ", "exponent ")


def fmt_detail(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(fmt_detail(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {fmt_detail(v)}" for k, v in value.items()) + "}"
    return str(value)


def outcome_text(v: Verdict) -> str:
    return v.outcome.value + (f" ({v.reason.value})" if v.reason else "")


def render(verdicts: list[Verdict], out: TextIO, detail: bool = True) -> None:
    """The verdict table and, with ``detail``, each verdict's evidence. Every string is
    made terminal-safe first (core/safe.py): a stored record may come from anywhere."""
    verdicts = [Verdict.from_json(safe_tree(v.to_json())) for v in verdicts]
    console = Console(file=out, highlight=False, soft_wrap=False, width=max(120, Console(file=out).width))

    def say(*args, **kw) -> None:  # data, not markup: "[heap]" must stay as it is
        console.print(*args, markup=False, **kw)

    table = Table(title="perflab verdicts", show_lines=False)
    table.add_column("claim", no_wrap=True)
    table.add_column("outcome")
    table.add_column("decided on: value [CI]")
    table.add_column("controls")
    table.add_column("time", justify="right")
    for v in verdicts:
        dec = v.decision
        value = ""
        if dec:
            value = fmt(dec.value) + (f" [{fmt(dec.ci[0])}, {fmt(dec.ci[1])}]" if dec.ci else "")
        controls = ", ".join(
            f"{c.name} {'ok' if c.passed else 'FAILED' if c.passed is False else 'n/a'}" for c in v.controls
        ) or "-"
        decided = f"{short(dec.quantity)}: {value}" if dec else v.summary
        table.add_row(
            escape(v.claim),
            f"[{STYLE.get(v.outcome.value, '')}]{escape(outcome_text(v))}[/]",
            escape(decided),
            escape(controls),
            f"{v.duration_s:.1f} s",
        )
    console.print(table)
    if not detail:
        return
    for v in verdicts:
        console.rule(escape(f"{v.claim}: {outcome_text(v)}"))
        say(v.statement, style="italic")
        say(v.summary)
        if v.action:
            say(f"what would change it: {v.action}")
        thresholds = (v.decision.thresholds if v.decision else None) or {}
        parts = {k: p for k, p in thresholds.items() if isinstance(p, dict) and "outcome" in p}
        flat = "; ".join(f"{k}: {fmt_detail(p)}" for k, p in thresholds.items() if k not in parts and (
            not isinstance(p, dict) or not any(isinstance(x, (dict, list)) for x in p.values())))
        if flat:
            rule = f", rule version {v.decision.rule_version}" if v.decision else ""
            say(f"thresholds (fixed in advance{rule}): " + flat)
        if parts:  # a rule made of parts (decide.rules.all_of, one per allocator and pattern): each with its outcome
            say("decided on every part (thresholds fixed in advance):")
            for k, part in parts.items():
                got = f"{fmt(part['value'])} [{fmt(part['ci'][0])}, {fmt(part['ci'][1])}]" if part.get("ci") else "n/a"
                rules = "; ".join(f"{rk}: {rv}" for rk, rv in part.items()
                                  if rk not in ("value", "ci", "outcome", "inconclusive") and not isinstance(rv, dict))
                why = f" ({part['inconclusive']})" if part.get("inconclusive") else ""
                say(f"  {k}: {got} -> {part.get('outcome', '?')}{why}" + (f" ({rules})" if rules else ""))
        for s in v.series:
            if s.role == "control" and s.name.startswith("a/a"):
                continue
            pts = "  ".join(
                (f"{p.x}: " if p.x is not None else "") + f"{fmt(p.median)} [{fmt(p.ci[0])}, {fmt(p.ci[1])}] n={p.n}"
                for p in s.points
            )
            say(f"  {s.name} ({s.unit}{', by ' + s.x if s.x else ''}): {pts}")
            if s.growth_exponent:
                g, f = s.growth_exponent, s.affine_fit
                line = f"    growth exponent (top decade) {g.value:.3f} [{g.lo:.3f}, {g.hi:.3f}]"
                if f:
                    line += f"; fit a + b*N: a = {fmt(f.a.value)} {s.unit}, b = {fmt(f.b.value)} {s.unit} per {s.x}"
                say(line)
        for c in v.controls:
            state = "passed" if c.passed else "FAILED" if c.passed is False else "not evaluated"
            say(f"  control {c.name} ({c.kind}): {state} " + ", ".join(f"{k}={fmt_detail(x)}" for k, x in c.detail.items()))
        ev = v.evidence
        if ev.get("stderr"):
            say("  kernel stderr:\n" + ev["stderr"])
        if ev.get("overheads"):
            say("  subtracted overheads: " + ", ".join(f"{k} {fmt(x)}" for k, x in ev["overheads"].items()))
        if ev.get("facts"):
            say("  the plan found: " + ", ".join(f"{k} {fmt_detail(x)}" for k, x in ev["facts"].items()))
        if ev.get("rule"):
            say("  found by the rule: " + ", ".join(f"{k} {fmt_detail(x)}" for k, x in ev["rule"].items()))
        if ev.get("derived"):
            say("  derived: " + ", ".join(f"{k} {fmt_detail(x)}" for k, x in ev["derived"].items()))
        for chk in ev.get("checks", []):
            mark = {True: "holds", False: "CONTRADICTS", None: "not evaluated"}[chk["holds"]]
            say(f"  check {chk['name']}: {mark} (expected {fmt_detail(chk['expected'])}, "
                f"observed {fmt_detail(chk['observed'])}){' - ' + chk['note'] if chk.get('note') else ''}")
        if "rounds" in ev:
            say(f"  rounds: {ev['rounds']} ({'stopped early' if ev.get('stopped_early') else 'full budget'}), "
                f"pin CPU {ev.get('cpu')}")
        say(f"  why: {v.explanation}")
        say(f"  rerun: {v.rerun}", style="dim")
