"""The fleet's hosts: Dask workers, named by their ``--name``, checked against this perflab.

A host can run this client's claims when its worker offers a ``bench`` slot (``dask
worker ... --resources bench=1``: a fleet task asks for one, so a host runs one
experiment at a time) and its perflab is this one: the same version, record schema and
fleet protocol (fleet/probe.py), with its kernels built. Anything else is said, per host,
and that host is left out while the others go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perflab import __version__
from perflab.core.errors import UsageError
from perflab.core.record import SCHEMA_VERSION
from perflab.core.safe import safe
from perflab.fleet.probe import PROTOCOL

RESOURCE = "bench"


@dataclass
class Worker:
    name: str
    address: str
    resources: dict[str, float] = field(default_factory=dict)
    nthreads: int = 0
    probe: dict[str, Any] = field(default_factory=dict)  # fleet/probe.py: describe(), or {"error": ...}
    refused: str | None = None  # why this host cannot run the claims; None when it can

    @property
    def facts(self) -> dict[str, Any]:
        return self.probe.get("facts") or {}


def from_scheduler(info: dict[str, Any]) -> list[Worker]:
    """The workers of Client.scheduler_info(), by name."""
    out = [Worker(str(w.get("name", addr)), addr, dict(w.get("resources") or {}), int(w.get("nthreads") or 0))
           for addr, w in (info.get("workers") or {}).items()]
    return sorted(out, key=lambda w: w.name)


def choose(workers: list[Worker], names: list[str] | None) -> list[Worker]:
    """The workers named (in the order given), or all of them; a name no worker has is a
    usage error that lists the names there are."""
    if names is None:
        return list(workers)
    by_name = {w.name: w for w in workers}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        known = ", ".join(by_name) or "none"
        raise UsageError(f"no worker named {', '.join(map(repr, unknown))} at the scheduler (workers: {known})")
    return [by_name[n] for n in dict.fromkeys(names)]


def refusal(worker: Worker) -> str | None:
    """Why this worker's host cannot run this client's claims, in words; None if it can."""
    p = worker.probe
    if worker.resources.get(RESOURCE, 0) < 1:
        return f"its worker offers no {RESOURCE} slot: start it with 'dask worker ... --resources {RESOURCE}=1'"
    if "error" in p:
        return f"{p['error']}: install perflab {__version__} there (pip install 'perflab[fleet]')"
    if p.get("perflab") != __version__:
        return f"perflab {p.get('perflab')} there, {__version__} here: install the same version on both"
    if "incomplete" in p:
        return f"its perflab {__version__} cannot be loaded ({p['incomplete']}): reinstall it there"
    if p.get("record_schema") != SCHEMA_VERSION or p.get("protocol") != PROTOCOL:
        return (f"its perflab writes records of version {p.get('record_schema')} and speaks fleet protocol "
                f"{p.get('protocol')}; this one {SCHEMA_VERSION} and {PROTOCOL}: install the same perflab on both")
    if not p.get("kernels_built"):
        return "perflab's kernels are not built there: reinstall it with 'pip install .' (builds them)"
    return None


def shared_machines(workers: list[Worker]) -> list[list[str]]:
    """Groups of workers on one machine (the same machine id, observe/host.py): their
    experiments would share its CPUs."""
    groups: dict[str, list[str]] = {}
    for w in workers:
        machine = w.facts.get("machine")
        if machine:
            groups.setdefault(machine, []).append(w.name)
    return [names for names in groups.values() if len(names) > 1]


def describe(worker: Worker) -> dict[str, Any]:
    """One worker for ``fleet status --json``."""
    f = worker.facts
    return {"host": worker.name, "address": worker.address, "resources": worker.resources,
            "nthreads": worker.nthreads, "perflab": worker.probe.get("perflab"), "kernel": f.get("kernel"),
            "cpu_model": f.get("cpu_model"), "cores_online": f.get("cores_online"), "hostname": f.get("hostname"),
            "python": worker.probe.get("python_version"), "ready": worker.refused is None, "why": worker.refused}


def row(worker: Worker) -> list[str]:
    """One worker as a row of ``fleet status``: host, address, perflab, kernel, CPU, cores, state."""
    f = worker.facts
    state = "ready" if worker.refused is None else f"refused: {worker.refused}"
    return [safe(str(x)) for x in (worker.name, worker.address, worker.probe.get("perflab") or "-",
                                    f.get("kernel") or "?", f.get("cpu_model") or "?", f.get("cores_online") or "?",
                                    state)]
