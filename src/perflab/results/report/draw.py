"""Drawing the figures of figures.py with matplotlib (the optional extra ``perflab[report]``).

Figures are made with the object API (matplotlib.figure.Figure, no pyplot and no global
state), inside an rc_context that keeps text as text in SVG (svg.fonttype "none": a
tenth of the size of glyph paths, and searchable), never parses ``$...$`` in a label as
mathematics (text.parse_math: a series name is data) and salts the SVG ids with the
figure's key (svg.hashsalt), so that output is reproducible. Inline SVGs share one HTML
document, so every id of one is prefixed with its key (``inline_svg``).
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from typing import Any

from perflab.core.errors import EnvironmentRefused
from perflab.core.safe import safe
from perflab.results.report.figures import Figure, Panel, Strip, binary_size

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf"]
SUPPORTED, REFUTED = "#2ca02c", "#d62728"
WIDTH, HEIGHT = 6.4, 3.4  # inches, one panel


def _mpl() -> Any:
    try:
        import matplotlib
        from matplotlib.figure import Figure as MplFigure
        from matplotlib import ticker
    except ImportError as exc:
        raise EnvironmentRefused(f"the report's plots need matplotlib ({exc.name or exc}): "
                                 "pip install 'perflab[report]'") from None
    return matplotlib, MplFigure, ticker


def _rc(key: str) -> dict[str, Any]:
    return {"svg.fonttype": "none", "svg.hashsalt": key, "font.size": 8.5,
            "axes.titlesize": 9, "axes.labelsize": 8.5, "legend.fontsize": 7.5, "axes.grid": True,
            "grid.alpha": 0.3, "font.family": "DejaVu Sans", "path.simplify": True}


def t(text: str) -> str:
    """Data as matplotlib text: control and bidirectional characters shown as escapes
    (core/safe.py: a record from elsewhere may hold any), and a ``$`` shown as itself,
    never opening mathematics (matplotlib, "Writing mathematical expressions": ``\\$``)."""
    return safe(str(text)).replace("$", r"\$")


def _wrap(text: str, width: int = 80) -> str:
    """``t`` of each line of the text wrapped at ``width`` (lines joined after: safe()
    would show the newline itself as ``\\n``)."""
    return "\n".join(t(line) for line in textwrap.wrap(str(text), width)) or t(text)


def _bytes_formatter(ticker):
    return ticker.FuncFormatter(lambda v, _pos: binary_size(v) if v > 0 else "0")


_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def power_label(v: float, _pos=None) -> str:
    """A log axis tick as plain text, "10⁶" or "5×10⁴" (Unicode superscripts), not
    mathtext: the same look for a fraction of the time (matplotlib's default log labels
    are $10^{6}$, each parsed by mathtext)."""
    if v <= 0 or not math.isfinite(v):
        return ""
    if 1e-3 <= v < 1e4 and abs(v - float(f"{v:.3g}")) < 1e-9 * v:
        return f"{v:g}"
    e = math.floor(math.log10(v) + 1e-9)
    m = v / 10**e
    power = "10" + (str(e).translate(_SUPERSCRIPT) if e != 1 else "")
    return power if abs(m - 1) < 1e-6 else f"{m:.3g}×{power}"


def plain_label(v: float, _pos=None) -> str:
    """A linear axis tick without matplotlib's offset text ("1e7" over the axis): 0, 2.5,
    1.5×10⁷, -3×10⁻⁶."""
    if v == 0:
        return "0"
    a = abs(v)
    return ("\u2212" if v < 0 else "") + (f"{a:g}" if 1e-3 <= a < 1e6 else power_label(a))


def _log_ticks(axis, ticker, limits: tuple[float, float]) -> None:
    """Powers of ten labelled; within less than ~1.5 decades, the 2x and 5x ticks too (else
    a short log axis may show no label at all)."""
    axis.set_major_formatter(ticker.FuncFormatter(power_label))
    lo, hi = sorted(limits)
    if lo > 0 and hi / lo < 3:  # a narrow range: evenly spaced plain ticks
        axis.set_major_locator(ticker.MaxNLocator(nbins=5))
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _p: f"{v:.4g}"))
        axis.set_minor_formatter(ticker.NullFormatter())
    elif lo > 0 and hi / lo < 30:
        keep = (2, 5) if hi / lo >= 4 else (2, 3, 4, 5, 6, 8)
        axis.set_minor_formatter(ticker.FuncFormatter(
            lambda v, _p: power_label(v) if v > 0 and round(v / 10 ** math.floor(math.log10(v) + 1e-9)) in keep
            else ""))
    else:
        axis.set_minor_formatter(ticker.NullFormatter())


def _panel(ax, p: Panel, ticker) -> None:
    n = len(p.lines)
    for i, ln in enumerate(p.lines):
        color = COLORS[i % len(COLORS)]
        dodge = (i - (n - 1) / 2) * 0.12 if p.categories is not None and p.dodge and n > 1 else 0.0
        xs = [x + dodge for x in ln.xs]
        err = [[max(0.0, y - lo) for y, lo in zip(ln.ys, ln.lo)], [max(0.0, hi - y) for y, hi in zip(ln.ys, ln.hi)]]
        ax.errorbar(xs, ln.ys, yerr=err, fmt="o" if p.categories is not None else "o-", ms=3.5, lw=1.2,
                    capsize=2.5, elinewidth=1, color=color, label=t(f"{ln.label} (median, CI)"))
    for i, fit in enumerate(p.fits):  # dark and dashed over the measured line it follows
        color = "#222222" if len(p.fits) == 1 else COLORS[p.fit_of[i] % len(COLORS)]
        if fit.band:
            ax.fill_between(fit.xs, fit.band[0], fit.band[1], color=color, alpha=0.12, lw=0)
        ax.plot(fit.xs, fit.ys, color=color, lw=2, dashes=(4, 2), alpha=0.9, label=t(fit.label))
    for y, label in p.hlines:
        ax.axhline(y, color="#555555", ls="-.", lw=1, label=t(f"{label}: {plain_label(y)}"))
    if p.xlog:
        ax.set_xscale("log", base=2 if p.xbytes else 10)
        if not p.xbytes:
            _log_ticks(ax.xaxis, ticker, ax.get_xlim())
    if p.ylog:
        ax.set_yscale("log")
        _log_ticks(ax.yaxis, ticker, ax.get_ylim())
    if not p.ylog:
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(plain_label))
    if not p.xlog and p.categories is None and not p.xbytes:
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(plain_label))
    if p.xbytes:
        ax.xaxis.set_major_formatter(_bytes_formatter(ticker))
        ax.xaxis.set_major_locator(ticker.LogLocator(base=4 if p.xlog else 10))
        ax.tick_params(axis="x", labelrotation=30)
    for x, label in p.vlines:
        ax.axvline(x, color="#9467bd", ls=":", lw=1.2)
        ax.annotate(t(label), (x, 1), xycoords=("data", "axes fraction"), xytext=(2, -2), textcoords="offset points",
                    rotation=90, va="top", ha="left", fontsize=7, color="#6a3d9a")
    if p.categories is not None:
        ax.set_xticks(range(len(p.categories)))
        ax.set_xticklabels([_wrap(c, 18) for c in p.categories], fontsize=7)
        ax.set_xlim(-0.6, len(p.categories) - 0.4)
    ax.set_xlabel(t(p.xlabel))
    ax.set_ylabel(_wrap(p.ylabel, 42))
    if p.title:
        ax.set_title(_wrap(p.title, 50))
    if p.fits or p.hlines or len(p.lines) > 1 and p.dodge is not False:
        ax.legend(loc="best", framealpha=0.85)


def _margins(f, width: float, height: float, n: int = 1, *, left: float = 1.0, right: float = 0.15,
             bottom: float = 0.5, top: float = 0.15, gap: float = 1.0, hgap: float = 0.0) -> None:
    """Margins in inches, fixed: enough for the tick labels this module writes (at most
    "−1.5×10⁻⁶"), a y label of two lines, and an x label. Fixed margins instead of a layout
    engine: the constrained layout measured every text of every figure and took 40% of a
    report's time (benchmarks/README.md)."""
    axis_width = (width - left - right - (n - 1) * gap) / n
    f.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                      wspace=gap / axis_width, hspace=hgap)


