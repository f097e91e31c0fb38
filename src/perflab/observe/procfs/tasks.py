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
            for tid in tids:
                row = _task(pd, int(name), int(tid))
                if row is not None:
                    out.append(row)
    return out


def _task(pd: ProcDir, pid: int, tid: int) -> dict[str, Any] | None:
    try:
        st = parse.parse_stat(pd.read_in("task", f"{tid}/stat"))
        status = parse.parse_status(pd.read_in("task", f"{tid}/status"))
    except (NoSuchProcess, AccessDenied):
        return None
    row: dict[str, Any] = {"pid": pid, "tid": tid, "comm": st.comm, "state": st.state,
                           "kthread": st.kernel_thread, "exiting": bool(st.flags & PF_EXITING),
                           "vmsize_kib": int(status["VmSize"].split()[0]) if "VmSize" in status else None}
    try:
        row["mappings"] = pd.read_in("task", f"{tid}/maps").count(b"\n")
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
