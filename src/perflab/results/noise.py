"""One line about the machine's steadiness during a run, from its A/A controls.

Each A/A compares two sets of processes of one configuration (verdict.aa_control) and
reports how far they spread (p90/p10, 1.0 on a steady machine). When some failed, the
user should hear once, at the end, that the machine was noisy: those verdicts are
inconclusive for that reason, not because the claim is in doubt.
"""

from __future__ import annotations

import sys
from typing import TextIO

from perflab.core.record import Verdict
from perflab.core.safe import safe


def noise_summary(verdicts: list[Verdict]) -> str | None:
    """None when every A/A passed (or there were none); else one line naming the claims."""
    aa = [(v.claim, c) for v in verdicts for c in v.controls if c.kind == "negative"]
    failed = [(claim, c) for claim, c in aa if c.passed is False]
    if not failed:
        return None
    spreads = [c.detail["spread_p90_over_p10"] for _, c in failed if c.detail.get("spread_p90_over_p10")]
    spread = f"; their processes spread up to {max(spreads):.2f}x (p90/p10, 1.0 on a steady machine)" if spreads else ""
    names = ", ".join(safe(claim) for claim, _ in failed)
    return (f"{len(failed)} of {len(aa)} A/A controls failed ({names}){spread}: the machine was not steady enough "
            "for them, so their verdicts are inconclusive; run them again later (each verdict's rerun line)")


def warn_if_noisy(verdicts: list[Verdict], out: TextIO | None = None) -> None:
    """The summary as perflab's last line on stderr, when there is one (run and show)."""
    note = noise_summary(verdicts)
    if note:
        print(f"perflab: {note}", file=out or sys.stderr)
