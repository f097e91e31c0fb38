"""The positive control rejects mechanisms that miscount (unit tests, no tracing).

Records are shaped like the tracer kernel's (docs/kernels.md, "tracer"); each test
breaks one thing a real mechanism could get wrong.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from perflab.observe.trace import control
from perflab.observe.trace.counting import choose
from perflab.observe.trace.errors import MechanismRefused, TraceUnavailable
from perflab.observe.trace.result import TraceResult, from_record
from trace_records import FORK, THREAD, WORKLOAD_STDOUT, clone, record

def result(**kw) -> TraceResult:
    return replace(from_record(record(**kw)), stdout=WORKLOAD_STDOUT)


def test_exact_counts_pass():
    report = control.check(result())
    assert report.passed, report.failures
    assert report.reason == "passed"


@pytest.mark.parametrize(
    "kw, what",
    [
        ({"total": 28, "region": 22}, "miscounts by one"),
        ({"total": 30, "region": 24}, "counts one twice"),
        ({"total": 24, "region": 18}, "loses the second thread's 5 calls"),
        ({"total": 18, "region": 12}, "loses the forked child's 11 calls"),
        ({"total": 58, "region": 46}, "counts everything twice"),
        ({"total": 29, "region": 29}, "ignores the markers"),
        ({"markers": 1}, "sees one marker"),
        ({"lost": 3}, "lost samples"),
        ({"exit_status": 1}, "workload failed"),
        ({"clones": [clone("clone", FORK, 17)]}, "misses the thread creation"),
        ({"clones": [clone("clone3", THREAD, 0), clone("clone3", THREAD, 0)]}, "sees no fork"),
        ({"clones": [clone("clone3", THREAD, 0), clone("clone", FORK, 17, in_region=False)]},
         "misplaces the fork outside the region"),
        ({"clones": [clone("clone3", 0x100, 0), clone("clone", FORK, 17)]}, "misreads thread flags"),
    ],
)
def test_miscounting_mechanism_is_rejected(kw, what):
    report = control.check(result(**kw))
    assert not report.passed, f"control accepted a mechanism that {what}"
    assert report.failures


def test_unreadable_clone3_flags_are_not_held_against_perf():
    # perf samples carry clone3's pointer only: the thread's flags are unreadable
    report = control.check(result(mechanism="perf", clones=[clone("clone3", 0, 0, readable=False),
                                                            clone("clone", FORK, 17)]))
    assert report.passed, report.failures
    assert any("not checked" in c for c in report.checks)


def test_workload_must_report_its_own_calls():
    broken = replace(result(), stdout='{"getppid_total": 28}\n')
    assert not control.check(broken).passed


def test_choose_skips_a_mechanism_that_fails_its_control():
    traces = {"bpf": result(total=28, region=22), "perf": result(total=24, region=18), "ptrace": result()}
    name, report, rejected = choose(["bpf", "perf", "ptrace"], lambda m: control.check(traces[m]))
    assert name == "ptrace" and report.passed
    assert set(rejected) == {"bpf", "perf"}
    assert "getppid 28 over the whole run (expected 29)" in rejected["bpf"]
    assert "getppid 24 over the whole run (expected 29)" in rejected["perf"]


def test_choose_reports_every_reason_when_nothing_works():
    def judge(name):
        if name == "bpf":
            raise MechanismRefused("needs CAP_BPF")
        return control.check(result(total=28))

    with pytest.raises(TraceUnavailable) as exc:
        choose(["bpf", "ptrace"], judge)
    assert exc.value.reasons["bpf"] == "needs CAP_BPF"
    assert exc.value.reasons["ptrace"].startswith("failed its positive control")
    assert exc.value.exit_code == 1
