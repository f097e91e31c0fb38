"""What the tasks of one process share, and with its parent: kcmp(2) comparisons of
their VM, files, fs, sighand, I/O context and SysV semaphores, grouped (procfs/kcmp.py).
Part of a snapshot (procfs/snapshot.py)."""

from __future__ import annotations

from perflab.core.errors import AccessDenied, NoSuchProcess
from perflab.observe.procfs import parse
from perflab.observe.procfs.kcmp import LAZY, RESOURCES, Kcmp, KcmpUnavailable, NullProbe, TaskGone, group
from perflab.observe.procfs.read import DEFAULT_PROC_ROOT, ProcDir

# ---- what the tasks share ---------------------------------------------------------------

class KcmpState:
    """kcmp and its null probe, or the reason there are none."""

    def __init__(self, proc_root: str):
        self.kc: Kcmp | None = None
        self.probe: NullProbe | None = None
        self.reason: str | None = None
        if proc_root != DEFAULT_PROC_ROOT:
            self.reason = f"kcmp needs live tasks; {proc_root} is not {DEFAULT_PROC_ROOT}"
            return
        try:
            self.kc = Kcmp()
        except KcmpUnavailable as exc:
            self.reason = str(exc)

    def __enter__(self) -> KcmpState:
        if self.kc is not None:
            self.probe = NullProbe(self.kc).__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.probe is not None:
            self.probe.__exit__(*exc)


def sharing_of(pd: ProcDir, st: parse.Stat, tids: list[int], kthread: bool, state: KcmpState) -> dict:
    """`tids`: the tasks that have not exited (state not Z or X), in TID order."""
    if state.kc is None or state.probe is None:
        return {"available": False, "reason": state.reason}
    kc, probe = state.kc, state.probe
    kthreads = set(tids) if kthread else set()
    parent = _parent(pd, st, kc, tids)
    tasks = tids + ([st.ppid] if parent["included"] else [])
    if parent["included"] and parent["kernel_thread"]:
        kthreads.add(st.ppid)
    resources = []
    vanished: set[int] = set()
    try:
        for name, (kind, what) in RESOURCES.items():
            g = group(kc, tasks, kind)
            vanished.update(g.vanished)
            groups = [{
                "tids": [m for m in members if m != st.ppid or not parent["included"]],
                "includes_parent": parent["included"] and st.ppid in members,
                "tasks": len(members),
                "status": _group_status(name, members, kthreads, probe),
            } for members in g.groups]
            resources.append({"resource": name, "object": what, "kcmp_type": kind,
                              "groups": groups, "kcmp_calls": g.calls})
    except TaskGone as gone:  # a probe child or the parent vanished between calls
        return {"available": False, "reason": f"task {gone.tid} exited during the comparison"}
    except AccessDenied as exc:
        return {"available": False, "reason": str(exc)}
    return {
        "available": True,
        "method": "kcmp(2), tasks sorted with kcmp as the comparator and split into runs of equal ones",
        "tasks": len(tasks),
        "parent": parent,
        "null_probe": {"valid": dict(probe.valid), "reason": probe.reason},
        "vanished": sorted(vanished),
        "resources": resources,
    }


def _group_status(resource: str, members: list[int], kthreads: set[int], probe: NullProbe) -> str:
    """What a group of tasks that kcmp calls equal has in common."""
    several = len(members) > 1
    if resource == "vm" and members[0] in kthreads:
        return "not allocated (kernel threads have no mm)"
    if resource in LAZY:  # NULL == NULL for kcmp: ask the probe (kcmp.NullProbe)
        null = probe.is_null(members[0], resource)
        if null is None:
            return "same or not allocated (kcmp cannot tell)" if several else "not shared or not allocated"
        if null:
            return "not allocated"
    return "shared" if several else "not shared"


def _parent(pd: ProcDir, st: parse.Stat, kc: Kcmp, tids: list[int]) -> dict:
    if st.ppid == 0:
        return {"pid": 0, "included": False, "kernel_thread": False,
                "reason": "no parent (started by the kernel)"}
    info = {"pid": st.ppid, "included": False, "kernel_thread": False, "name": None, "reason": None}
    try:
        with ProcDir(st.ppid, pd.proc_root) as ppd:
            pst = parse.parse_stat(ppd.read("stat"))
        info["name"], info["kernel_thread"] = pst.comm, pst.kernel_thread
    except NoSuchProcess:
        info["reason"] = "the parent exited"
        return info
    if not tids:
        info["reason"] = "no live task to compare"
        return info
    try:
        kc.raw(tids[0], st.ppid, RESOURCES["vm"][0])
    except AccessDenied:
        info["reason"] = "kcmp: permission denied (no ptrace read access to the parent)"
        return info
    except TaskGone:
        info["reason"] = "the parent exited"
        return info
    info["included"] = True
    return info
