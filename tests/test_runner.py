"""The runner on real claim plans with a fake kernel: sequential stopping, controls,
interleaving, failures, sharing. No process is started here."""

from __future__ import annotations

import math
import random

import pytest

from conftest import claim
from perflab.engine import runner
from perflab.core.claim import Settings
from perflab.core.errors import KernelFailed, KernelUnsupported
from perflab.core.params import BUDGETS
from perflab.core.record import Outcome, Reason

HOST = {"rlimit_nofile": {"soft": 20000, "hard": 20000}}


def settings(budget="quick", seed=11, params=None):
    c_params = params or {"max_fds": 0}
    return Settings(params=c_params, budget=BUDGETS[budget], seed=seed, cpu=1, host=HOST)


def arg(argv, key, default=None):
    for a in argv:
        if a.startswith(f"--{key}="):
            return a.split("=", 1)[1]
    return default


class FakeIomux:
    """Stands in for the iomux kernel: cost models per variant, noise, a call log."""

    def __init__(self, models, noise=0.03, seed=0, noisy_at=None):
        self.models = models
        self.noise = noise
        self.noisy_at = noisy_at or {}
        self.rng = random.Random(seed)
        self.calls = []

    def __call__(self, argv, timeout):
        self.calls.append(tuple(argv))
        variant, n = arg(argv, "variant"), int(arg(argv, "n"))
        noise = self.noisy_at.get(n, self.noise)
        value = self.models[variant](n) * math.exp(self.rng.gauss(0, noise))
        return {"per_op_ns": [value] * 3, "timer_overhead_ns": 20, "loop_overhead_ns": 0.3}


LINEAR = {"select": lambda n: 450 + 30 * n, "poll": lambda n: 450 + 28 * n}


def test_clear_effect_stops_at_the_first_look():
    fake = FakeIomux(LINEAR)
    v = runner.run_claim(claim("io.select-linear"), settings(), measure=fake)
    assert v.outcome is Outcome.SUPPORTED
    assert v.evidence["rounds"] == BUDGETS["quick"].looks[0]
    assert v.evidence["stopped_early"] is True
    assert v.controls[0].name == "a/a" and v.controls[0].passed


def test_null_effect_runs_to_the_budget_and_is_inconclusive():
    # exponent ~0.65: neither linear (>= 0.8) nor clearly sublinear (< 0.5)
    fake = FakeIomux({"select": lambda n: 450 + 120 * n**0.65})
    for budget in ("quick", "default"):
        v = runner.run_claim(claim("io.select-linear"), settings(budget), measure=fake)
        assert v.outcome is Outcome.INCONCLUSIVE and v.reason is Reason.BETWEEN and v.action
        assert v.evidence["rounds"] == BUDGETS[budget].looks[-1]
        assert [look["round"] for look in v.evidence["looks"]] == list(BUDGETS[budget].looks)


def test_failed_aa_control_makes_a_clear_effect_inconclusive():
    # the A/A sits where the decision lives (N = 1999, the top decade's lowest point), and
    # that point is far too noisy to show equivalence: never a confident verdict, and the
    # failed control is the reason given
    fake = FakeIomux(LINEAR, noisy_at={1999: 0.5})
    v = runner.run_claim(claim("io.select-linear"), settings(), measure=fake)
    assert v.outcome is Outcome.INCONCLUSIVE and v.reason is Reason.CONTROL
    assert "a/a" in v.summary and v.controls[0].passed is False
    assert v.evidence["rounds"] == BUDGETS["quick"].looks[-1]  # never stopped early
    assert "a/a: too noisy" in v.summary and "p90/p10" in v.summary  # says why, in words


def test_failed_positive_control_makes_flat_epoll_inconclusive():
    # a broken apparatus that sees no growth anywhere: the linear spin control catches it
    fake = FakeIomux({"epoll-lt": lambda n: 420.0, "spin": lambda n: 5.0})
    v = runner.run_claim(claim("io.epoll-flat"), settings(), measure=fake)
    assert v.decision.outcome is Outcome.SUPPORTED
    assert v.outcome is Outcome.INCONCLUSIVE
    assert {c.name: c.passed for c in v.controls} == {"a/a": True, "linear-spin": False}


def test_kernel_failure_is_an_error_verdict_with_stderr():
    def crash(argv, timeout):
        raise KernelFailed("iomux killed by signal SIGSEGV", stderr="segfault at 0x0", returncode=-11)

    v = runner.run_claim(claim("io.poll-linear"), settings(), measure=crash)
    assert v.outcome is Outcome.ERROR
    assert "SIGSEGV" in v.summary and v.evidence["stderr"] == "segfault at 0x0"


def test_unsupported_kernel_is_skipped_with_its_reason():
    def no(argv, timeout):
        raise KernelUnsupported("needs 30016 fds, RLIMIT_NOFILE hard limit is 20000")

    v = runner.run_claim(claim("io.poll-linear"), settings(params={"max_fds": 30000}), measure=no)
    assert v.outcome is Outcome.SKIPPED and "RLIMIT_NOFILE" in v.summary


