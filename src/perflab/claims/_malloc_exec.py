"""malloc.heap-after-exec's exact checks (pure): on the heapexec kernel's records and the
brk calls traced in a freshly exec'd subject, with the numbers of the claim's rule."""

from __future__ import annotations

from typing import Any, Mapping

from perflab.core.claim import Check
from perflab.core.rule import Rule


def subject_checks(label: str, rec: Mapping[str, Any], brk_total: int, brk_region: int, rule: Rule) -> list[Check]:
    """Pure: a freshly exec'd subject's [heap] is made by its own brk. brk_total: brk calls
    over the whole run (from execve); brk_region: those between main's entry and the end."""
    own = rule["own_brk_calls"]
    before_main = brk_total - brk_region
    heap0 = bool(rec["heap_at_main"])
    if heap0:
        h1 = Check(f"{label}: a heap mapping at main's entry was made by the program's own brk before main",
                   f">= {own:g} brk call between execve and main", before_main, holds=before_main >= own,
                   note="static glibc sets up its TLS with sbrk before main (csu/libc-tls.c)")
    else:
        h1 = Check(f"{label}: no heap mapping at main's entry", "none", "none", holds=True,
                   note=f"{before_main} brk call(s) before main did not grow the break (brk(NULL) queries)")
    h2 = Check(f"{label}: after the program's first malloc its block is in a heap mapping made by its own brk",
               f"block in the heap mapping, >= {own:g} brk since execve",
               {"block_in_heap": bool(rec["block_in_heap"]), "brk_calls": brk_total},
               holds=bool(rec["block_in_heap"]) and brk_total >= own)
    return [h1, h2]


def probe_check(label: str, rec: Mapping[str, Any]) -> Check:
    """Pure: the parent's heap block (address and cookie) is gone after execve."""
    survived = bool(rec["probe_mapped"]) and bool(rec["probe_cookie"])
    return Check(f"{label}: the pre-exec heap block at {rec['probe']:#x} does not survive execve",
                 "not mapped, or mapped without the parent's contents",
                 {"mapped": bool(rec["probe_mapped"]), "holds_cookie": bool(rec["probe_cookie"])},
                 holds=not survived)


def fork_checks(rec: Mapping[str, Any]) -> list[Check]:
    """Pure: a forked child has the parent's heap (range, contents) on the same frames."""
    same_range = bool(rec["child_heap"]) and (rec["child_heap_lo"], rec["child_heap_hi"]) == (
        rec["parent_heap_lo"], rec["parent_heap_hi"])
    checks = [
        Check("forked child: the parent's heap mapping (range and contents)", "same range, cookie readable",
              {"range_same": same_range, "cookie": bool(rec["child_sees_cookie"])},
              holds=same_range and bool(rec["child_sees_cookie"])),
    ]
    cp, pp = rec["child_pfn"], rec["parent_pfn"]
    if cp is None or pp is None or cp <= 0 or pp <= 0:
        checks.append(Check("forked child: the heap page is the parent's physical frame (copy-on-write)",
                            "same PFN", {"child": cp, "parent": pp}, None,
                            "page frame numbers need CAP_SYS_ADMIN (root): pagemap hides them"))
    else:
        checks.append(Check("forked child: the heap page is the parent's physical frame (copy-on-write)",
                            "same PFN", {"child": cp, "parent": pp}, holds=cp == pp))
    return checks
