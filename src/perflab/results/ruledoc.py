"""The decision rules as documentation, generated from the Rule objects (core/rule.py).

README's claim table and each ``docs/claims/<topic>.md``'s "Decisions" section are the
text between a pair of markers, written by ``python tools/gen_docs.py`` and checked by
``tests/test_rules_as_data.py``: when a rule changes, the docs change with it or the
test fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from perflab.core.claim import Claim
from perflab.core.rule import Rule, num

BEGIN = "<!-- generated from the rules: python tools/gen_docs.py -->"
END = "<!-- end of generated text -->"
BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def readme_table(claims: Iterable[Claim]) -> str:
    rows = ["| claim | prediction | decision (fixed in advance) | rule |", "|---|---|---|---|"]
    for c in claims:
        rows.append(f"| `{c.id}` | {_cell(c.statement)} | {_cell(c.rule.row())} | v{c.rule.version} |")
    return "\n".join(rows)


def _rule_lines(rule: Rule, indent: str = "") -> list[str]:
    lines = [f"{indent}- quantity: {rule.quantity}" + (f" ({rule.unit})" if rule.unit else "")]
    th = rule.thresholds()
    lines.append(f"{indent}- supported: {th['supported']}")
    lines.append(f"{indent}- refuted: {th['refuted']}")
    if "combine" in th:
        lines.append(f"{indent}- parts combine: {th['combine']}")
    if rule.constants:
        lines.append(f"{indent}- constants: " + ", ".join(f"{k} = {num(v)}" for k, v in rule.constants.items()))
    for p in rule.parts:
        lines.append(f"{indent}- part *{p.name}*:")
        lines += _rule_lines(p, indent + "  ")
    if rule.reason and not indent:
        lines.append(f"{indent}- why these thresholds: {rule.reason}")
    return lines


def topic_section(claims: Iterable[Claim]) -> str:
    out = ["## Decisions", "", "Each rule as perflab applies it (its version, then the numbers it decides with). "
           "The CI is the decision quantity's confidence interval at each planned look.", ""]
    for c in claims:
        out.append(f"### `{c.id}` (rule version {c.rule.version})")
        out.append("")
        out += _rule_lines(c.rule)
        out.append("")
    return "\n".join(out).rstrip()


def fill(text: str, generated: str) -> str:
    """``text`` with its generated block replaced (appended, with its markers, if absent)."""
    block = f"{BEGIN}\n{generated}\n{END}"
    if BLOCK.search(text):
        return BLOCK.sub(lambda _m: block, text, count=1)
    return text.rstrip() + "\n\n" + block + "\n"


def outside_generated(text: str) -> str:
    """The hand-written part of a document (every generated block removed)."""
    return BLOCK.sub("", text)


def expected_files(root: Path, claims: list[Claim]) -> dict[Path, str]:
    """Each documentation file with its generated part as the rules make it now."""
    out: dict[Path, str] = {}
    readme = root / "README.md"
    out[readme] = fill(readme.read_text(encoding="utf-8"), readme_table(claims))
    for topic in sorted({c.topic for c in claims}):
        page = root / "docs" / "claims" / f"{topic}.md"
        text = page.read_text(encoding="utf-8") if page.exists() else f"# {topic}.*\n"
        out[page] = fill(text, topic_section([c for c in claims if c.topic == topic]))
    return out