def test_points_are_shuffled_interleaved_and_reproducible():
    a, b = FakeIomux(LINEAR), FakeIomux(LINEAR)
    runner.run_claim(claim("io.select-linear"), settings(seed=5), measure=a)
    runner.run_claim(claim("io.select-linear"), settings(seed=5), measure=b)
    assert a.calls == b.calls  # same seed, same plan order
    per_round = len(a.calls) // 3
    rounds = [a.calls[i * per_round : (i + 1) * per_round] for i in range(3)]
    ns = [[int(arg(c, "n")) for c in r] for r in rounds]
    assert ns[0] != sorted(ns[0]) and ns[0] != ns[1]
    c = FakeIomux(LINEAR)
    runner.run_claim(claim("io.select-linear"), settings(seed=6), measure=c)
    assert c.calls != a.calls


def test_budget_changes_samples_not_the_sweep():
    quick = {s.name: s.xs for s in claim("io.select-linear").plan(settings("quick")).series}
    rigorous = {s.name: s.xs for s in claim("io.select-linear").plan(settings("rigorous")).series}
    assert quick == rigorous
    assert max(quick["select"]) == 20000 - 16 and min(quick["select"]) == 1


def test_claims_share_identical_measurements_within_a_run():
    models = {"epoll-lt": lambda n: 420.0, "epoll-et": lambda n: 440.0, "spin": lambda n: 1 + 1.1 * n}
    cache = runner.SampleCache()
    first = FakeIomux(models)
    v1 = runner.run_claim(claim("io.epoll-flat"), settings(), measure=first, cache=cache)
    second = FakeIomux(models)
    v2 = runner.run_claim(claim("io.epoll-needs-edge"), settings(), measure=second, cache=cache)
    assert v1.outcome is Outcome.SUPPORTED and v2.outcome is Outcome.REFUTED
    assert all(arg(c, "variant") == "epoll-et" for c in second.calls)  # the rest was reused
    assert v2.evidence["samples_shared_with_earlier_claims"] > 0
    # within one claim every sample is still its own process: no record used twice
    ids = [id(s.record) for s in v2.samples]
    assert len(ids) == len(set(ids))


def test_rerun_command_reproduces_the_plan():
    v = runner.run_claim(claim("io.select-linear"), settings(seed=42, params={"max_fds": 5000}), measure=FakeIomux(LINEAR))
    assert v.rerun == "perflab run io.select-linear --seed 42 --budget quick --cpu 1 --param max_fds=5000"
    # the default 0 means "hard RLIMIT_NOFILE minus 16" here; the rerun names what it was
    auto = runner.run_claim(claim("io.select-linear"), settings(seed=42, params={"max_fds": 0}), measure=FakeIomux(LINEAR))
    assert auto.rerun.endswith("--param max_fds=19984")
    assert max(p.x for s in auto.series for p in s.points if p.x is not None) == 19984
    assert auto.evidence["facts"]["max_fds"] == {"value": 19984,
                                                 "source": "hard RLIMIT_NOFILE 20000 minus 16 (stdio, the epoll "
                                                           "descriptor, slack)"}


@pytest.mark.parametrize("budget", sorted(BUDGETS))
def test_budgets_split_alpha_over_their_looks(budget):
    b = BUDGETS[budget]
    assert b.conf_at_look() == pytest.approx(1 - 0.05 / len(b.looks))
    assert list(b.looks) == sorted(set(b.looks))


# --- structural claims: exact checks
from perflab.core.claim import Check, Checked, Claim  # noqa: E402
from perflab.core.errors import ClaimSkipped  # noqa: E402
from perflab.core.record import Control  # noqa: E402
from perflab.core.rule import exact  # noqa: E402


def structural(result):
    def observe(settings, measure):
        if isinstance(result, Exception):
            raise result
        return {"given": "observations"}

    def judge(obs, rule):
        assert obs == {"given": "observations"}
        return result

    return Claim(id="test.exact", statement="s", seed_point="t", mechanism="m", kernel="space",
                 rule=exact("all hold"), observe=observe, judge=judge)


def ck(holds):
    return Check("c", 1, 1 if holds else 2, holds)


@pytest.mark.parametrize(
    "checks,controls,expected",
    [
        ([ck(True), ck(True)], [], Outcome.SUPPORTED),
        ([ck(True), ck(False)], [], Outcome.REFUTED),
        ([ck(True), ck(None)], [], Outcome.INCONCLUSIVE),
        ([], [], Outcome.INCONCLUSIVE),
        ([ck(True)], [Control("probe", "positive", False, {})], Outcome.INCONCLUSIVE),
        ([ck(False)], [Control("probe", "positive", True, {})], Outcome.REFUTED),
    ],
)
def test_exact_rule_every_outcome(checks, controls, expected):
    v = runner.run_claim(structural(Checked(checks, controls)), settings())
    assert v.outcome is expected
    assert len(v.evidence["checks"]) == len(checks)
    assert v.evidence["observed"] == {"given": "observations"}  # kept, to decide again
    assert (v.reason is not None) == (expected is Outcome.INCONCLUSIVE)