def draw_figure(fig: Figure):
    _, MplFigure, ticker = _mpl()
    n = len(fig.panels)
    categories = any(p.categories for p in fig.panels)
    rotated = any(p.xbytes for p in fig.panels)
    width = WIDTH * (1 if n == 1 else 0.72 * n)
    height = HEIGHT + (0.5 if categories else 0)
    f = MplFigure(figsize=(width, height))
    _margins(f, width, height, n, bottom=0.95 if categories or rotated else 0.5,
             top=0.35 if any(p.title for p in fig.panels) else 0.15)
    axes = f.subplots(1, n, sharey=fig.sharey, squeeze=False)[0]
    for ax, p in zip(axes, fig.panels):
        _panel(ax, p, ticker)
    if fig.sharey and n > 1:  # the shared axis keeps its label on the first panel only
        for ax in axes[1:]:
            ax.set_ylabel(t(fig.panels[0].ylabel))
    return f


def _limits(s: Strip) -> tuple[float, float]:
    vals = [v for v in [s.value, *(s.ci or ())] if v is not None and math.isfinite(v)]
    for r in (s.supported, s.refuted):
        if r is not None:
            vals += r.numbers()
    if not vals:
        return (0.0, 1.0)
    lo, hi = min(vals), max(vals)
    if s.log:
        return lo / 2.5, hi * 2.5
    pad = (hi - lo) * 0.25 or max(abs(hi) * 0.5, 0.5)
    return (lo - pad if lo < 0 else max(0.0, lo - pad)), hi + pad


