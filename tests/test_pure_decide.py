"""Deciding is a pure function of the evidence: every claim's rule runs with file,
socket and process access forbidden, and a stored run decided again gives its answer."""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import random
import shutil
import socket
import subprocess

import pytest

from perflab.core.claim import Curve, Evidence, Settings
from perflab.core.params import BUDGETS
from perflab.core.record import Decision, Outcome, Verdict
from perflab.engine import judge, registry, rejudge

CLAIMS = registry.all_claims()
MEASURED = [c for c in CLAIMS if not c.structural]
HOST = {"rlimit_nofile": {"soft": 20000, "hard": 20000}, "cores_online": 2, "cpus_allowed": [0, 1], "thp": "madvise",
        "caches": [{"level": 1, "type": "Data", "size": "48K"}, {"level": 2, "type": "Unified", "size": "2048K"},
                   {"level": 3, "type": "Unified", "size": "98304K"}], "mem_available_bytes": 8 << 30}


class IOForbidden(AssertionError):
    pass


@contextlib.contextmanager
def no_io():
    """Every way the rules could reach a file, a socket or a process raises."""
    def refuse(what):
        def call(*args, **kwargs):
            raise IOForbidden(f"I/O while deciding: {what}{args[:1]!r}")
        return call

    patches = [(builtins, "open"), (io, "open"), (os, "open"), (os, "stat"), (os, "listdir"), (os, "scandir"),
               (os, "access"), (socket, "socket"), (socket, "create_connection"), (subprocess, "Popen"),
               (subprocess, "run"), (shutil, "which"), (os, "getenv")]
    saved = [(mod, name, getattr(mod, name)) for mod, name in patches]
    try:
        for mod, name in patches:
            setattr(mod, name, refuse(f"{mod.__name__}.{name}"))
        yield
    finally:
        for mod, name, value in saved:
            setattr(mod, name, value)


def synthetic_evidence(claim, seed: int = 3) -> Evidence:
    """The claim's own plan (I/O allowed there) with a value at every point: a cost that
    grows a little with x, noise, eight processes per point."""
    settings = Settings(params=claim.defaults(), budget=BUDGETS["quick"], seed=seed, cpu=1, host=HOST)
    plan = claim.plan(settings)
    rng = random.Random(seed)
    curves = {}
    for spec in plan.series:
        names = [(spec.name, spec.unit)] + [(n, u) for n, u, _ in spec.derived]
        for name, unit in names:
            c = Curve(name, spec.x, unit, spec.role)
            for x in spec.xs:
                base = 100.0 * (1 + (x if isinstance(x, (int, float)) and not isinstance(x, bool) else 1) ** 0.5)
                for _ in range(8):
                    c.add(x, base * rng.lognormvariate(0, 0.05))
            curves[name] = c
    aa = claim.aa_config(settings)
    if aa:
        for name in (judge.AA_A, judge.AA_B):
            curves[name] = Curve(name, None, "ns", "control", {aa[1]: [100 * rng.lognormvariate(0, 0.05)
                                                                      for _ in range(8)]})
    return Evidence(curves, judge.as_json(plan.facts), 0.975, 200, random.Random(seed))


@pytest.mark.parametrize("claim", MEASURED, ids=[c.id for c in MEASURED])
def test_every_measured_rule_decides_without_io(claim):
    ev = synthetic_evidence(claim)
    with no_io():
        decision, controls = judge.evaluate(claim, ev, claim.aa_config(
            Settings(params=claim.defaults(), budget=BUDGETS["quick"], seed=3, cpu=1, host=HOST)))
        derived = judge.derived(claim, ev) if claim.derive else {}
    assert isinstance(decision, Decision) and decision.outcome in set(Outcome)
    assert (decision.inconclusive is not None) == (decision.outcome is Outcome.INCONCLUSIVE), decision
    json.dumps(derived)


def test_the_guard_catches_io():
    with no_io(), pytest.raises(IOForbidden):
        open("/etc/hostname")
    with no_io(), pytest.raises(IOForbidden):
        socket.create_connection(("127.0.0.1", 1))


@pytest.mark.live
@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_a_stored_run_decided_again_gives_its_answer_without_io(claim, quick_records):
    rec = quick_records[claim.id]
    stored = Verdict.from_json(rec)
    with no_io():
        result = rejudge.rejudge([stored], {claim.id: claim})[0]
        again = result.new
    assert result.basis in ("samples", "as recorded"), result.note
    assert (again.outcome, again.reason) == (stored.outcome, stored.reason), (again.summary, stored.summary)
    if stored.decision:
        assert (again.decision.value, again.decision.ci) == (stored.decision.value, stored.decision.ci)