def test_structural_skip_and_error():
    v = runner.run_claim(structural(ClaimSkipped("needs root")), settings())
    assert v.outcome is Outcome.SKIPPED and "needs root" in v.summary
    v = runner.run_claim(structural(KernelFailed("x exited 3", stderr="oops")), settings())
    assert v.outcome is Outcome.ERROR and v.evidence["stderr"] == "oops"


def test_a_claim_is_measured_or_structural_not_both():
    with pytest.raises(TypeError):
        Claim(id="t.x", statement="s", seed_point="t", mechanism="m", kernel="k", rule=exact("x"))


def test_what_the_rule_found_is_kept_as_evidence_not_thresholds():
    import dataclasses

    base = claim("io.select-linear")

    def decide(ev, rule):
        d = base.decide(ev, rule)
        d.evidence["points seen"] = sorted(ev.series["select"].points)
        return d

    v = runner.run_claim(dataclasses.replace(base, decide=decide), settings(), measure=FakeIomux(LINEAR))
    assert v.evidence["rule"]["points seen"] == [p.x for p in v.series_named("select").points]
    assert "points seen" not in v.decision.thresholds
    plain = runner.run_claim(base, settings(), measure=FakeIomux(LINEAR))
    assert "rule" not in plain.evidence


def test_io_claims_skip_on_a_low_descriptor_limit_naming_the_fix():
    from perflab.claims import io

    assert io.fd_room({"rlimit_nofile": {"soft": 1024, "hard": 20000}}) is None
    assert io.fd_room({"rlimit_nofile": {"soft": 1024, "hard": -1}}) is None  # RLIM_INFINITY
    low = io.fd_room({"rlimit_nofile": {"soft": 64, "hard": 64}})
    assert "hard RLIMIT_NOFILE is 64" in low and "ulimit -Hn" in low
    s = Settings(params={"max_fds": 0}, budget=BUDGETS["quick"], seed=1, cpu=1,
                 host={"rlimit_nofile": {"soft": 64, "hard": 64}})
    v = runner.run_claim(claim("io.epoll-flat"), s, measure=FakeIomux(LINEAR))
    assert v.outcome is Outcome.SKIPPED and "ulimit -Hn" in v.summary



@pytest.mark.parametrize("text,ok", [("0", True), ("1000", True), ("5000", True), ("10", False), ("999", False),
                                     ("20000000", False)])
def test_max_fds_is_0_or_a_sweep_long_enough(text, ok):
    from perflab.claims import io
    from perflab.core.errors import UsageError

    if ok:
        assert io.MAX_FDS.parse(text) == int(text)
    else:
        with pytest.raises(UsageError):
            io.MAX_FDS.parse(text)
    # a container's LimitNOFILE=infinity: the rerun must name a value the parser accepts
    huge = io.MAX_FDS.resolved(0, {"rlimit_nofile": {"soft": 1 << 30, "hard": 1 << 30}})
    assert io.MAX_FDS.parse(str(huge)) == huge


def test_a_stored_verdict_decides_again_to_the_same_answer():
    """Deciding is pure: the record (with its samples) decided again gives the same
    decision, value and CI, and a JSON round trip changes nothing."""
    from perflab.core.record import Verdict
    from perflab.engine import rejudge

    for model, cid in ((LINEAR, "io.select-linear"), ({"select": lambda n: 450 + 120 * n**0.65}, "io.select-linear"),
                       ({"epoll-lt": lambda n: 420.0, "spin": lambda n: 1 + 1.1 * n}, "io.epoll-flat")):
        v = runner.run_claim(claim(cid), settings(), measure=FakeIomux(model))
        stored = Verdict.from_json(__import__("json").loads(__import__("json").dumps(v.to_json(samples=True))))
        result = rejudge.decide_again(claim(cid), stored)
        again = result.new
        assert result.basis == "samples" and not result.changed
        assert (again.outcome, again.reason, again.decision.value, again.decision.ci) == \
               (v.outcome, v.reason, v.decision.value, v.decision.ci)
        assert [c.to_json() for c in again.controls] == [c.to_json() for c in v.controls]


def test_without_its_samples_a_record_is_decided_from_its_points_and_says_so():
    from perflab.core.record import Verdict
    from perflab.engine import rejudge

    v = runner.run_claim(claim("io.select-linear"), settings("default"), measure=FakeIomux(LINEAR))
    bare = Verdict.from_json(v.to_json(samples=False))
    result = rejudge.decide_again(claim("io.select-linear"), bare)
    assert result.basis == "points" and "approximate" in result.note
    assert result.new.outcome is v.outcome  # a clear effect stays clear
    assert abs(result.new.decision.value - v.decision.value) < 0.05


def test_the_aa_control_sits_in_the_top_decade_where_the_exponent_is_fitted():
    s = settings()
    name, x = claim("io.select-linear").aa_config(s)
    xs = claim("io.select-linear").plan(s).series[0].xs
    assert name == "select" and x == min(v for v in xs if v >= max(xs) / 10)
