"""The HTML report: one self-contained file (inline CSS and SVG; no script, no font, no
request to anything). Every string from a record is escaped for HTML (html.escape) after
being made safe as the terminal shows it (core/safe.py), so a stored record from another
machine cannot add markup, a script, or reorder the text around it."""

from __future__ import annotations

import datetime as dt
import html
from typing import Iterable

from perflab import __version__
from perflab.core.safe import safe
from perflab.results.report import content, draw
from perflab.results.report.content import Item
from perflab.results.sources import Source

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1100px;
padding:0 1.2em 3em;color:#1b1b1b;background:#fff}
h1{margin:.8em 0 .2em}h2{margin:1.6em 0 .3em;padding-top:.4em;border-top:2px solid #ddd}h3{margin:1.1em 0 .3em}
table{border-collapse:collapse;margin:.4em 0;font-size:13px}th,td{border:1px solid #ddd;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;white-space:nowrap}
.badge{display:inline-block;padding:0 .5em;border-radius:.6em;font-size:12px;font-weight:600;color:#fff;
vertical-align:middle}.supported{background:#1a7f37}.refuted{background:#c62828}.inconclusive{background:#b26a00}
.skipped{background:#777}.error{background:#8e24aa}.note{color:#555;font-style:italic}
figure{margin:.6em 0 1em}figcaption{font-size:12px;color:#444}svg.plot{max-width:100%;height:auto}
svg.plot text{font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif!important}
pre{background:#f6f8fa;padding:.5em .7em;overflow-x:auto;white-space:pre-wrap}
.statement{font-size:16px}dl.kv{display:grid;grid-template-columns:minmax(8em,max-content) minmax(0,1fr);gap:.15em 1em;margin:.3em 0}
dl.kv dt{color:#555;max-width:22em}dl.kv dd{margin:0}a{color:#0b57d0}
@media print{h2{break-before:page}figure{break-inside:avoid}}
"""


def h(text) -> str:
    return html.escape(safe(str(text)), quote=True)


def _rows(rows: Iterable[tuple], head: tuple[str, ...]) -> str:
    out = ["<table><thead><tr>", *(f"<th>{h(c)}</th>" for c in head), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{h(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _kv(rows: Iterable[tuple[str, str]]) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{h(k)}</dt><dd>{h(v)}</dd>" for k, v in rows) + "</dl>"


def _badge(outcome: str, words: str | None = None) -> str:
    return f'<span class="badge {h(outcome)}">{h(words or outcome)}</span>'


def _figure(spec, key: str, caption: str) -> str:
    return f"<figure>{draw.svg(spec, key)}<figcaption>{h(caption)}</figcaption></figure>"


def verdict_table(its: list[Item], many_runs: bool) -> str:
    head = ["claim", "outcome", "reason", "decided on", "value [CI]"] + (["run"] if many_runs else [])
    out = ["<table class=\"verdicts\"><thead><tr>", *(f"<th>{c}</th>" for c in head), "</tr></thead><tbody>"]
    for it in its:
        v = it.verdict
        quantity, value = content.headline(v)
        cells = [f'<a href="#{h(it.anchor)}">{h(v.claim)}</a>', _badge(v.outcome.value),
                 h(v.reason.value if v.reason else ""), h(quantity), f'<span class="num">{h(value)}</span>']
        if many_runs:
            cells.append(h(it.source.run_id))
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def section(it: Item, host_anchor: str) -> str:
    v, plan = it.verdict, it.plan
    out = [f'<section class="claim" id="{h(it.anchor)}">',
           f'<h2>{h(v.claim)} {_badge(v.outcome.value, content.outcome_words(v))}</h2>',
           f'<p class="statement">{h(v.statement)}</p>', f"<p>{h(v.summary)}</p>"]
    if v.reason and v.action:
        out.append(f'<p class="note">inconclusive ({h(v.reason.value)}): {h(v.action)}</p>')
    out.append("<h3>Decision</h3>")
    out.append(_kv(content.decision_rows(v)) if v.decision else '<p class="note">no decision was drawn</p>')
    if plan.decision:
        out.append(_figure(plan.decision, f"{it.key}-d", "the decision: the estimate and its CI against the "
                           "rule's regions (green: supported, red: refuted)"))
    if plan.decision_note:
        out.append(f'<p class="note">{h(plan.decision_note)}</p>')
    if plan.figures or content.check_rows(v):
        out.append("<h3>Evidence</h3>")
    for fig in plan.figures:
        out.append(_figure(fig, fig.key, fig.alt))
    checks = content.check_rows(v)
    if checks:
        out.append(_rows(checks, ("check", "expected", "observed", "holds", "note")))
    if v.controls or plan.controls:
        out.append("<h3>Controls</h3>")
        out.append(_rows(content.control_rows(v), ("control", "kind", "result", "numbers")))
        if plan.aa:
            out.append(_figure([plan.aa], f"{it.key}-aa", "A/A control: the ratio of two identical sets of "
                               "processes must lie in the green band"))
        for fig in plan.controls:
            out.append(_figure(fig, fig.key, fig.alt))
    if v.explanation:
        out.append(f"<h3>Mechanism</h3><p>{h(v.explanation)}</p>")
    out.append(f'<h3>Host</h3><p>{h(content.host_line(v.host))} (<a href="#{h(host_anchor)}">all facts</a>)</p>')
    if v.rerun:
        out.append(f"<h3>Rerun</h3><pre><code>{h(v.rerun)}</code></pre>")
    out.append("</section>")
    return "\n".join(out)


def page(srcs: list[Source], its: list[Item]) -> str:
    many = len(srcs) > 1
    title = "perflab report: " + ", ".join(s.run_id or "(no id)" for s in srcs)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{h(title)}</title><style>{CSS}</style></head><body>",
           "<header><h1>perflab report</h1>",
           f'<p class="note">written {h(now)} by perflab {h(__version__)}: {len(its)} verdict(s), '
           f"{h(content.counts(its))}</p>",
           _rows([content.run_rows(s) for s in srcs], ("run", "started", "status", "host", "claims")),
           "</header>", "<h2>Verdicts</h2>", verdict_table(its, many)]
    for it in its:
        out.append(section(it, f"host{srcs.index(it.source)}"))
    for i, src in enumerate(srcs):
        out.append(f'<section id="host{i}"><h2>Host of run {h(src.run_id or "(no id)")}</h2>')
        out.append(_kv(content.host_rows(src.host)) + "</section>")
    out.append("</body></html>\n")
    return "\n".join(out)
