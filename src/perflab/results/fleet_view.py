"""A fleet as one table: claims down, hosts across, each cell the host's outcome for the claim.

``perflab show FLEET`` prints it (``-v``: each cell with the headline quantity, the
decision's value and CI), ``perflab fleet run`` prints it at its end, and ``perflab
report FLEET`` draws it (results/report/fleet_page.py). A cell is ``-`` where the host
has no record of the claim (a host that was refused, or interrupted before it); an error
record the fleet made for a claim that never came back says why (``error (host lost)``).
Under the table, one line per host that did not complete says how it ended.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TextIO

from perflab.core.record import Verdict
from perflab.core.safe import safe
from perflab.results.sources import Source
from perflab.results.store import Store
from perflab.results.store.fleets import FleetHost, FleetInfo


@dataclass
class FleetView:
    info: FleetInfo
    sources: dict[str, Source] = field(default_factory=dict)  # host name -> its run, for hosts with one

    @property
    def hosts(self) -> list[FleetHost]:
        return self.info.hosts

    @property
    def claims(self) -> list[str]:
        """The claims the fleet was given, in order, then any other a host sent back."""
        out = list(self.info.claims)
        for src in self.sources.values():
            out += [v.claim for v in src.verdicts if v.claim not in out]
        return out

    def verdict(self, claim: str, host: str) -> Verdict | None:
        src = self.sources.get(host)
        return next((v for v in src.verdicts if v.claim == claim), None) if src else None


def load(ref: str, db: str | os.PathLike | None = None) -> FleetView:
    """The fleet ``ref`` names (``fleet-last``, an id or a prefix of one), with its hosts' runs."""
    with Store(db, readonly=True) as store:
        info = store.fleet(store.resolve_fleet(ref))
        sources = {h.name: Source(h.run_id, store.verdicts(h.run_id), info=store.run_info(h.run_id))
                   for h in info.hosts if h.run_id}
    return FleetView(info, sources)


def fleet_reason(v: Verdict) -> str | None:
    """Why the fleet made this error record (fleet/lost.py: evidence.fleet.why), if it did."""
    fleet = v.evidence.get("fleet") if isinstance(v.evidence, dict) else None
    return str(fleet["why"]) if isinstance(fleet, dict) and fleet.get("why") else None


def headline(v: Verdict) -> str:
    d = v.decision
    if d is None or d.value is None:
        return ""
    ci = f" [{d.ci[0]:.3g}, {d.ci[1]:.3g}]" if d.ci else ""
    return f"{d.value:.3g}{ci}"


def cell(v: Verdict | None, verbose: bool = False) -> str:
    if v is None:
        return "-"
    why = v.reason.value if v.reason else fleet_reason(v)
    text = v.outcome.value + (f" ({why})" if why else "")
    value = headline(v) if verbose else ""
    return f"{text}: {value}" if value else text


def rows(view: FleetView, verbose: bool = False) -> list[list[str]]:
    return [[claim] + [cell(view.verdict(claim, h.name), verbose) for h in view.hosts] for claim in view.claims]


def quantities(view: FleetView) -> dict[str, str]:
    """Each claim's decision quantity (the first host's record that has one), for -v."""
    out: dict[str, str] = {}
    for claim in view.claims:
        for h in view.hosts:
            v = view.verdict(claim, h.name)
            if v is not None and v.decision is not None:
                out[claim] = v.decision.quantity
                break
    return out


def host_notes(view: FleetView) -> list[str]:
    """A line per host that did not complete: how it ended and why."""
    return [f"{h.name}: {h.status}" + (f": {h.reason}" if h.reason else "")
            for h in view.hosts if h.status != "complete"]


def facts_line(probe: dict) -> str:
    """A host as its worker described itself (fleet/probe.py), for a host with no run."""
    if probe.get("error"):
        return str(probe["error"])
    f = probe.get("facts") or {}
    return (f"{f.get('hostname') or '?'}: {f.get('cpu_model') or '?'}, {f.get('cores_online') or '?'} cores, "
            f"{f.get('kernel') or '?'}, perflab {probe.get('perflab') or '?'}")


def heading(view: FleetView) -> str:
    i = view.info
    return (f"fleet {i.id}: {i.started_at}, {i.status}, {len(view.claims)} claim(s) x {len(view.hosts)} host(s), "
            f"budget {i.budget}, seed {i.seed}, scheduler {i.scheduler}, perflab {i.perflab_version}")


def render(view: FleetView, out: TextIO, verbose: bool = False) -> None:
    """The table with rich; every string made terminal-safe (a record may come from anywhere)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from perflab.results.terminal import STYLE

    console = Console(file=out, highlight=False, soft_wrap=False, width=max(120, Console(file=out).width))
    table = Table(title=safe(f"fleet {view.info.id}: claims x hosts"))
    table.add_column("claim", no_wrap=True)
    if verbose:
        table.add_column("decided on")
    for h in view.hosts:
        table.add_column(escape(safe(h.name)))
    named = quantities(view) if verbose else {}
    for claim, *cells in rows(view, verbose):
        styles = [STYLE.get(c.split(" ")[0].rstrip(":"), "") for c in cells]
        styled = [f"[{st}]{escape(safe(c))}[/]" if st else escape(safe(c)) for st, c in zip(styles, cells)]
        table.add_row(escape(safe(claim)), *([escape(safe(named.get(claim, "")))] if verbose else []), *styled)
    console.print(table)
    for line in host_notes(view):
        console.print(safe(line), markup=False)
