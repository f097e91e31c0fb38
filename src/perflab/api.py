"""The Python API, which the command line is a thin layer over.

    import perflab
    verdicts = perflab.run(["io.epoll-flat"], budget="quick")   # typed perflab.Verdict
    for run in perflab.store.open().runs(): ...

``run`` measures the selected claims on this machine, stores every verdict as soon as
its claim finishes (the database ``perflab run`` uses, unless ``db`` names another or
``save=False``), and returns the verdicts. ``Run`` is the same, a claim at a time, for
callers that show progress or print each verdict as it comes (cli/run.py).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from typing import Any, Callable, Iterable, Iterator, Mapping

from perflab import __version__
from perflab.core.claim import Claim, Settings
from perflab.core.errors import PerflabError, UsageError
from perflab.core.params import BUDGETS
from perflab.core.record import Host, Verdict
from perflab.engine import registry, runner
from perflab.observe import host as host_facts
from perflab.results.store import Store

# on_start(index, total, claim), on_progress(claim id, done, planned, note)
StartFn = Callable[[int, int, Claim], None]
ProgressFn = Callable[[str, int, int, str], None]


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(2)


def parse_params(claims: list[Claim], given: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{name: value} -> {claim id: {name: value}}: each value is given to every selected
    claim that has the parameter and parsed by it (range, rule); an unknown name or a bad
    value is a UsageError."""
    per_claim: dict[str, dict[str, Any]] = {c.id: c.defaults() for c in claims}
    for name, value in given.items():
        owners = [c for c in claims if c.param(name)]
        if not owners:
            known = sorted({p.name for c in claims for p in c.params})
            raise UsageError(f"unknown parameter {name!r} for the selected claims (known: {', '.join(known) or 'none'})")
        for c in owners:
            per_claim[c.id][name] = c.param(name).parse(str(value))
    return per_claim


def choose_cpu(requested: int | None) -> int:
    allowed = sorted(os.sched_getaffinity(0))
    if requested is None:
        return allowed[-1]
    if requested not in allowed:
        raise UsageError(f"--cpu {requested} is not available to this process (allowed: {', '.join(map(str, allowed))})")
    return requested


class Run:
    """One run: the claims and their settings are checked, the database opened and the
    run recorded before anything is measured; ``measure`` then yields each verdict once
    it is stored; ``finish`` records how the run ended."""

    def __init__(self, selectors: Iterable[str] = (), *, budget: str = "default", seed: int | None = None,
                 params: Mapping[str, Any] | None = None, cpu: int | None = None, db: str | os.PathLike | None = None,
                 save: bool = True, argv: list[str] | None = None):
        if budget not in BUDGETS:
            raise UsageError(f"unknown budget {budget!r} (known: {', '.join(sorted(BUDGETS))})")
        if seed is not None and not 0 <= seed < 2**63:
            raise UsageError(f"seed {seed} is outside 0..2^63-1")
        self.claims = registry.select(list(selectors))
        self.params = parse_params(self.claims, params or {})
        self.cpu = choose_cpu(cpu)
        self.budget = BUDGETS[budget]
        self.seed = seed if seed is not None else secrets.randbelow(2**31)
        self.store = Store(db) if save else None  # fail before measuring if it cannot be used
        self.facts = host_facts.collect()
        self.host = Host.from_json(self.facts)
        self.run_id = new_run_id()
        self.verdicts: list[Verdict] = []
        self.stored = 0
        if self.store:
            self.store.begin_run(self.run_id, now(), __version__, self.budget.name, self.seed,
                                 list(argv if argv is not None else ["api", *selectors]), self.host)

    def settings(self, claim: Claim) -> Settings:
        return Settings(params=self.params[claim.id], budget=self.budget, seed=self.seed, cpu=self.cpu,
                        host=self.facts)

    def measure(self, on_start: StartFn | None = None, on_progress: ProgressFn | None = None,
                on_verdict: Callable[[Verdict], None] | None = None) -> Iterator[Verdict]:
        """Each claim in turn. A verdict is stored before anything is shown of it; when the
        database refuses it, ``on_verdict`` still gets it (it is not lost) and then the
        refusal is raised."""
        cache = runner.SampleCache()
        for index, claim in enumerate(self.claims, 1):
            if on_start:
                on_start(index, len(self.claims), claim)
            v = runner.run_claim(claim, self.settings(claim), progress=on_progress, cache=cache)
            v.host, v.run_id, v.perflab_version = self.host, self.run_id, __version__
            self.verdicts.append(v)
            refused = None
            if self.store:
                try:
                    self.store.save_verdict(self.run_id, v)
                    self.stored += 1
                except PerflabError as exc:
                    refused = exc
            if on_verdict:
                on_verdict(v)
            if refused is not None:
                raise refused
            yield v

    def finish(self, status: str) -> None:
        """complete, interrupted or failed; raises if the database refuses it."""
        if self.store:
            self.store.finish_run(self.run_id, now(), status)

    def close(self) -> None:
        if self.store:
            self.store.close()


def run(selectors: Iterable[str] = (), *, budget: str = "default", seed: int | None = None,
        params: Mapping[str, Any] | None = None, cpu: int | None = None, db: str | os.PathLike | None = None,
        save: bool = True) -> list[Verdict]:
    """Run claims (ids or topics; none = every claim) and return their typed verdicts."""
    r = Run(selectors, budget=budget, seed=seed, params=params, cpu=cpu, db=db, save=save)
    status = "interrupted"
    try:
        for _ in r.measure():
            pass
        status = "complete"
    except KeyboardInterrupt:
        raise
    except Exception:
        status = "failed"
        raise
    finally:
        try:
            r.finish(status)
        finally:
            r.close()
    return r.verdicts
