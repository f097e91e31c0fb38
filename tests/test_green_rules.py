"""green.* decision rules both ways (and the middle), on synthetic data: the ratio rules
on realistic series, the exact checks on subject records, the positive controls against
broken probes. No kernel runs here: structural claims get a fake measure, and what a
plan finds out (the Go build) reaches the rules as facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import claim, decide as decide_curves, decide_points, evidence, judge, synthetic
from perflab.claims import _subjects, green
from perflab.core.claim import Curve, Settings
from perflab.core.params import BUDGETS
from perflab.core.record import Outcome, Reason
from perflab.decide.rules import exact_rule
from perflab.engine import runner
from perflab.engine.judge import final_outcome

decide = decide_points
BUILT = _subjects.GoBuild(Path("/nonexistent/green"), version="go version go1.19.8 linux/amd64")
NO_GO = _subjects.GoBuild(None, _subjects.NO_GO)


def settings(params=None):
    return Settings(params=params or {}, budget=BUDGETS["quick"], seed=3, cpu=1, host={})


def verdict(cid, obs):
    """A structural claim's outcome on observations, as the runner reaches it: the judge's
    checks by the exact rule, then its controls."""
    checked = judge(cid, obs)
    outcome, _why, reason = final_outcome(exact_rule(checked.checks, claim(cid).rule), checked.controls)
    return outcome, reason, checked


# --- green.switch-cheaper: thread (futex) / register >= 10 supported, <= 3 refuted ----------
@pytest.mark.parametrize(
    "register,thread,expected,reason",
    [
        (7.0, 2100.0, Outcome.SUPPORTED, None),  # this VM: 300x
        (150.0, 2100.0, Outcome.SUPPORTED, None),  # 14x
        (400.0, 2100.0, Outcome.INCONCLUSIVE, Reason.BETWEEN),  # 5x: between the thresholds
        (900.0, 2100.0, Outcome.REFUTED, None),  # 2.3x
        (2500.0, 2100.0, Outcome.REFUTED, None),  # a "green" switch slower than the kernel's
    ],
)
def test_switch_rule(register, thread, expected, reason):
    d = decide("green.switch-cheaper", register=register, swapcontext=230.0, thread_futex=thread,
               thread_pipe=2500.0, process_pipe=2600.0)
    assert d.outcome is expected and d.inconclusive is reason, d
    assert d.rule_version == claim("green.switch-cheaper").rule.version
    table = d.evidence["switches (ns, same CPU)"]
    assert table["thread-futex"]["x register"] == pytest.approx(thread / register, rel=0.1)


def test_switch_rule_says_why_goroutines_are_missing():
    d = decide("green.switch-cheaper", facts={"go": _subjects.go_facts(NO_GO)}, register=7.0, thread_futex=2100.0)
    assert "apt install golang-go" in d.evidence["switches (ns, same CPU)"]["goroutine"]["not measured"]
    assert "register" in d.reason and "thread-futex" in d.reason  # the ordering, printed
    failed = _subjects.GoBuild(None, "go build failed (go1.19.8)", log="syntax error")
    d = decide("green.switch-cheaper", facts={"go": _subjects.go_facts(failed)}, register=7.0, thread_futex=2100.0)
    assert "could not be built" in d.evidence["switches (ns, same CPU)"]["goroutine"]["not measured"]


def test_switch_rule_with_a_goroutine_row():
    d = decide("green.switch-cheaper", facts={"go": _subjects.go_facts(BUILT)}, register=7.0, goroutine=180.0,
               thread_futex=2100.0)
    table = d.evidence["switches (ns, same CPU)"]
    assert table["goroutine"]["x register"] == pytest.approx(180 / 7, rel=0.1)
    assert d.reason.index("goroutine") < d.reason.index("thread-futex")


def test_switch_plan_builds_go_and_records_what_it_found(monkeypatch):
    """The Go toolchain is looked for by the plan, never by the rule: its findings are facts."""
    c = claim("green.switch-cheaper")
    monkeypatch.setattr(green, "go_subject", lambda: NO_GO)
    plan = c.plan(settings())
    assert "goroutine" not in [s.name for s in plan.series]
    assert plan.facts["go"]["built"] is False and "apt install golang-go" in plan.facts["go"]["why"]
    monkeypatch.setattr(green, "go_subject", lambda: BUILT)
    plan = c.plan(settings())
    names = [s.name for s in plan.series]
    assert names[:3] == ["register", "swapcontext", "goroutine"] and names[-1] == "same-cpu-switches"
    assert plan.facts["go"] == {"built": True, "version": BUILT.version}
    assert next(s for s in plan.series if s.name == "goroutine").argv(None)[0] == str(BUILT.path)


# --- green.asyncio-cheaper: thread (futex) / asyncio >= 10 supported, <= 3 refuted -----------
@pytest.mark.parametrize(
    "asyncio_ns,expected,reason",
    [
        (100.0, Outcome.SUPPORTED, None),  # 21x: what the belief expects
        (180.0, Outcome.SUPPORTED, None),  # 11.7x
        (420.0, Outcome.INCONCLUSIVE, Reason.BETWEEN),  # 5x
        (800.0, Outcome.REFUTED, None),  # 2.6x
        (1800.0, Outcome.REFUTED, None),  # about this VM: an asyncio switch costs a thread switch
    ],
)
def test_asyncio_rule(asyncio_ns, expected, reason):
    d = decide("green.asyncio-cheaper", asyncio=asyncio_ns, generator=13.0, python_thread=5800.0,
               thread_futex=2100.0)
    assert d.outcome is expected and d.inconclusive is reason, d
    assert set(d.evidence["switches (ns)"]) == {"asyncio", "generator", "python-thread", "thread-futex"}


def test_ratio_rules_straddling_a_threshold_are_noisy():
    """A ratio whose CI reaches across a threshold (a very noisy thread switch around 10x)
    could still go either way: inconclusive, noisy."""
    supported = claim("green.asyncio-cheaper").rule.supported.lo
    noisy = synthetic("thread-futex", (None,), lambda _x: 100.0 * supported, n=8, noise=0.6, x=None)
    d = decide_curves("green.asyncio-cheaper", noisy, *(synthetic(n, (None,), lambda _x: 100.0, n=8, noise=0.02,
                                                                  x=None) for n in ("asyncio", "generator", "python-thread")))
    assert d.outcome is Outcome.INCONCLUSIVE and d.inconclusive is Reason.NOISY, d


# --- the same-CPU positive control (both switch claims) -------------------------------------
def control_series(value):
    return evidence(synthetic("same-cpu-switches", (None,), lambda _x: value, n=5, noise=0, outlier_every=0, x=None))


def test_same_cpu_control_both_ways():
    ok = green.same_cpu_control(control_series(1.0005))
    # a partner spinning on another CPU (no switch per round trip), or a counter that
    # cannot see switches, reads near 0: the control must fail
    broken = green.same_cpu_control(control_series(0.02))
    assert ok.passed is True and broken.passed is False
    assert ok.detail["expected"] == f"{green.SAME_CPU.supported.text()} per round trip"
    empty = green.same_cpu_control(evidence(Curve("same-cpu-switches", None, "switches")))
    assert empty.passed is None
    for cid in ("green.switch-cheaper", "green.asyncio-cheaper"):
        assert claim(cid).positive is green.same_cpu_control


# --- green.not-tasks: exact counts --------------------------------------------------------------
GO_SLACK = claim("green.not-tasks").rule["go_slack"]  # Go adds at most GOMAXPROCS + this


def threads_rec(added=1000, status_added=1000):
    return {"tasks_before": 1, "tasks_during": [1 + added] * 5, "status_threads_before": 1,
            "status_threads_during": 1 + status_added, "threads_started": 1000}


def aio_rec(added=0, blocked=10_000, seen=4):
    return {"tasks_before": 1, "tasks_during": [1 + added] * 5, "tasks_started": 10_000, "tasks_blocked": blocked,
            "control_threads_started": 4, "tasks_with_control_threads": 1 + added + seen}


def go_rec(during=4, gomaxprocs=2, seen=4, tids=(101, 102, 103, 104), grew=None):
    return {"tasks_before": 4, "tasks_during": [during] * 5, "gomaxprocs": gomaxprocs, "goroutines_alive": 10_001,
            "go": "go1.19.8", "control_threads_started": 4, "tasks_before_control": during,
            "tasks_with_control_threads": during + (seen if grew is None else grew),
            "control_tids": list(tids), "control_tids_seen": seen}


class FakeSubjects:
    """Stands in for the three subjects of green.not-tasks (argv -> record)."""

    def __init__(self, threads, aio, go):
        self.records = {"threads-tasks": threads, "asyncio-tasks": aio, "block-chan": go}
        self.calls = []

    def __call__(self, argv, timeout):
        self.calls.append(argv)
        variant = next(a.split("=", 1)[1] for a in argv if a.startswith("--variant="))
        return self.records[variant]


def observe_not_tasks(monkeypatch, threads, aio, go, have_go=True):
    """The observations green.not-tasks makes, with the subjects faked."""
    monkeypatch.setattr(green, "go_subject", lambda: BUILT if have_go else NO_GO)
    return claim("green.not-tasks").observe(settings(), FakeSubjects(threads, aio, go))


def not_tasks(monkeypatch, threads, aio, go, have_go=True):
    return verdict("green.not-tasks", observe_not_tasks(monkeypatch, threads, aio, go, have_go))


@pytest.mark.parametrize(
    "threads,aio,go,expected",
    [
        (threads_rec(), aio_rec(), go_rec(), Outcome.SUPPORTED),
        (threads_rec(), aio_rec(), go_rec(during=1 + 2 + GO_SLACK), Outcome.SUPPORTED),  # = GOMAXPROCS + slack
        (threads_rec(), aio_rec(added=1), go_rec(), Outcome.REFUTED),  # asyncio made a thread
        (threads_rec(added=999), aio_rec(), go_rec(), Outcome.REFUTED),  # a thread is not a task?
        (threads_rec(status_added=990), aio_rec(), go_rec(), Outcome.REFUTED),
        (threads_rec(), aio_rec(), go_rec(during=2 + 2 + GO_SLACK), Outcome.REFUTED),  # one more than allowed
        (threads_rec(), aio_rec(), go_rec(during=5004), Outcome.REFUTED),  # a thread per goroutine
        (threads_rec(), aio_rec(blocked=9000), go_rec(), Outcome.INCONCLUSIVE),  # tasks not all blocked
        (threads_rec(), aio_rec(), {**go_rec(), "goroutines_alive": 42}, Outcome.INCONCLUSIVE),  # nor goroutines
    ],
)
def test_not_tasks_rule(monkeypatch, threads, aio, go, expected):
    outcome, reason, checked = not_tasks(monkeypatch, threads, aio, go)
    assert outcome is expected, checked.checks
    assert len(checked.checks) == 3
    if expected is Outcome.INCONCLUSIVE:  # a check that could not be evaluated: what it needed is named
        assert reason is Reason.CAPPED and any(c.holds is None and "only" in c.note for c in checked.checks)


def test_not_tasks_end_to_end_through_the_runner(monkeypatch):
    """observe, the JSON round trip of the observations, judge and the exact rule, as run."""
    monkeypatch.setattr(green, "go_subject", lambda: BUILT)
    v = runner.run_claim(claim("green.not-tasks"), settings(), measure=FakeSubjects(threads_rec(), aio_rec(), go_rec()))
    assert v.outcome is Outcome.SUPPORTED, (v.summary, v.evidence["checks"])
    assert len(v.evidence["checks"]) == 3 and v.evidence["observed"]["go"]["gomaxprocs"] == 2
    assert v.decision.thresholds["supported"] == claim("green.not-tasks").rule.thresholds()["supported"]
    assert {s.name for s in v.series} == {"kernel tasks added"}


def test_not_tasks_without_go_decides_on_asyncio_and_threads(monkeypatch):
    # CLAIMS.md: goroutines "(Go toolchain present) or" asyncio tasks
    fake_go = go_rec()
    outcome, _reason, checked = not_tasks(monkeypatch, threads_rec(), aio_rec(), fake_go, have_go=False)
    assert outcome is Outcome.SUPPORTED
    assert len(checked.checks) == 2
    assert "apt install golang-go" in checked.evidence["go"]["not evaluated"]
    assert [c.holds for c in checked.checks] == [True, True]


def test_not_tasks_go_build_failure_is_an_error(monkeypatch):
    monkeypatch.setattr(green, "go_subject", lambda: _subjects.GoBuild(None, "go build failed", log="syntax error"))
    v = runner.run_claim(claim("green.not-tasks"), settings(), measure=FakeSubjects(threads_rec(), aio_rec(), None))
    assert v.outcome is Outcome.ERROR and "syntax error" in v.evidence["stderr"]


@pytest.mark.parametrize("py_seen,go_seen", [(0, 4), (4, 0), (3, 4)])
def test_task_probe_control_rejects_a_blind_probe(monkeypatch, py_seen, go_seen):
    """All checks hold, but the probe did not see the control threads: inconclusive."""
    outcome, reason, checked = not_tasks(monkeypatch, threads_rec(), aio_rec(seen=py_seen), go_rec(seen=go_seen))
    assert outcome is Outcome.INCONCLUSIVE and reason is Reason.CONTROL
    assert checked.controls[0].name == "task-probe" and checked.controls[0].passed is False
    assert all(c.holds for c in checked.checks)


def test_task_probe_go_side_reads_the_tids_not_the_count(monkeypatch):
    # the runtime reused parked threads: the count grew by 1, yet all 4 locked threads are listed
    outcome, _reason, checked = not_tasks(monkeypatch, threads_rec(), aio_rec(), go_rec(seen=4, grew=1))
    assert checked.controls[0].passed is True and outcome is Outcome.SUPPORTED
    # two goroutines reporting one TID were not on threads of their own: the probe is not trusted
    outcome, _reason, checked = not_tasks(monkeypatch, threads_rec(), aio_rec(), go_rec(seen=4, tids=(101, 101, 103, 104)))
    assert checked.controls[0].passed is False and outcome is Outcome.INCONCLUSIVE


# --- green.m-n -----------------------------------------------------------------------------------
SHARE = claim("green.m-n").rule["blocked_share"]  # threads added per blocked goroutine, at least


def mn_rec(after_compute=4, blocking_peak=103, computing_peak=4, gomaxprocs=2, blocked=100):
    return {"gomaxprocs": gomaxprocs, "tasks_before": 4, "computing_goroutines": 1000,
            "computing": [{"ms": 0.0, "tasks": 4}, {"ms": 5.1, "tasks": computing_peak}],
            "computing_peak": computing_peak, "tasks_after_computing": after_compute,
            "blocked_goroutines": blocked, "blocking": [{"ms": 0.0, "tasks": after_compute},
                                                        {"ms": 5.2, "tasks": blocking_peak}],
            "blocking_peak": blocking_peak, "tasks_after_release": blocking_peak, "go": "go1.19.8"}


@pytest.mark.parametrize(
    "rec,expected",
    [
        (mn_rec(), Outcome.SUPPORTED),  # this VM: 99 threads for 100 blocked goroutines
        (mn_rec(blocking_peak=4 + round(100 * SHARE)), Outcome.SUPPORTED),  # exactly the share (half)
        (mn_rec(blocking_peak=3 + round(100 * SHARE)), Outcome.REFUTED),  # below: blocking does not cost threads
        (mn_rec(computing_peak=2 + GO_SLACK), Outcome.SUPPORTED),  # GOMAXPROCS + slack
        (mn_rec(computing_peak=3 + GO_SLACK), Outcome.REFUTED),  # computing goroutines got threads
        (mn_rec(computing_peak=1004), Outcome.REFUTED),  # one thread per goroutine (1:1)
    ],
)
def test_m_n_rule(rec, expected):
    outcome, _reason, checked = verdict("green.m-n", {"m-n": rec})
    assert outcome is expected, checked.checks
    assert {s.name for s in checked.series} == {"tasks while computing", "tasks while blocked in read(2)"}


def test_m_n_end_to_end_and_its_params(monkeypatch):
    monkeypatch.setattr(green, "go_subject", lambda: BUILT)
    monkeypatch.setattr(green, "unavailable", lambda: None)
    seen = []
    v = runner.run_claim(claim("green.m-n"), settings({"blocked": 40, "compute": 50}),
                         measure=lambda argv, t: seen.append(argv) or mn_rec(blocked=40, blocking_peak=30))
    assert "--blocked=40" in seen[0] and "--compute=50" in seen[0]
    assert v.outcome is Outcome.SUPPORTED, (v.summary, v.evidence["checks"])  # 26 threads for 40 blocked
    assert {s.name for s in v.series} == {"tasks while computing", "tasks while blocked in read(2)"}


def test_m_n_without_go_is_skipped_with_the_fix(monkeypatch):
    monkeypatch.setattr(green, "unavailable", lambda: _subjects.NO_GO)
    v = runner.run_claim(claim("green.m-n"), settings(), measure=lambda argv, t: pytest.fail("must not run"))
    assert v.outcome is Outcome.SKIPPED and "apt install golang-go" in v.summary
    # a toolchain that vanished between the check and the build: skipped too
    monkeypatch.setattr(green, "unavailable", lambda: None)
    monkeypatch.setattr(green, "go_subject", lambda: NO_GO)
    v = runner.run_claim(claim("green.m-n"), settings(), measure=lambda argv, t: pytest.fail("must not run"))
    assert v.outcome is Outcome.SKIPPED and "apt install golang-go" in v.summary


# --- the Go subject's build cache -------------------------------------------------------------------
def test_go_build_without_a_toolchain(monkeypatch):
    monkeypatch.setattr(_subjects, "go_tool", lambda: None)
    _subjects.go_subject.cache_clear()
    try:
        b = _subjects.go_subject()
        assert b.missing and b.path is None and "apt install golang-go" in b.reason
    finally:
        _subjects.go_subject.cache_clear()


def test_cache_root_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _subjects.cache_root() == tmp_path / "perflab"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/not/allowed")  # the XDG spec: absolute only
    assert _subjects.cache_root() == Path.home() / ".cache" / "perflab"


def test_python_subject_runs_isolated_with_this_interpreter():
    import sys

    argv = _subjects.python_subject("asyncio", "--cpu=1")
    assert argv[0] == sys.executable and argv[1:3] == ["-I", "-S"]
    assert Path(argv[3]).is_file() and argv[4:] == ["--variant=asyncio", "--cpu=1"]
    assert _subjects.GO_SOURCE.is_file()


def test_go_build_in_an_unwritable_cache_is_a_reported_failure(monkeypatch, tmp_path):
    if _subjects.go_tool() is None:
        pytest.skip("no Go toolchain")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # perflab/go cannot be created under a file
    _subjects.go_subject.cache_clear()
    try:
        b = _subjects.go_subject()
        assert b.path is None and not b.missing and b.log and "cannot build" in b.reason
    finally:
        _subjects.go_subject.cache_clear()
