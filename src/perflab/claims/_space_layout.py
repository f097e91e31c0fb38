"""The exact checks of space.user-layout (pure): a subject's own report of its threads
(gettid, pthread_getattr_np) against what /proc shows of it (procfs.snapshot.collect)."""

from __future__ import annotations

import re
from typing import Any, Mapping

from perflab.core.claim import Check, Checked, Curve
from perflab.core.record import Control

_LIBC = re.compile(r"^(libc\.so(\.\d+)*|libc-[0-9.]+\.so|libc\.musl.*\.so.*|ld-musl.*\.so.*)$")


def _mib(n: int) -> str:
    return f"{n / 2**20:.3g} MiB" if n >= 2**20 else f"{n / 1024:.4g} KiB"


def user_layout_checks(info: Mapping[str, Any], snap: Mapping[str, Any], n: int) -> Checked:
    """The exact checks of space.user-layout (pure): the subject's own report (gettid,
    pthread_getattr_np) against what /proc shows of it (procfs.snapshot.collect)."""
    space = snap["address_space"]
    if not space.get("available"):
        c = Check("user address space readable", "available", space.get("reason"), None, space.get("reason", ""))
        return Checked([c], [], {"address_space": space})
    rows = space["mappings"]
    by_kind = space["by_kind"]

    def kind_size(kind: str) -> int:
        return by_kind.get(kind, {}).get("size_bytes", 0)

    libs = [lib for lib in space["libraries"] if _LIBC.match(lib["name"])]
    threads = {t["tid"]: t for t in snap["threads"]}
    pid = info["pid"]
    checks = [
        Check("the executable is mapped", "mappings of the subject's own file",
              f"{by_kind.get('executable', {}).get('mappings', 0)} mappings, {_mib(kind_size('executable'))}",
              kind_size("executable") > 0, f"exe -> {snap['process'].get('exe')}"),
        Check("the C library is mapped", "libc.so mappings",
              "; ".join(f"{lib['name']}: {lib['mappings']} mappings, {_mib(lib['size_bytes'])}" for lib in libs) or None,
              bool(libs), f"{len(space['libraries'])} shared objects in all"),
        Check("a heap", "the heap mapping (brk area)", _mib(kind_size("heap")) if "heap" in by_kind else None,
              "heap" in by_kind, "malloc(3) grows it with brk(2) for small blocks"),
    ]
    main = threads.get(pid, {}).get("stack")
    checks.append(Check(
        "the main thread's stack", "the main stack mapping, holding the main thread's stack pointer",
        None if main is None else f"{main['kind']} {_mib(main['size_bytes'])}",
        None if main is None and threads.get(pid, {}).get("stack_reason", "").startswith("running") else
        (main is not None and main["kind"] == "main_stack"),
        threads.get(pid, {}).get("stack_reason", "") if main is None else ""))
    per_thread, found, contradict, unknown = [], 0, [], []
    for t in info["threads"]:
        seen = threads.get(t["tid"], {})
        st = seen.get("stack")
        row = {"tid": t["tid"], "requested_bytes": t["requested_stack_bytes"],
               "pthread_stack_bytes": t["stack_hi"] - t["stack_lo"]}
        if st is None:
            row["stack"] = None
            row["reason"] = seen.get("stack_reason", "thread not listed in /proc")
            (unknown if seen.get("stack_reason", "").startswith("running") else contradict).append(t["tid"])
        else:
            lo, hi = int(st["start"], 16), int(st["end"], 16)
            ok = st["kind"] == "thread_stack" and lo <= t["stack_lo"] and t["stack_hi"] <= hi
            row.update({"mapping": f"{st['start']}-{st['end']}", "mapping_bytes": st["size_bytes"],
                        "kind": st["kind"], "holds_pthread_range": ok})
            if ok:
                found += 1
            else:
                contradict.append(t["tid"])
        per_thread.append(row)
    mapped_tids = sorted(tid for m in rows if m["kind"] == "thread_stack" for tid in m["tids"])
    sizes = {r.get("mapping_bytes") for r in per_thread if r.get("mapping_bytes")}
    checks.append(Check(
        f"{n} thread stacks, each matched to its TID",
        f"{n} anonymous mappings, each holding one thread's stack pointer and the range "
        "pthread_getattr_np(3) reports for it",
        f"{found} of {len(info['threads'])} found; TIDs on thread_stack mappings: {mapped_tids}",
        False if contradict or len(info["threads"]) != n or mapped_tids != sorted(t["tid"] for t in info["threads"])
        else (None if unknown else True),
        (f"not found: {contradict}; " if contradict else "") + (f"running, no stack pointer: {unknown}; " if unknown else "")
        + f"{len(sizes)} distinct stack sizes"))
    # Positive control on the probe itself: the user stack pointer /proc reports for each
    # thread must lie in the stack pthread_getattr_np(3) gives for it (a probe reading
    # stat's kstkesp, 0 unless the task is being dumped, fails).
    sp_rows = {}
    for t in info["threads"]:
        sp = threads.get(t["tid"], {}).get("stack_pointer")
        sp_rows[t["tid"]] = None if sp is None else (t["stack_lo"] <= int(sp, 16) < t["stack_hi"])
    controls = [Control("stack-pointer-probe", "positive",
                        None if not sp_rows or any(v is None for v in sp_rows.values()) else all(sp_rows.values()),
                        {"expected": "each thread's stack pointer (/proc/PID/task/TID/syscall) inside its "
                                     "pthread_getattr_np stack", "inside": {str(k): v for k, v in sp_rows.items()}})]
    sizes_table = {k: {"mappings": v["mappings"], "size_bytes": v["size_bytes"], "rss_bytes": v["rss_bytes"]}
                   for k, v in by_kind.items()}
    series = Curve("mapping size by kind", "kind", "KiB")
    for k in ("executable", "library", "heap", "main_stack", "thread_stack", "stack_guard", "anonymous"):
        if k in by_kind:
            series.add(k, by_kind[k]["size_bytes"] / 1024)
    evidence = {
        "subject": {"pid": pid, "threads": n, "stack_kib_requested": sorted({t["requested_stack_bytes"] // 1024
                                                                              for t in info["threads"]})},
        "by_kind": sizes_table,
        "libc": libs,
        "thread_stacks": per_thread,
        "main_stack": main,
        "method": "procfs.snapshot.collect: /proc/PID/smaps classified (procfs/classify.py); a thread's stack is "
        "the mapping holding the user stack pointer /proc/PID/task/TID/syscall reports while it is blocked",
    }
    return Checked(checks, controls, evidence, [series])
