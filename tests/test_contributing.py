"""CONTRIBUTING.md's worked example works as written: its module loads as a claim
topic, its rule test passes against it, and the claim runs (with a fake kernel here, and
live with the real one)."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

import perflab.claims
from perflab.core.params import BUDGETS
from perflab.core.claim import Settings
from perflab.core.record import Outcome
from perflab.engine import process, runner

DOC = Path(__file__).resolve().parent.parent / "CONTRIBUTING.md"


def blocks() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    return {m.group(1): m.group(2) for m in re.finditer(r"```python file=(\S+)\n(.*?)```", text, re.S)}


@pytest.fixture
def example(tmp_path, monkeypatch):
    """The example's module as perflab.claims.syscost, from a directory of its own."""
    code = blocks()["claims/syscost.py"]
    (tmp_path / "syscost.py").write_text(code)
    monkeypatch.setattr(perflab.claims, "__path__", [*perflab.claims.__path__, str(tmp_path)])
    sys.modules.pop("perflab.claims.syscost", None)
    module = importlib.import_module("perflab.claims.syscost")
    yield module
    sys.modules.pop("perflab.claims.syscost", None)


def test_the_doc_has_the_module_and_the_test():
    assert set(blocks()) == {"claims/syscost.py", "tests/test_syscost_rules.py"}


def test_the_example_rule_test_passes(example):
    namespace: dict = {}
    exec(compile(blocks()["tests/test_syscost_rules.py"], "test_syscost_rules.py", "exec"), namespace)
    test = namespace["test_rule"]
    cases = next(m for m in test.pytestmark if m.name == "parametrize").args[1]
    assert {c[1][0] for c in cases} == set(Outcome) - {Outcome.SKIPPED, Outcome.ERROR}  # every outcome
    for args in cases:
        test(*args)


def _fake_space(argv, timeout):
    variant = next(a.split("=", 1)[1] for a in argv if a.startswith("--variant="))
    return {"per_op_ns": [{"syscall-getppid": 170.0, "function-call": 1.0}[variant]] * 5}


def test_the_example_claim_runs_and_is_hashed(example):
    (claim,) = example.CLAIMS
    settings = Settings(params={}, budget=BUDGETS["quick"], seed=1, cpu=1, host={})
    v = runner.run_claim(claim, settings, measure=_fake_space)
    assert v.outcome is Outcome.SUPPORTED and v.decision.thresholds == claim.rule.thresholds()
    assert process.kernel_path(claim.kernel).exists()


@pytest.mark.live
def test_the_example_claim_runs_live(example):
    (claim,) = example.CLAIMS
    settings = Settings(params={}, budget=BUDGETS["quick"], seed=1, cpu=sorted(__import__("os").sched_getaffinity(0))[-1],
                        host={})
    v = runner.run_claim(claim, settings)
    assert v.outcome in (Outcome.SUPPORTED, Outcome.INCONCLUSIVE), v.summary
    assert v.decision.value > 20 or v.outcome is Outcome.INCONCLUSIVE
