"""A fleet's report: the claims x hosts table, then per claim every host's curves on one plot.

The same page as a run's in its two forms (html.py: one self-contained HTML file;
markdown.py: Markdown with PNGs beside it), with the same escaping: every string of a
record is made safe for the terminal first (core/safe.py), then escaped for HTML or
Markdown. Per claim: its statement, one row per host (outcome, the decision's value
[CI], summary) and the hosts' curves overlaid (fleet_figures.py). Last, each host: how
it ended and its facts.
"""

from __future__ import annotations

import datetime as dt
import re

from perflab import __version__
from perflab.engine import registry
from perflab.results import fleet_view
from perflab.results.fleet_view import FleetView
from perflab.results.report import content, fleet_figures
from perflab.results.report import html as page_html
from perflab.results.report import markdown as page_md


def _claims(view: FleetView):
    """(claim, anchor, statement, [(host, verdict)], figures) per claim, in the table's order."""
    rules = {c.id: c.rule for c in registry.all_claims()}
    out = []
    for i, claim in enumerate(view.claims):
        per_host = [(h.name, v) for h in view.hosts if (v := view.verdict(claim, h.name)) is not None]
        statement = next((v.statement for _, v in per_host if v.statement), "")
        figs = fleet_figures.overlay(per_host, rules.get(claim), f"fl{i}")
        out.append((claim, f"c{i}-" + re.sub(r"[^A-Za-z0-9_.-]", "_", claim), statement, per_host, figs))
    return out


def _host_rows(view: FleetView) -> list[tuple[str, str, str, str]]:
    """(host, how it ended, the machine, its run id) per host."""
    out = []
    for h in view.hosts:
        src = view.sources.get(h.name)
        host = src.host if src else None
        machine = content.host_line(host) if host else fleet_view.facts_line(h.facts)
        out.append((h.name, h.status + (f": {h.reason}" if h.reason else ""), machine, h.run_id or "-"))
    return out


def _title(view: FleetView) -> str:
    return f"perflab fleet report: {view.info.id}"


def _written() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# ---- HTML -------------------------------------------------------------------------------------

def html_page(view: FleetView) -> str:
    from perflab.results.report import draw

    h = page_html.h
    claims = _claims(view)
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{h(_title(view))}</title><style>{page_html.CSS}</style></head><body>",
           "<header><h1>perflab fleet report</h1>",
           f'<p class="note">written {h(_written())} by perflab {h(__version__)}: {h(fleet_view.heading(view))}</p>',
           page_html._rows(_host_rows(view), ("host", "ended", "machine", "run")), "</header>",
           "<h2>Claims x hosts</h2>", "<table class=\"fleet\"><thead><tr><th>claim</th>",
           *(f"<th>{h(x.name)}</th>" for x in view.hosts), "</tr></thead><tbody>"]
    for claim, anchor, _, _, _ in claims:
        cells = []
        for x in view.hosts:
            v = view.verdict(claim, x.name)
            words = fleet_view.cell(v, verbose=True)
            cells.append(page_html._badge(v.outcome.value, words) if v else h(words))
        out.append(f'<tr><td><a href="#{h(anchor)}">{h(claim)}</a></td>'
                   + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    for claim, anchor, statement, per_host, figs in claims:
        out += [f'<section class="claim" id="{h(anchor)}"><h2>{h(claim)}</h2>',
                f'<p class="statement">{h(statement)}</p>',
                page_html._rows([(host, fleet_view.cell(v), fleet_view.headline(v), v.summary)
                                 for host, v in per_host], ("host", "outcome", "value [CI]", "summary"))]
        for fig in figs:
            out.append(f"<figure>{draw.svg(fig, fig.key)}<figcaption>{h(fig.alt)}</figcaption></figure>")
        out.append("</section>")
    for i, x in enumerate(view.hosts):
        src = view.sources.get(x.name)
        out.append(f'<section id="host{i}"><h2>Host {h(x.name)}</h2>')
        out.append(page_html._kv(content.host_rows(src.host)) if src else
                   f'<p class="note">{h(fleet_view.facts_line(x.facts))}</p>')
        out.append("</section>")
    out.append("</body></html>\n")
    return "\n".join(out)


# ---- Markdown ---------------------------------------------------------------------------------

def markdown_page(view: FleetView, folder: str) -> tuple[str, dict[str, bytes]]:
    md = page_md.md
    plots = page_md._Plots(folder)
    claims = _claims(view)
    seen: dict[str, int] = {}
    for heading in ("perflab fleet report", "Claims x hosts"):
        page_md.slug(heading, seen)
    anchors = [page_md.slug(claim, seen) for claim, *_ in claims]
    out = ["# perflab fleet report", "", f"_written {md(_written())} by perflab {md(__version__)}: "
           f"{md(fleet_view.heading(view))}_", "", page_md.table(("host", "ended", "machine", "run"),
                                                                  _host_rows(view)), "",
           "## Claims x hosts", "", "| claim | " + " | ".join(md(x.name) for x in view.hosts) + " |",
           "|---|" + "---|" * len(view.hosts)]
    for (claim, *_), a in zip(claims, anchors):
        cells = [md(fleet_view.cell(view.verdict(claim, x.name), verbose=True)) for x in view.hosts]
        out.append(f"| [{md(claim)}](#{a}) | " + " | ".join(cells) + " |")
    out.append("")
    for claim, _, statement, per_host, figs in claims:
        out += [f"## {md(claim)}", "", f"> {md(statement)}", "",
                page_md.table(("host", "outcome", "value [CI]", "summary"),
                              [(host, fleet_view.cell(v), fleet_view.headline(v), v.summary) for host, v in per_host]),
                ""]
        for fig in figs:
            out += [plots.image(fig, fig.key, fig.alt), ""]
    for x in view.hosts:
        src = view.sources.get(x.name)
        out += [f"## Host {md(x.name)}", ""]
        out += [page_md.table(("fact", "value"), content.host_rows(src.host)) if src else
                md(fleet_view.facts_line(x.facts)), ""]
    return "\n".join(out), plots.files
