"""green.* decision rules both ways (and the middle), on synthetic data: the ratio rules
on realistic series, the exact checks on subject records, the positive controls against
broken probes. No kernel runs here: structural claims get a fake measure."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from conftest import CONF, NBOOT, claim, decide_points, synthetic
from perflab.engine import runner
from perflab.core.claim import Settings
from perflab.claims import _subjects, green
from perflab.core.model import BUDGETS, Outcome, Series

decide = decide_points


def settings(params=None):
    return Settings(params=params or {}, budget=BUDGETS["quick"], seed=3, cpu=1, host={})


# --- green.switch-cheaper: thread (futex) / register >= 10 supported, <= 3 refuted ----------
@pytest.mark.parametrize(
    "register,thread,expected",
    [
        (7.0, 2100.0, Outcome.SUPPORTED),  # this VM: 300x
        (150.0, 2100.0, Outcome.SUPPORTED),  # 14x
        (400.0, 2100.0, Outcome.INCONCLUSIVE),  # 5x: between the thresholds
        (900.0, 2100.0, Outcome.REFUTED),  # 2.3x
        (2500.0, 2100.0, Outcome.REFUTED),  # a "green" switch slower than the kernel's
    ],
)
def test_switch_rule(register, thread, expected):
    d = decide("green.switch-cheaper", register=register, swapcontext=230.0, thread_futex=thread,
               thread_pipe=2500.0, process_pipe=2600.0)
    assert d.outcome is expected, d
    table = d.evidence["switches (ns, same CPU)"]
    assert table["thread-futex"]["x register"] == pytest.approx(thread / register, rel=0.1)


def test_switch_rule_says_why_goroutines_are_missing(monkeypatch):
    monkeypatch.setattr(green, "unavailable", lambda: _subjects.NO_GO)
    d = decide("green.switch-cheaper", register=7.0, thread_futex=2100.0)
    assert "apt install golang-go" in d.evidence["switches (ns, same CPU)"]["goroutine"]["not measured"]
    assert "register" in d.reason and "thread-futex" in d.reason  # the ordering, printed


# --- green.asyncio-cheaper: thread (futex) / asyncio >= 10 supported, <= 3 refuted -----------
@pytest.mark.parametrize(
    "asyncio_ns,expected",
    [
        (100.0, Outcome.SUPPORTED),  # 21x: what the belief expects
        (180.0, Outcome.SUPPORTED),  # 11.7x
        (420.0, Outcome.INCONCLUSIVE),  # 5x
        (800.0, Outcome.REFUTED),  # 2.6x
        (1800.0, Outcome.REFUTED),  # about this VM: an asyncio switch costs a thread switch
    ],
)
def test_asyncio_rule(asyncio_ns, expected):
    d = decide("green.asyncio-cheaper", asyncio=asyncio_ns, generator=13.0, python_thread=5800.0,
               thread_futex=2100.0)
    assert d.outcome is expected, d
    assert set(d.evidence["switches (ns)"]) == {"asyncio", "generator", "python-thread", "thread-futex"}


# --- the same-CPU positive control (both switch claims) -------------------------------------
def control_series(value):
    return {"same-cpu-switches": synthetic("same-cpu-switches", (None,), lambda _x: value, n=5, noise=0,
                                           outlier_every=0, x=None)}


def test_same_cpu_control_both_ways():
    ok = green.same_cpu_control(control_series(1.0005), CONF, random.Random(1), NBOOT)
    # a partner spinning on another CPU (no switch per round trip), or a counter that
    # cannot see switches, reads near 0: the control must fail
    broken = green.same_cpu_control(control_series(0.02), CONF, random.Random(1), NBOOT)
    assert ok.passed is True and broken.passed is False
    empty = green.same_cpu_control({"same-cpu-switches": Series("same-cpu-switches", None, "switches")},
                                   CONF, random.Random(1), NBOOT)
    assert empty.passed is None


# --- green.not-tasks: exact counts --------------------------------------------------------------
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


def run_not_tasks(monkeypatch, threads, aio, go, have_go=True):
    build = _subjects.GoBuild(Path("/nonexistent/green")) if have_go else _subjects.GoBuild(None, _subjects.NO_GO)
    monkeypatch.setattr(green, "go_subject", lambda: build)
    return runner.run_claim(claim("green.not-tasks"), settings(), measure=FakeSubjects(threads, aio, go))


@pytest.mark.parametrize(
    "threads,aio,go,expected",
    [
        (threads_rec(), aio_rec(), go_rec(), Outcome.SUPPORTED),
        (threads_rec(), aio_rec(), go_rec(during=11), Outcome.SUPPORTED),  # 10 added = GOMAXPROCS + 8
        (threads_rec(), aio_rec(added=1), go_rec(), Outcome.REFUTED),  # asyncio made a thread
        (threads_rec(added=999), aio_rec(), go_rec(), Outcome.REFUTED),  # a thread is not a task?
        (threads_rec(status_added=990), aio_rec(), go_rec(), Outcome.REFUTED),
        (threads_rec(), aio_rec(), go_rec(during=12), Outcome.REFUTED),  # 11 added > 10
        (threads_rec(), aio_rec(), go_rec(during=5004), Outcome.REFUTED),  # a thread per goroutine
        (threads_rec(), aio_rec(blocked=9000), go_rec(), Outcome.INCONCLUSIVE),  # tasks not all blocked
        (threads_rec(), aio_rec(), {**go_rec(), "goroutines_alive": 42}, Outcome.INCONCLUSIVE),  # nor goroutines
    ],
)
def test_not_tasks_rule(monkeypatch, threads, aio, go, expected):
    v = run_not_tasks(monkeypatch, threads, aio, go)
    assert v.outcome is expected, (v.summary, v.evidence["checks"])
    assert len(v.evidence["checks"]) == 3


def test_not_tasks_without_go_decides_on_asyncio_and_threads(monkeypatch):
    # CLAIMS.md: goroutines "(Go toolchain present) or" asyncio tasks
    fake_go = go_rec()
    v = run_not_tasks(monkeypatch, threads_rec(), aio_rec(), fake_go, have_go=False)
    assert v.outcome is Outcome.SUPPORTED
    assert len(v.evidence["checks"]) == 2
    assert "apt install golang-go" in v.evidence["go"]["not evaluated"]
    assert [c["holds"] for c in v.evidence["checks"]] == [True, True]


def test_not_tasks_go_build_failure_is_an_error(monkeypatch):
    monkeypatch.setattr(green, "go_subject", lambda: _subjects.GoBuild(None, "go build failed", log="syntax error"))
    v = runner.run_claim(claim("green.not-tasks"), settings(), measure=FakeSubjects(threads_rec(), aio_rec(), None))
    assert v.outcome is Outcome.ERROR and "syntax error" in v.evidence["stderr"]


@pytest.mark.parametrize("py_seen,go_seen", [(0, 4), (4, 0), (3, 4)])
def test_task_probe_control_rejects_a_blind_probe(monkeypatch, py_seen, go_seen):
    """All checks hold, but the probe did not see the control threads: inconclusive."""
    v = run_not_tasks(monkeypatch, threads_rec(), aio_rec(seen=py_seen), go_rec(seen=go_seen))
    assert v.outcome is Outcome.INCONCLUSIVE
    assert v.controls[0].name == "task-probe" and v.controls[0].passed is False
    assert all(c["holds"] for c in v.evidence["checks"])


def test_task_probe_go_side_reads_the_tids_not_the_count(monkeypatch):
    # the runtime reused parked threads: the count grew by 1, yet all 4 locked threads are listed
    v = run_not_tasks(monkeypatch, threads_rec(), aio_rec(), go_rec(seen=4, grew=1))
    assert v.controls[0].passed is True and v.outcome is Outcome.SUPPORTED
    # two goroutines reporting one TID were not on threads of their own: the probe is not trusted
    v = run_not_tasks(monkeypatch, threads_rec(), aio_rec(), go_rec(seen=4, tids=(101, 101, 103, 104)))
    assert v.controls[0].passed is False and v.outcome is Outcome.INCONCLUSIVE


# --- green.m-n -----------------------------------------------------------------------------------
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
        (mn_rec(blocking_peak=54), Outcome.SUPPORTED),  # 50 = half
        (mn_rec(blocking_peak=53), Outcome.REFUTED),  # 49 < half: blocking does not cost threads
        (mn_rec(computing_peak=10), Outcome.SUPPORTED),  # GOMAXPROCS + 8
        (mn_rec(computing_peak=11), Outcome.REFUTED),  # computing goroutines got threads
        (mn_rec(computing_peak=1004), Outcome.REFUTED),  # one thread per goroutine (1:1)
    ],
)
def test_m_n_rule(monkeypatch, rec, expected):
    monkeypatch.setattr(green, "go_subject", lambda: _subjects.GoBuild(Path("/nonexistent/green")))
    monkeypatch.setattr(green, "unavailable", lambda: None)
    v = runner.run_claim(claim("green.m-n"), settings(), measure=lambda argv, t: rec)
    assert v.outcome is expected, (v.summary, v.evidence["checks"])
    assert {s.name for s in v.series} == {"tasks while computing", "tasks while blocked in read(2)"}


def test_m_n_passes_its_params_to_the_subject(monkeypatch):
    monkeypatch.setattr(green, "go_subject", lambda: _subjects.GoBuild(Path("/nonexistent/green")))
    monkeypatch.setattr(green, "unavailable", lambda: None)
    seen = []
    runner.run_claim(claim("green.m-n"), settings({"blocked": 40, "compute": 50}),
                     measure=lambda argv, t: seen.append(argv) or mn_rec(blocked=40, blocking_peak=30))
    assert "--blocked=40" in seen[0] and "--compute=50" in seen[0]


def test_m_n_without_go_is_skipped_with_the_fix(monkeypatch):
    monkeypatch.setattr(green, "unavailable", lambda: _subjects.NO_GO)
    v = runner.run_claim(claim("green.m-n"), settings(), measure=lambda argv, t: pytest.fail("must not run"))
    assert v.outcome is Outcome.SKIPPED and "apt install golang-go" in v.summary
    # a toolchain that vanished between the check and the build: skipped too
    monkeypatch.setattr(green, "unavailable", lambda: None)
    monkeypatch.setattr(green, "go_subject", lambda: _subjects.GoBuild(None, _subjects.NO_GO))
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
