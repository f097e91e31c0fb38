"""The exact checks of green.not-tasks and green.m-n (pure: observations and a rule in,
checks out), apart from green.py, which starts the subjects."""

from __future__ import annotations

import math
from typing import Any, Mapping

from perflab.core.claim import Check, Checked, Curve
from perflab.core.record import Control
from perflab.core.rule import Rule, num


# ---- green.not-tasks -------------------------------------------------------------------
def _added(rec: Mapping[str, Any]) -> list[int]:
    return [n - rec["tasks_before"] for n in rec["tasks_during"]]


def not_tasks_checks(obs: Mapping[str, Any], rule: Rule) -> Checked:
    """The exact checks of green.not-tasks on the three subjects' records (pure)."""
    threads, aio, go, go_note = obs["threads"], obs["asyncio"], obs["go"], obs.get("go_note", "")
    n_green, n_threads = obs["started"]["green"], obs["started"]["threads"]
    slack = rule["go_slack"]
    checks: list[Check] = []
    aio_added = _added(aio)
    blocked_ok = aio["tasks_blocked"] == aio["tasks_started"] == n_green
    checks.append(Check(
        f"{n_green:,} asyncio tasks add no kernel task",
        expected=0,
        observed=max(aio_added),
        holds=(max(aio_added) == 0 and min(aio_added) == 0) if blocked_ok else None,
        note=f"/proc/self/task before: {aio['tasks_before']}, while blocked: {aio['tasks_during']}"
        + ("" if blocked_ok else f"; only {aio['tasks_blocked']} of {aio['tasks_started']} tasks were blocked"),
    ))
    th_added = _added(threads)
    status_added = threads["status_threads_during"] - threads["status_threads_before"]
    checks.append(Check(
        f"{n_threads:,} threads add exactly {n_threads:,} kernel tasks",
        expected=n_threads,
        observed=sorted(set(th_added + [status_added])),
        holds=all(a == n_threads for a in th_added) and status_added == n_threads,
        note=f"/proc/self/task before: {threads['tasks_before']}, during: {threads['tasks_during']}; "
        f"Threads: in /proc/self/status {threads['status_threads_before']} -> {threads['status_threads_during']}",
    ))
    # CLAIMS.md: goroutines "(Go toolchain present) or" asyncio tasks: without a toolchain
    # the claim is decided on asyncio and threads, and the evidence says the Go part did
    # not run and why.
    if go is not None:
        limit = go["gomaxprocs"] + slack
        # every task of the Go process beyond its first counts as added by the runtime,
        # the threads it had before the goroutines started included (the stricter count)
        peak = max(go["tasks_during"]) - 1
        alive = go["goroutines_alive"] > n_green  # the goroutines and main
        checks.append(Check(
            f"{n_green:,} goroutines blocked on a channel: the Go runtime adds at most GOMAXPROCS + {num(slack)} "
            "kernel tasks",
            expected=f"<= {num(limit)} (GOMAXPROCS {go['gomaxprocs']} + {num(slack)})",
            observed=peak,
            holds=(peak <= limit) if alive else None,
            note=f"{go['go']}: tasks before the goroutines {go['tasks_before']}, while blocked "
            f"{go['tasks_during']} (counted from the process's first task)"
            + ("" if alive else f"; only {go['goroutines_alive']} goroutines were alive"),
        ))
    controls = [probe_control(aio, go)]
    series = Curve("kernel tasks added", "subject", "tasks")
    series.add(f"asyncio: {n_green:,} tasks", float(max(aio_added)))
    series.add(f"threads: {n_threads:,}", float(max(th_added)))
    if go is not None:
        series.add(f"goroutines: {n_green:,}", float(max(go["tasks_during"]) - 1))
    evidence = {
        "asyncio": dict(aio),
        "threads": dict(threads),
        "go": dict(go) if go is not None else {"not evaluated": go_note},
        "counting": "entries of /proc/self/task sampled 5 times, 10 ms apart, while the subject's tasks, "
        "goroutines or threads are blocked (proc(5)); Threads: in /proc/self/status as a cross-check",
    }
    return Checked(checks, controls, evidence, [series])


def probe_control(aio: Mapping[str, Any], go: Mapping[str, Any] | None) -> Control:
    """Positive control: the same /proc count, in the same subject, must see real
    threads appear (4 started after the green tasks): a blind probe would 'show' that
    green tasks add nothing, and fails here."""
    seen_py = aio["tasks_with_control_threads"] - aio["tasks_during"][-1]
    ok = seen_py == aio["control_threads_started"]
    detail: dict[str, Any] = {"python": {"started": aio["control_threads_started"], "seen": seen_py}}
    if go is not None:
        # LockOSThread goroutines blocked in read(2) each hold a thread of their own; they
        # report its TID (gettid(2)) and the same /proc/self/task listing must show every
        # one. Not the count's growth: the runtime may reuse threads it had parked, so the
        # count can grow by less than 4 (seen here once in a full run).
        tids = go["control_tids"]
        seen_go = go["control_tids_seen"]
        distinct = len(set(tids)) == len(tids) == go["control_threads_started"]
        ok = ok and distinct and seen_go == go["control_threads_started"]
        detail["go"] = {"started": go["control_threads_started"], "seen": seen_go, "distinct_tids": distinct,
                        "count_grew_by": go["tasks_with_control_threads"] - go["tasks_before_control"]}
    detail["expected"] = "every started thread seen in /proc/self/task"
    return Control("task-probe", "positive", ok, detail)


# ---- green.m-n ---------------------------------------------------------------------------
def m_n_checks(rec: Mapping[str, Any], rule: Rule) -> Checked:
    """The exact checks of green.m-n on the Go subject's record (pure)."""
    slack, share = rule["go_slack"], rule["blocked_share"]
    limit = rec["gomaxprocs"] + slack
    blocked = rec["blocked_goroutines"]
    growth = rec["blocking_peak"] - rec["tasks_after_computing"]
    checks = [
        Check(
            f"{blocked} goroutines blocked in read(2) add at least {math.ceil(blocked * share)} threads",
            expected=f">= {blocked * share:g} ({num(share)} per blocked goroutine)",
            observed=growth,
            holds=growth >= blocked * share,
            note=f"tasks {rec['tasks_after_computing']} before, peak {rec['blocking_peak']} while blocked, "
            f"{rec['tasks_after_release']} after they returned (idle threads are kept)",
        ),
        Check(
            f"{rec['computing_goroutines']} computing goroutines run on at most GOMAXPROCS + {num(slack)} tasks",
            expected=f"<= {num(limit)} (GOMAXPROCS {rec['gomaxprocs']} + {num(slack)})",
            observed=rec["computing_peak"],
            holds=rec["computing_peak"] <= limit,
            note=f"tasks before: {rec['tasks_before']}; sampled every 5 ms for 200 ms",
        ),
    ]
    computing = Curve("tasks while computing", "ms", "tasks")
    for s in rec["computing"]:
        computing.add(round(s["ms"], 1), float(s["tasks"]))
    blocking = Curve("tasks while blocked in read(2)", "ms", "tasks")
    for s in rec["blocking"]:
        blocking.add(round(s["ms"], 1), float(s["tasks"]))
    evidence = {k: rec[k] for k in ("go", "gomaxprocs", "tasks_before", "computing_goroutines", "computing_peak",
                                     "tasks_after_computing", "blocked_goroutines", "blocking_peak",
                                     "tasks_after_release") if k in rec}
    return Checked(checks, [], evidence, [computing, blocking])
