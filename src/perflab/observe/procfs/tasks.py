"""Every task on the machine, as space.kthread-no-user surveys them: PF_KTHREAD from its
stat flags, its state, its mappings and VmSize (proc(5)), read apart from each other so
that the property under test is not what identifies a kernel thread."""

from __future__ import annotations

import os
from typing import Any

from perflab.core.errors import AccessDenied, NoSuchProcess
from perflab.observe.procfs import parse
from perflab.observe.procfs.read import DEFAULT_PROC_ROOT, ProcDir

PF_EXITING = 0x00000004  # include/linux/sched.h


def survey(proc_root: str = DEFAULT_PROC_ROOT) -> list[dict[str, Any]]:
    """Every task on the box (/proc/PID/task/TID): PF_KTHREAD from its stat flags, its
    state, its mappings (lines of maps; None if unreadable) and VmSize (None if absent)."""
    out = []
    for name in os.listdir(proc_root):
        if not name.isdigit():
            continue
        try:
            pd = ProcDir(int(name), proc_root)
        except (NoSuchProcess, AccessDenied):
            continue
        with pd:
            try:
                tids = pd.listdir("task")
            except (NoSuchProcess, AccessDenied):
                continue
            group_maps: list[int | None] = []  # the thread group's mappings, read once
            for tid in tids:
                row = _task(pd, int(name), int(tid), group_maps)
                if row is not None:
                    out.append(row)
    return out


def _task(pd: ProcDir, pid: int, tid: int, group_maps: list[int | None]) -> dict[str, Any] | None:
    """One task's row. The tasks of a thread group share one mm (clone(2): CLONE_THREAD
    requires CLONE_VM), so its maps are read once, from its first live task, and counted
    for every live task of the group: a process of 10,000 threads, each with its own
    stack mapping, would otherwise cost 10,000 reads of 20,000 lines. A zombie or exiting
    task (its mm released: exit_mm) is read for itself."""
    try:
        st = parse.parse_stat(pd.read_in("task", f"{tid}/stat"))
        status = parse.parse_status(pd.read_in("task", f"{tid}/status"))
    except (NoSuchProcess, AccessDenied):
        return None
    row: dict[str, Any] = {"pid": pid, "tid": tid, "comm": st.comm, "state": st.state,
                           "kthread": st.kernel_thread, "exiting": bool(st.flags & PF_EXITING),
                           "vmsize_kib": int(status["VmSize"].split()[0]) if "VmSize" in status else None}
    live = row["state"] not in "ZX" and not row["exiting"]
    if live and group_maps:
        row["mappings"] = group_maps[0]
        return row
    try:
        row["mappings"] = pd.read_in("task", f"{tid}/maps").count(b"\n")
        if live:
            group_maps.append(row["mappings"])
    except AccessDenied:
        row["mappings"] = None
    except NoSuchProcess:
        # gone, or a kernel answering ESRCH for a task without an mm: if the task is
        # still there, its maps are "not read" (never counted as 0 mappings)
        try:
            pd.read_in("task", f"{tid}/stat")
        except (NoSuchProcess, AccessDenied):
            return None
        row["mappings"] = None
    return row
