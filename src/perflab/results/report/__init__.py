"""perflab report: a run (or several) as a page to read, with plots.

    from perflab.results import report, sources
    text = report.html_page(sources.load(["last"]))            # one self-contained HTML page
    text, pngs = report.markdown_page(srcs, "report-plots")   # Markdown, and its PNGs by file name

figures.py decides what to draw (pure), draw.py draws it with matplotlib (the optional
extra ``perflab[report]``), content.py holds the words and tables both pages share.
"""

from __future__ import annotations

from perflab.results.report import content
from perflab.results.sources import Source

__all__ = ["html_page", "markdown_page"]


def html_page(srcs: list[Source]) -> str:
    from perflab.results.report import html

    return html.page(srcs, content.items(srcs))


def markdown_page(srcs: list[Source], folder: str) -> tuple[str, dict[str, bytes]]:
    """The Markdown text, which links its plots as ``folder/NAME.png``, and the PNGs."""
    from perflab.results.report import markdown

    return markdown.page(srcs, content.items(srcs), folder)
