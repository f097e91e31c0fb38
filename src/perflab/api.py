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
from dataclasses import replace
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
                 save: bool = True, argv: list[str] | None = None, rerun_unsteady: bool = True):
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
        self.rerun_unsteady = rerun_unsteady
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
        refusal is raised. A claim whose A/A control failed (the machine was not steady
        enough for it at that moment) is measured once more at the end of the run, with
        the next seed; its verdict is that second attempt's, the first kept in its
        evidence (``first_attempt``), and it is shown then."""
        cache = runner.SampleCache()
        again: list[tuple[int, Claim]] = []
        for index, claim in enumerate(self.claims, 1):
            if on_start:
                on_start(index, len(self.claims), claim)
            v = self._run(claim, self.settings(claim), cache, on_progress)
            self.verdicts.append(v)
            if self.rerun_unsteady and _aa_failed(v):
                self._store(v)  # kept, should the run stop before the second attempt
                again.append((len(self.verdicts) - 1, claim))
                continue
            yield self._keep(v, on_verdict)
        for slot, claim in again:
            if on_start:
                on_start(slot + 1, len(self.claims), claim)
            first = self.verdicts[slot]
            settings = replace(self.settings(claim), seed=(self.seed + 1) % 2**63)
            v = self._run(claim, settings, None, on_progress)
            v.evidence["first_attempt"] = {"outcome": first.outcome.value, "reason": first.reason.value
                                           if first.reason else None, "summary": first.summary,
                                           "controls": {c.name: c.to_json() for c in first.controls},
                                           "rerun": first.rerun}
            self.verdicts[slot] = v
            yield self._keep(v, on_verdict, replace_stored=True)

    def _run(self, claim: Claim, settings: Settings, cache, on_progress) -> Verdict:
        v = runner.run_claim(claim, settings, progress=on_progress, cache=cache)
        v.host, v.run_id, v.perflab_version = self.host, self.run_id, __version__
        return v

    def _store(self, v: Verdict, replace_stored: bool = False) -> PerflabError | None:
        if not self.store:
            return None
        try:
            if replace_stored:
                self.store.replace_verdict(self.run_id, v)
            else:
                self.store.save_verdict(self.run_id, v)
                self.stored += 1
        except PerflabError as exc:
            return exc
        return None

    def _keep(self, v: Verdict, on_verdict, replace_stored: bool = False) -> Verdict:
        refused = self._store(v, replace_stored)
        if on_verdict:
            on_verdict(v)
        if refused is not None:
            raise refused
        return v

    def finish(self, status: str) -> None:
        """complete, interrupted or failed; raises if the database refuses it."""
        if self.store:
            self.store.finish_run(self.run_id, now(), status)

    def close(self) -> None:
        if self.store:
            self.store.close()


def _aa_failed(v: Verdict) -> bool:
    return any(c.kind == "negative" and c.passed is False for c in v.controls)


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
