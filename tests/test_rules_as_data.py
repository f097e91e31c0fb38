"""Each decision rule exists once, as data (core/rule.py): the generated docs agree with
it, and no claim module types one of its numbers again."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from perflab.core.rule import Region, Rule
from perflab.engine import registry
from perflab.results import ruledoc

REPO = Path(__file__).resolve().parent.parent
CLAIMS_DIR = REPO / "src" / "perflab" / "claims"
TRIVIAL = {0, 1, -1, 2}  # counts and halves are everywhere; a threshold of 1 or 2 is named in its rule
RULE_BUILDERS = {"Rule", "Region", "exact"}


def module_rules(path: Path) -> list[Rule]:
    """Every Rule a claim module holds: its claims' rules and its module-level rules."""
    import importlib

    module = importlib.import_module(f"perflab.claims.{path.stem}")
    found = [c.rule for c in getattr(module, "CLAIMS", [])]
    found += [v for v in vars(module).values() if isinstance(v, Rule)]
    return found


def literals_outside_rules(tree: ast.AST) -> list[tuple[int, float]]:
    """Numeric literals used as thresholds outside a Rule(...), Region(...) or exact(...)
    call: in a comparison (``ratio >= 1.5``, ``n <= 1.1 * k + 2``) or in a pair of
    numbers with a fraction (an interval written as a tuple). Sizes, counts and timeouts of a plan are
    neither, and are not thresholds."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name in RULE_BUILDERS:
                inside.update(id(n) for n in ast.walk(node))
    candidates: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            candidates.update(id(n) for n in ast.walk(node))
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2 and all(
                isinstance(e, ast.Constant) and type(e.value) in (int, float) for e in node.elts) and any(
                type(e.value) is float for e in node.elts):  # an interval, not a (size, count) pair
            candidates.update(id(e) for e in node.elts)
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and type(node.value) in (int, float) and id(node) in candidates
                and id(node) not in inside):
            out.append((node.lineno, node.value))
    return sorted(out)


def test_generated_docs_agree_with_the_rules():
    p = subprocess.run([sys.executable, str(REPO / "tools" / "gen_docs.py"), "--check"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("path", sorted(CLAIMS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_no_rule_number_is_typed_again_in_its_module(path):
    if path.name == "__init__.py":
        return
    numbers = {float(n) for r in module_rules(path) for n in r.numbers()} - TRIVIAL
    tree = ast.parse(path.read_text(encoding="utf-8"))
    again = [(line, v) for line, v in literals_outside_rules(tree) if float(v) in numbers]
    assert not again, f"{path.name}: a rule's number typed outside its Rule (read it from the rule): {again}"


def test_hand_written_docs_do_not_repeat_a_rules_interval():
    """A two-sided region ([0.8, 1.25]) written by hand in README or docs/claims drifts
    when the rule changes; only the generated blocks may show it."""
    texts = [REPO / "README.md", *sorted((REPO / "docs" / "claims").glob("*.md"))]
    regions = set()
    for c in registry.all_claims():
        stack = [c.rule]
        while stack:
            r = stack.pop()
            stack += r.parts
            regions |= {reg.text() for reg in (r.supported, r.refuted) if reg and reg.text().startswith("in [")}
    for path in texts:
        prose = ruledoc.outside_generated(path.read_text(encoding="utf-8"))
        for text in regions:
            interval = text[len("in "):]
            assert interval not in prose, f"{path.name} repeats the rule interval {interval} by hand"


def test_the_literal_scan_finds_a_typed_threshold():
    """The scan above can fail: a threshold typed beside its rule is found."""
    src = ('R = Rule(quantity="q", short="q", supported=Region(0.8, 1.25))\nSIZES = (64, 1.25, 9)\n'
           'def ok(x):\n    return x >= 1.25\nBOUNDS = (0.8, 1.25)\n')
    found = literals_outside_rules(ast.parse(src))
    assert found == [(4, 1.25), (5, 0.8), (5, 1.25)]
    assert Region(0.8, 1.25).text() == "in [0.8, 1.25]"