def draw_strips(strips: list[Strip], title: str = ""):
    _, MplFigure, ticker = _mpl()
    row, above, below = 0.6, 0.3, 0.42  # inches: an axis, its title, its ticks and label
    height = len(strips) * (row + above + below)
    f = MplFigure(figsize=(WIDTH, height))
    _margins(f, WIDTH, height, left=0.25, right=0.25, bottom=below, top=above, hgap=(above + below) / row)
    axes = f.subplots(len(strips), 1, squeeze=False)[:, 0]
    for ax, s in zip(axes, strips):
        lo, hi = _limits(s)
        if s.log:
            ax.set_xscale("log")
            _log_ticks(ax.xaxis, ticker, (lo, hi))
        for region, color, name in ((s.supported, SUPPORTED, "supported"), (s.refuted, REFUTED, "refuted")):
            if region is None:
                continue
            a, b = max(region.lo, lo), min(region.hi, hi)
            if a <= b:
                ax.axvspan(a, b, color=color, alpha=0.22, lw=0)
                # the label inside the axes: from the edge where the region is cut off by it
                x, ha = ((a, "left") if a == lo else (b, "right") if b == hi else
                         ((a * b) ** 0.5 if s.log and a > 0 else (a + b) / 2, "center"))
                ax.annotate(t(f"{name}: {region.text()}"), (x, 0.84), xycoords=("data", "axes fraction"),
                            xytext={"left": (3, 0), "right": (-3, 0), "center": (0, 0)}[ha], textcoords="offset points",
                            ha=ha, va="center", fontsize=7, color=color)
        if s.value is not None:
            xerr = None
            if s.ci:
                xerr = [[max(0.0, s.value - s.ci[0])], [max(0.0, s.ci[1] - s.value)]]
            ax.errorbar([s.value], [0.28], xerr=xerr, fmt="o", color="black", capsize=4, ms=4, lw=1.5,
                        transform=ax.get_xaxis_transform())
            ci = f" [{s.ci[0]:.3g}, {s.ci[1]:.3g}]" if s.ci else ""
            ax.annotate(f"{s.value:.3g}{ci}", (s.value, 0.28), xycoords=("data", "axes fraction"),
                        xytext=(0, 5), textcoords="offset points", ha="center", va="bottom", fontsize=7)
        if s.value is None:
            ax.text(0.5, 0.35, "no estimate (see why above)", ha="center", va="center", fontsize=8, color="#555555",
                    transform=ax.transAxes)
        if not s.log:
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(plain_label))
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.grid(False, axis="y")
        ax.set_title(_wrap(f"{s.label}: {s.outcome}" if s.outcome else s.label, 95), fontsize=8, loc="left")
        ax.set_xlabel(t(f"value ({s.unit or 'dimensionless'})"))
    if title:
        f.suptitle(t(title), fontsize=9)
    return f


def render(mpl_figure, key: str, fmt: str) -> bytes:
    matplotlib, _, _ = _mpl()
    buf = io.BytesIO()
    with matplotlib.rc_context(_rc(key)):
        mpl_figure.savefig(buf, format=fmt, dpi=100, metadata={"Date": None} if fmt == "svg" else None)
    return buf.getvalue()


def build(spec, key: str):
    """A matplotlib figure of a Figure or of a list of Strips, made under the rc settings."""
    matplotlib, _, _ = _mpl()
    with matplotlib.rc_context(_rc(key)):
        return draw_figure(spec) if isinstance(spec, Figure) else draw_strips(spec)


def svg(spec, key: str) -> str:
    return inline_svg(render(build(spec, key), key, "svg").decode("utf-8"), key)


def png(spec, key: str) -> bytes:
    return render(build(spec, key), key, "png")


_HEAD = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)


def inline_svg(text: str, key: str) -> str:
    """matplotlib's SVG document as an element of an HTML page: no XML prolog, DOCTYPE or
    RDF metadata, every id (and reference to one) prefixed with ``key`` so that ids stay
    unique in the page."""
    text = _METADATA.sub("", _HEAD.sub("", text, count=1), count=1)
    text = text.replace(' id="', f' id="{key}-').replace("url(#", f"url(#{key}-").replace('href="#', f'href="#{key}-')
    return text.replace("<svg ", '<svg role="img" class="plot" ', 1)
