"""The Markdown report (GitHub Flavored Markdown): the HTML page's content, with each plot
as a PNG in a folder beside the page, for pasting into an issue or a pull request.

Text from a record is made safe (core/safe.py), then every character Markdown or HTML
would act on is escaped with a backslash or as an entity (GFM spec, "Backslash escapes":
any ASCII punctuation may be escaped), so a record cannot add a link, an image, markup or
a table cell; code (the rerun command) goes in a fence longer than any run of backticks
in it (GFM spec, "Fenced code blocks").
"""

from __future__ import annotations

import datetime as dt
import re

from perflab import __version__
from perflab.core.safe import safe
from perflab.results.report import content, draw
from perflab.results.report.content import Item
from perflab.results.sources import Source

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def md(text) -> str:
    """Inline text: one line, every Markdown punctuation escaped, <, > and & as entities."""
    text = safe(str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def fence(code: str) -> str:
    ticks = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", code)), default=0))
    return f"{ticks}\n{safe(code)}\n{ticks}"


def table(head: tuple[str, ...], rows) -> str:
    lines = ["| " + " | ".join(md(c) for c in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def slug(text: str, seen: dict[str, int]) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation other than - and _
    dropped, spaces as -, a -N suffix for repeats."""
    base = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
    n = seen.get(base, 0)
    seen[base] = n + 1
    return base if n == 0 else f"{base}-{n}"


class _Plots:
    def __init__(self, folder: str):
        self.folder = folder
        self.files: dict[str, bytes] = {}

    def image(self, spec, key: str, alt: str) -> str:
        name = f"{key}.png"
        self.files[name] = draw.png(spec, key)
        return f"![{md(alt)}]({self.folder}/{name})"


def section(it: Item, plots: _Plots) -> list[str]:
    v, plan = it.verdict, it.plan
    out = [f"## {md(v.claim)}", "", f"**{md(content.outcome_words(v))}**: {md(v.summary)}", "",
           f"> {md(v.statement)}", ""]
    if v.reason and v.action:
        out += [f"_inconclusive \\({md(v.reason.value)}\\): {md(v.action)}_", ""]
    out += ["### Decision", ""]
    out += [f"- **{md(k)}**: {md(val)}" for k, val in content.decision_rows(v)] or ["_no decision was drawn_"]
    out.append("")
    if plan.decision:
        out += [plots.image(plan.decision, f"{it.key}-d", f"{v.claim}: the decision against the rule's regions"), ""]
    if plan.decision_note:
        out += [f"_{md(plan.decision_note)}_", ""]
    checks = content.check_rows(v)
    if plan.figures or checks:
        out += ["### Evidence", ""]
    for fig in plan.figures:
        out += [plots.image(fig, fig.key, fig.alt), ""]
    if checks:
        out += [table(("check", "expected", "observed", "holds", "note"), checks), ""]
    if v.controls or plan.controls:
        out += ["### Controls", "", table(("control", "kind", "result", "numbers"), content.control_rows(v)), ""]
        if plan.aa:
            out += [plots.image([plan.aa], f"{it.key}-aa", f"{v.claim}: A/A control against its band"), ""]
        for fig in plan.controls:
            out += [plots.image(fig, fig.key, fig.alt), ""]
    if v.explanation:
        out += ["### Mechanism", "", md(v.explanation), ""]
    out += ["### Host", "", md(content.host_line(v.host)), ""]
    if v.rerun:
        out += ["### Rerun", "", fence(v.rerun), ""]
    return out


def page(srcs: list[Source], its: list[Item], folder: str) -> tuple[str, dict[str, bytes]]:
    plots = _Plots(folder)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    seen: dict[str, int] = {}
    for heading in ("perflab report", "Runs", "Verdicts"):
        slug(heading, seen)
    anchors = [slug(it.verdict.claim, seen) for it in its]
    out = ["# perflab report", "", f"_written {md(now)} by perflab {md(__version__)}: {len(its)} verdict\\(s\\), "
           f"{md(content.counts(its))}_", "", "## Runs", "",
           table(("run", "started", "status", "host", "claims"), [content.run_rows(s) for s in srcs]), "",
           "## Verdicts", "", "| claim | outcome | reason | decided on | value [CI] |", "|---|---|---|---|---|"]
    for it, a in zip(its, anchors):
        v = it.verdict
        quantity, value = content.headline(v)
        out.append(f"| [{md(v.claim)}](#{a}) | {md(v.outcome.value)} | {md(v.reason.value if v.reason else '')} "
                   f"| {md(quantity)} | {md(value)} |")
    out.append("")
    for it in its:
        out += section(it, plots)
    for src in srcs:
        out += [f"## Host of run {md(src.run_id or '(no id)')}", "", table(("fact", "value"),
                                                                          content.host_rows(src.host)), ""]
    return "\n".join(out), plots.files
