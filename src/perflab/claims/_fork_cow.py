"""fork.cow's observations and exact checks (pure): the frames of parent and child after
each phase (from pagemap, summarized so that a record stays small whatever the number of
pages) and the child's minor faults, judged with the numbers of the claim's rule."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from perflab.core.claim import Check
from perflab.core.rule import Rule

Frames = Sequence[Sequence[int | None]] | None  # (parent PFN, child PFN) per page; None: no root


def write_fault_bounds(k: int, rule: Rule) -> tuple[int, float]:
    return k, rule["write_faults_factor"] * k + rule["write_faults_slack"]


def frames_summary(frames: Frames) -> dict[str, Any] | None:
    """What the checks need of (parent PFN, child PFN) per page, as plain data: counts of
    shared frames, of child pages on new frames and of parent pages present, and the
    first few pairs (None: PFNs not readable here)."""
    if frames is None:
        return None
    return {"pages": len(frames),
            "shared": sum(1 for p, c in frames if p is not None and p == c),
            "child_on_new_frames": sum(1 for p, c in frames if p is not None and c is not None and p != c),
            "present": sum(1 for p, _c in frames if p),
            "first": [list(f) for f in frames[:4]]}


def cow_observation(k: int, after_fork: Frames, after_read: Frames, after_write: Frames, read_faults: int,
                    write_faults: int, parent_intact: bool, mapcount_after_fork: Sequence[int | None] | None = None,
                    frames_note: str | None = None) -> dict[str, Any]:
    """fork.cow's observations (plain data, small whatever k): the frames of both
    processes after each phase summarized, the child's faults, the parent's memory."""
    kept = None
    if after_fork is not None and after_write is not None:
        kept = sum(1 for (p0, _c0), (p1, _c1) in zip(after_fork, after_write) if p0 is not None and p0 == p1)
    return {"pages": k, "after_fork": frames_summary(after_fork), "after_read": frames_summary(after_read),
            "after_write": frames_summary(after_write), "parent_kept": kept,
            "kpagecount_after_fork": None if mapcount_after_fork is None else
            sorted(set(x for x in mapcount_after_fork if x is not None)),
            "read_faults": read_faults, "write_faults": write_faults, "parent_intact": bool(parent_intact),
            "frames_note": frames_note}


def cow_checks(obs: Mapping[str, Any], rule: Rule) -> list[Check]:
    """Decision of fork.cow (pure) on its observations: frames summaries are None when
    page frame numbers cannot be read here (not root)."""
    no_root = "page frame numbers need root (CAP_SYS_ADMIN): pagemap hides them; not evaluated"
    k, read_faults, write_faults = obs["pages"], obs["read_faults"], obs["write_faults"]
    read_max = rule["read_faults_max"]

    def frame_check(name: str, expected: str, summ: Mapping[str, Any] | None, key: str) -> Check:
        if summ is None:
            return Check(name, expected, None, None, no_root)
        return Check(name, expected, {key: summ[key], "pages": summ["pages"]}, holds=summ[key] == summ["pages"])

    lo, hi = write_fault_bounds(k, rule)
    checks = [
        frame_check(f"after fork: child and parent map the same physical frames ({k} pages)", "all shared",
                    obs["after_fork"], "shared"),
        Check(f"child reads {k} pages: minor faults", f"<= {read_max:g}", read_faults,
              holds=read_faults <= read_max),
        frame_check("after reading: still the same frames", "all shared", obs["after_read"], "shared"),
        Check(f"child writes {k} pages: minor faults", f"between {lo} and {hi:g}", write_faults,
              holds=lo <= write_faults <= hi),
        frame_check("after writing: the child's pages are on new frames", "all new", obs["after_write"],
                    "child_on_new_frames"),
    ]
    if obs["parent_kept"] is None:
        checks.append(Check("after writing: the parent keeps its frames", "unchanged", None, None, no_root))
    else:
        pages = obs["after_fork"]["pages"]
        checks.append(Check("after writing: the parent keeps its frames", "unchanged",
                            {"kept": obs["parent_kept"], "pages": pages}, holds=obs["parent_kept"] == pages))
    checks.append(Check("the parent's memory is unchanged by the child's writes", True, obs["parent_intact"],
                        holds=bool(obs["parent_intact"])))
    return checks
