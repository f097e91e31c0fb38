"""Live verdicts on this machine: the controls passed, and the evidence printed agrees
with the outcome (checked on the raw series, independently of the rule)."""

from __future__ import annotations

import pytest

from conftest import assert_controls, noisy
from perflab.claims import space
from perflab.engine.registry import all_claims

CLAIMS = all_claims()

pytestmark = pytest.mark.live


def series(rec, name):
    return {p["x"]: p["median"] for p in next(s for s in rec["series"] if s["name"] == name)["points"]}


def growth(points):
    """Cost at the largest N over cost at the smallest."""
    xs = sorted(points)
    return points[xs[-1]] / points[xs[0]]


def span_of(points):
    """The largest N over the smallest: the sweep the host allowed (its plan)."""
    xs = sorted(points)
    return xs[-1] / xs[0]


IO = ["io.select-linear", "io.poll-linear", "io.epoll-flat", "io.epoll-needs-edge", "io.epoll-all-ready"]


@pytest.mark.parametrize("cid", IO + ["space.syscall-in-context"])
def test_ran_and_controls_passed(cid, live_records):
    rec = live_records[cid]
    assert rec["outcome"] not in ("error", "skipped"), rec["summary"]
    assert_controls(rec)


# After the reruns, at most this many claims may end with a failed A/A. Seen on this VM:
# some processes run CPU-bound user code ~1.7x slower for their whole life (the asyncio loop
# at ~3.0 instead of ~1.8 us per switch; the 1-thread glibc allocator at ~11 instead of ~20 M
# pairs/s), in runs of consecutive processes and a proportion that drifts from ~0 to ~50%
# over minutes. In such a stretch lib.allocator-scaling and green.asyncio-cheaper fail
# their A/A in all three attempts (both did in 2 of 6 full test runs here today), and
# fork.cost-grows-with-memory did once on CI. The cap leaves room for two more; a claim
# that always failed its A/A would still use up part of it, and its verdict must stay
# inconclusive (assert_controls).
NOISY_CAP = 4


def test_few_noisy(live_records):
    failed = sorted(cid for cid, rec in live_records.items() if noisy(rec))
    assert len(failed) <= NOISY_CAP, failed


@pytest.mark.parametrize("cid,name", [("io.select-linear", "select"), ("io.poll-linear", "poll")])
def test_linear_evidence(cid, name, live_records):
    rec = live_records[cid]
    pts = series(rec, name)
    if rec["outcome"] == "supported":
        # thousands of descriptors cost hundreds of times one descriptor (at least the square
        # root of the sweep's span: 100 over 1..10,000, 32 where RLIMIT_NOFILE caps it at
        # 1,000), and between the ends of the top decade (up to 10x apart) no more than the
        # rule's largest supported exponent allows (revision 2: 2.0, a walk whose cost per
        # item steps up)
        assert growth(pts) > span_of(pts) ** 0.5
        xs = sorted(pts)
        top = [x for x in xs if x >= xs[-1] / 10]
        span = top[-1] / top[0]
        hi = next(c for c in CLAIMS if c.id == cid).rule.supported.hi
        assert span ** 0.5 < pts[top[-1]] / pts[top[0]] < span ** (hi + 0.2)
    elif rec["outcome"] == "refuted":
        assert growth(pts) < 30


@pytest.mark.parametrize("cid", ["io.epoll-flat", "io.epoll-needs-edge"])
def test_epoll_evidence(cid, live_records):
    rec = live_records[cid]
    lt = series(rec, "epoll-lt")
    flat = 0.6 < growth(lt) < 1.6
    if cid == "io.epoll-flat" and rec["outcome"] == "supported":
        assert flat
    if cid == "io.epoll-needs-edge" and rec["outcome"] == "refuted":
        assert flat  # level-triggered is flat too
        assert 0.6 < growth(series(rec, "epoll-et")) < 1.6
    if rec["outcome"] != "inconclusive":
        # the positive control saw the linear workload grow on the same apparatus
        spin = series(rec, "spin-control")  # 1,000x over 1..10,000 (178x where the sweep stops at 1,000)
        assert growth(spin) > span_of(spin) ** 0.75


def test_all_ready_evidence(live_records):
    rec = live_records["io.epoll-all-ready"]
    pts = series(rec, "epoll-all-ready")
    if rec["outcome"] == "refuted":
        assert growth(pts) < 10
    else:  # supported or inconclusive: the cost clearly grows with the number ready
        assert growth(pts) > 100


def test_syscall_in_context_evidence(live_records):
    rec = live_records["space.syscall-in-context"]
    per_call = series(rec, "context-switches")[None]
    if rec["outcome"] == "supported":
        assert per_call <= space.IN_CONTEXT.supported.hi
    t = {n: series(rec, n)[None] for n in ("function-call", "vdso-clock_gettime", "syscall-getppid", "process-switch")}
    # the ladder the explanation describes: call < vDSO < kernel entry < switch
    assert t["function-call"] < t["vdso-clock_gettime"] < t["syscall-getppid"] < t["process-switch"]
    assert 20 < t["syscall-getppid"] < 5000
