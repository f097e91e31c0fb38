"""Terminal rendering with rich: a verdict table and, per claim, its evidence."""

from __future__ import annotations

from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

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


def render(records: list[dict[str, Any]], out: TextIO, detail: bool = True) -> None:
    console = Console(file=out, highlight=False, soft_wrap=False, width=max(120, Console(file=out).width))

    def say(*args, **kw) -> None:  # data, not markup: "[heap]" must stay as it is
        console.print(*args, markup=False, **kw)

    table = Table(title="perflab verdicts", show_lines=False)
    table.add_column("claim", no_wrap=True)
    table.add_column("outcome")
    table.add_column("decided on: value [CI]")
    table.add_column("controls")
    table.add_column("time", justify="right")
    for rec in records:
        dec = rec.get("decision") or {}
        ci = dec.get("ci")
        value = fmt(dec.get("value")) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")
        controls = ", ".join(
            f"{name} {'ok' if c.get('passed') else 'FAILED' if c.get('passed') is False else 'n/a'}"
            for name, c in (rec.get("controls") or {}).items()
        ) or "-"
        decided = f"{short(dec['quantity'])}: {value}" if dec else rec["summary"]
        table.add_row(
            escape(rec["claim"]),
            f"[{STYLE.get(rec['outcome'], '')}]{rec['outcome']}[/]",
            escape(decided),
            escape(controls),
            f"{rec['duration_s']:.1f} s",
        )
    console.print(table)
    if not detail:
        return
    for rec in records:
        console.rule(escape(f"{rec['claim']}: {rec['outcome']}"))
        say(rec.get("statement", ""), style="italic")
        say(rec["summary"])
        thresholds = (rec.get("decision") or {}).get("thresholds") or {}
        parts = {k: v for k, v in thresholds.items() if isinstance(v, dict) and "outcome" in v}
        flat = "; ".join(f"{k}: {fmt_detail(v)}" for k, v in thresholds.items() if k not in parts and (
            not isinstance(v, dict) or not any(isinstance(x, (dict, list)) for x in v.values())))
        if flat:
            say("thresholds (fixed in advance): " + flat)
        if parts:  # a rule made of parts (verdict.all_of, one per allocator and pattern): each with its outcome
            say("decided on every part (thresholds fixed in advance):")
            for k, part in parts.items():
                got = f"{fmt(part['value'])} [{fmt(part['ci'][0])}, {fmt(part['ci'][1])}]" if part.get("ci") else "n/a"
                rules = "; ".join(f"{rk}: {rv}" for rk, rv in part.items()
                                  if rk not in ("value", "ci", "outcome") and not isinstance(rv, dict))
                say(f"  {k}: {got} -> {part.get('outcome', '?')}" + (f" ({rules})" if rules else ""))
        for s in rec.get("series", []):
            if s.get("role") == "control" and s["name"].startswith("a/a"):
                continue
            pts = "  ".join(
                (f"{p['x']}: " if p["x"] is not None else "") + f"{fmt(p['median'])} [{fmt(p['ci'][0])}, {fmt(p['ci'][1])}] n={p['n']}"
                for p in s["points"]
            )
            label = f"{s['name']} ({s['unit']}{', by ' + s['x'] if s['x'] else ''})"
            say(f"  {label}: {pts}")
            if "growth_exponent" in s:
                g, f = s["growth_exponent"], s.get("affine_fit")
                line = f"    growth exponent (top decade) {g['value']:.3f} [{g['ci'][0]:.3f}, {g['ci'][1]:.3f}]"
                if f:
                    line += f"; fit a + b*N: a = {fmt(f['a']['value'])} {s['unit']}, b = {fmt(f['b']['value'])} {s['unit']} per {s['x']}"
                say(line)
        for name, c in (rec.get("controls") or {}).items():
            say(f"  control {name} ({c.get('kind')}): {'passed' if c.get('passed') else 'FAILED' if c.get('passed') is False else 'not evaluated'} "
                          + ", ".join(f"{k}={fmt_detail(v)}" for k, v in c.items() if k not in ("kind", "passed")))
        ev = rec.get("evidence") or {}
        if "stderr" in ev and ev["stderr"]:
            say("  kernel stderr:\n" + ev["stderr"])
        if ev.get("overheads"):
            say("  subtracted overheads: " + ", ".join(f"{k} {fmt(v)}" for k, v in ev["overheads"].items()))
        if ev.get("rule"):
            say("  found by the rule: " + ", ".join(f"{k} {fmt_detail(v)}" for k, v in ev["rule"].items()))
        if ev.get("derived"):
            say("  derived: " + ", ".join(f"{k} {fmt_detail(v)}" for k, v in ev["derived"].items()))
        for chk in ev.get("checks", []):
            mark = {True: "holds", False: "CONTRADICTS", None: "not evaluated"}[chk["holds"]]
            say(f"  check {chk['name']}: {mark} (expected {fmt_detail(chk['expected'])}, "
                          f"observed {fmt_detail(chk['observed'])}){' - ' + chk['note'] if chk.get('note') else ''}")
        if "rounds" in ev:
            say(f"  rounds: {ev['rounds']} ({'stopped early' if ev.get('stopped_early') else 'full budget'}), pin CPU {ev.get('cpu')}")
        say(f"  why: {rec['explanation']}")
        say(f"  rerun: {rec['rerun']}", style="dim")
