"""One look at a process: user address space, kernel-side state, fds, threads, and
what its tasks share (kcmp), as one JSON-ready dict with units in the field names.

Reading is not atomic: the process keeps running. Threads or fds that disappear
between listing and reading are dropped and counted ("vanished"); if the process
itself exits (or turns zombie) while being read, NoSuchProcess is raised, never a
half-read answer.
"""

from __future__ import annotations

import contextlib
import gc
import os
import stat as stat_mod
import time

from perflab.core.errors import NoSuchProcess
from perflab.observe.procfs import classify, parse, parse_fds, parse_maps
from perflab.observe.procfs.sharing import KcmpState, sharing_of
from perflab.observe.procfs.forked import Forked
from perflab.observe.procfs.read import DEFAULT_PROC_ROOT, ProcDir, user_name

SCHEMA = "perflab.inspect/1"
FORK_FDS = 2000  # read fd tables at least this big in a forked child (procfs/forked.py)
_MACHINE = os.uname().machine
KTHREAD_NO_MM = (
    "kernel thread (PF_KTHREAD set in the flags of /proc/PID/stat): it runs only in "
    "kernel space and has no mm_struct, so it has no user address space")


def _hex(x: int | None) -> str | None:
    return None if x is None else f"0x{x:x}"


def collect(pid: int, proc_root: str = DEFAULT_PROC_ROOT, sharing: bool = True) -> dict:
    """Everything `perflab inspect PID` shows. Raises NoSuchProcess, AccessDenied."""
    t0 = time.perf_counter()
    notes: list[str] = []
    pd = ProcDir(pid, proc_root)
    # The result is ~10^6 small dicts, lists and tuples with no reference cycles: the
    # cyclic garbage collector would only traverse them again and again as they grow
    # (about 6% of the time for a 10,000-thread process, measured with perf).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        st = parse.parse_stat(pd.read("stat"))
        status = parse.parse_status(pd.read("status"))
        tgid = int(status.get("Tgid", pid))
        if tgid != pid:  # /proc/TID exists for every thread, hidden from listings
            notes.append(f"{pid} is a thread of process {tgid}: showing the process")
            pd.close()
            pd = ProcDir(tgid, proc_root)
            st = parse.parse_stat(pd.read("stat"))
            status = parse.parse_status(pd.read("status"))
        # The null probe forks: do it now, while this process is small (a fork later
        # would copy the page tables of everything read so far).
        with KcmpState(pd.proc_root) if sharing else contextlib.nullcontext() as kcmp_state:
            out = _collect(pd, st, status, notes, kcmp_state)
        # Did it exit (or turn zombie) while we read? Then the answer is incomplete.
        try:
            now = parse.parse_stat(pd.read("stat"))
        except NoSuchProcess:
            raise NoSuchProcess(f"process {pd.pid} exited while being read", pd.pid) from None
        if now.state in "ZX" and st.state not in "ZX":
            raise NoSuchProcess(f"process {pd.pid} exited while being read", pd.pid)
        out["elapsed_s"] = round(time.perf_counter() - t0, 4)
        return out
    finally:
        pd.close()
        if gc_was_enabled:
            gc.enable()


def _collect(pd: ProcDir, st: parse.Stat, status: dict[str, str], notes: list[str],
             kcmp_state: KcmpState | None) -> dict:
    ticks = os.sysconf("SC_CLK_TCK")
    kthread = st.kernel_thread
    zombie = st.state in "ZX"
    process = _process(pd, st, status, ticks, kthread, zombie)
    # A big fd table is read by a forked child while this process reads the rest.
    fd_job = Forked(_fds, pd) if len(pd.listdir("fd")) >= FORK_FDS else None
    try:
        threads, sps, vanished = _threads(pd, st, ticks, kthread)
        if vanished:
            notes.append(f"{len(vanished)} thread(s) exited while being read: {sorted(vanished)[:10]}")
        live = [t["tid"] for t in threads if t["state"] not in "ZX"]
        mm_tid = None if kthread else (pd.pid if not zombie else (live[0] if live else None))
        if kthread:
            space = {"available": False, "reason": KTHREAD_NO_MM}
        elif mm_tid is None:
            space = {"available": False, "reason": (
                f"zombie: the process has exited and released its address space; it waits "
                f"for its parent ({st.ppid}) to reap it")}
        else:
            if mm_tid != pd.pid:
                notes.append(f"the thread-group leader has exited; address space read through thread {mm_tid}")
            space = _address_space(pd, mm_tid, threads, sps, process.get("exe"))
        if not space["available"]:
            for t in threads:
                t["stack"], t["stack_reason"] = None, "no user address space"
        if fd_job is not None:
            fds = fd_job.result()
        elif zombie and not live:
            fds = {"available": False, "reason": "zombie: its file table is already released"}
        else:
            fds = _fds(pd)
    finally:
        if fd_job is not None:
            fd_job.cancel()  # no-op once result() has reaped it
    shares = (sharing_of(pd, st, threads, kthread, kcmp_state) if kcmp_state is not None
              else {"available": False, "reason": "not requested"})
    return {
        "schema": SCHEMA,
        "pid": pd.pid,
        "proc_root": pd.proc_root,
        "clock_ticks_per_s": ticks,
        "process": process,
        "address_space": space,
        "fds": fds,
        "threads": threads,
        "sharing": shares,
        "notes": notes,
    }


# ---- kernel side ----------------------------------------------------------------------

def _process(pd: ProcDir, st: parse.Stat, status: dict[str, str], ticks: int, kthread: bool, zombie: bool) -> dict:
    exe = None
    exe_reason = None
    if kthread:
        exe_reason = "kernel thread: no executable"
    elif zombie:
        exe_reason = "zombie: no executable any more"
    else:
        exe = pd.readlink("exe")
    cmdline = [a.decode("utf-8", "surrogateescape") for a in pd.read("cmdline").split(b"\0")[:-1]]
    uids = parse.status_ints(status, "Uid")
    gids = parse.status_ints(status, "Gid")
    caps = {k[3:].lower(): int(status[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb") if k in status}
    creds = {
        "uid": dict(zip(("real", "effective", "saved", "filesystem"), uids)),
        "gid": dict(zip(("real", "effective", "saved", "filesystem"), gids)),
        "user": user_name(uids[0]) if uids else None,
        "groups": parse.status_ints(status, "Groups"),
        "capabilities": {k: {"mask": f"0x{v:016x}", "names": parse.capability_names(v)} for k, v in caps.items()},
        "no_new_privs": status.get("NoNewPrivs") == "1",
        "seccomp": {"0": "disabled", "1": "strict", "2": "filter"}.get(status.get("Seccomp", ""), status.get("Seccomp")),
    }
    cgroups = [{"hierarchy_id": c.hierarchy_id, "controllers": c.controllers, "path": c.path}
               for c in parse_fds.parse_cgroup(pd.read("cgroup"))]
    return {
        "pid": st.pid,
        "tgid": int(status.get("Tgid", st.pid)),
        "ppid": st.ppid,
        "nspid": parse.status_ints(status, "NSpid"),
        "name": st.comm,
        "cmdline": cmdline,
        "exe": exe,
        "exe_reason": exe_reason,
        "state": st.state,
        "state_name": parse.state_name(st.state),
        "flags": f"0x{st.flags:08x}",
        "kernel_thread": kthread,
        "policy": parse.sched_policy_name(st.policy),
        "priority": st.priority,
        "nice": st.nice,
        "rt_priority": st.rt_priority,
        "num_threads": st.num_threads,
        "start_time_since_boot_s": round(st.starttime_ticks / ticks, 2),
        "cpu_user_s": st.utime_ticks / ticks,
        "cpu_system_s": st.stime_ticks / ticks,
        "minor_faults": st.minflt,
        "major_faults": st.majflt,
        "credentials": creds,
        "cgroups": cgroups,
        "namespaces": [] if zombie else _namespaces(pd),
    }


def _namespaces(pd: ProcDir) -> list[dict]:
    out = []
    for name in sorted(pd.listdir("ns")):
        kind, ino = parse_fds.parse_ns_link(pd.readlink_in("ns", name))
        try:
            mine = parse_fds.parse_ns_link(os.readlink(f"{pd.proc_root}/self/ns/{name}"))[1]
        except OSError:
            mine = None
        out.append({"name": name, "type": kind, "inode": ino,
                    "same_as_inspector": None if mine is None else mine == ino})
    return out


# ---- threads ----------------------------------------------------------------------------

def _threads(pd: ProcDir, st: parse.Stat, ticks: int, kthread: bool):
    """Per task: /proc/PID/task/TID/{stat,status,syscall}. The user stack pointer
    comes from 'syscall' (its second-to-last field), because stat's kstkesp (field
    29) reads 0 unless the task is being core-dumped (fs/proc/array.c do_task_stat)."""
    task_fd = pd.subdir("task")
    tids = sorted(int(t) for t in pd.listdir("task"))
    threads, sps, vanished, running = [], {}, [], []
    read = pd.read
    for tid in tids:
        try:
            ts = parse.parse_stat(read(f"{tid}/stat", task_fd, "task", 4096))
            vol, invol = parse.status_switches(read(f"{tid}/status", task_fd, "task", 4096))
            sc = None
            if not kthread and ts.state not in "ZX":
                sc = parse.parse_syscall(read(f"{tid}/syscall", task_fd, "task", 4096))
        except NoSuchProcess:
            vanished.append(tid)
            continue
        if sc is not None and sc.running:
            running.append(tid)
        sps[tid] = None if sc is None else sc.sp
        threads.append({
            "tid": tid,
            "name": ts.comm,
            "state": ts.state,
            "state_name": parse.state_name(ts.state),
            "cpu_user_s": ts.utime_ticks / ticks,
            "cpu_system_s": ts.stime_ticks / ticks,
            "cpu_s": (ts.utime_ticks + ts.stime_ticks) / ticks,
            "voluntary_switches": vol,
            "involuntary_switches": invol,
            "last_cpu": ts.processor,
            "policy": parse.sched_policy_name(ts.policy),
            "priority": ts.priority,
            "nice": ts.nice,
            "rt_priority": ts.rt_priority,
            "in_syscall": None if sc is None or sc.running or sc.nr is None or sc.nr < 0 else sc.nr,
            "stack_pointer": _hex(sps[tid]),
        })
    # A running task reports no stack pointer; it may have blocked since: ask once more.
    by_tid = {t["tid"]: t for t in threads}
    for tid in running:
        try:
            sc = parse.parse_syscall(read(f"{tid}/syscall", task_fd, "task", 4096))
        except NoSuchProcess:
            continue
        if not sc.running:
            sps[tid] = sc.sp
            by_tid[tid]["stack_pointer"] = _hex(sc.sp)
    return threads, sps, vanished


# ---- user address space -----------------------------------------------------------------

def _address_space(pd: ProcDir, mm_tid: int, threads: list[dict], sps: dict, exe: str | None) -> dict:
    rel = "smaps" if mm_tid == pd.pid else f"task/{mm_tid}/smaps"
    mappings = parse_maps.parse_smaps(pd.read(rel))
    exe_id = None
    if exe is not None:
        try:
            s = pd.stat_in("", "exe")
            exe_id = (f"{os.major(s.st_dev):02x}:{os.minor(s.st_dev):02x}", s.st_ino)
        except NoSuchProcess:
            exe_id = None  # the executable's file is gone: match by path alone
    labelled, stack_of = classify.classify(mappings, exe, sps, exe_id)
    rows = [{
        "start": f"0x{m.start:x}", "end": f"0x{m.end:x}", "size_bytes": m.end - m.start,
        "rss_bytes": m.rss_bytes, "pss_bytes": m.pss_bytes, "perms": m.perms,
        "offset_bytes": m.offset, "dev": m.dev, "inode": m.inode, "path": m.path or None,
        "kind": c.kind, "library": c.library, "tids": list(c.tids), "name": c.name,
        "deleted": c.deleted,
    } for c in labelled for m in (c.mapping,)]
    for t in threads:
        i = stack_of.get(t["tid"])
        if i is None:
            t["stack"] = None
            if t["state"] in "ZX":
                t["stack_reason"] = "the thread has exited"
            elif sps.get(t["tid"]) is None:
                t["stack_reason"] = ("running: the kernel reports a user stack pointer only for "
                                     "a task blocked in the kernel (proc_pid_syscall)")
            else:
                t["stack_reason"] = "its stack pointer is outside every mapping"
        else:
            r = rows[i]
            t["stack"] = {"start": r["start"], "end": r["end"], "size_bytes": r["size_bytes"],
                          "rss_bytes": r["rss_bytes"], "kind": r["kind"], "path": r["path"]}
    by_kind = classify.totals(labelled)
    total = {k: sum(v[k] for v in by_kind.values()) for k in ("mappings", "size_bytes", "rss_bytes", "pss_bytes")}
    return {
        "available": True,
        "read_from": rel,
        "mappings": rows,
        "by_kind": by_kind,
        "libraries": classify.libraries(labelled),
        "totals": total,
    }


# ---- file descriptors -----------------------------------------------------------------

_MODE_KINDS = (
    (stat_mod.S_ISREG, "regular"), (stat_mod.S_ISDIR, "directory"), (stat_mod.S_ISCHR, "char_device"),
    (stat_mod.S_ISBLK, "block_device"), (stat_mod.S_ISFIFO, "fifo"), (stat_mod.S_ISSOCK, "socket"),
    (stat_mod.S_ISLNK, "symlink"),
)


def _fds(pd: ProcDir) -> dict:
    """fd/N (readlink: what it is) and fdinfo/N (pos, flags, type-specific lines)."""
    fd_dir = pd.subdir("fd")
    info_dir = pd.subdir("fdinfo")
    nums = sorted(int(n) for n in pd.listdir("fd"))
    rows, closed = [], 0
    sockets: dict[int, dict] | None = None
    for n in nums:
        name = str(n)
        try:
            link = pd.readlink(name, fd_dir, "fd")
            info = parse_fds.parse_fdinfo(pd.read(name, info_dir, "fdinfo", 4096))
        except NoSuchProcess:
            if not pd.alive():
                raise
            closed += 1  # closed between listing and reading: a normal race
            continue
        target = parse_fds.parse_fd_target(link)
        kind = target.kind
        if kind == "path":
            try:  # stat(2) follows the magic link to the open file, even a deleted one
                mode = pd.stat_in("fd", name).st_mode
                kind = next((k for test, k in _MODE_KINDS if test(mode)), "unknown")
            except NoSuchProcess:
                if not pd.alive():
                    raise
                try:  # closed since, or a link that cannot be followed (a captured tree)
                    pd.read(name, info_dir, "fdinfo", 4096)
                except NoSuchProcess:
                    closed += 1
                    continue
                kind = "unknown"
        row = {
            "fd": n, "type": kind, "target": link,
            "path": target.name if target.kind == "path" else None,
            "pos_bytes": info.pos, "flags": f"0{info.flags:o}",
            "flag_names": list(parse_fds.open_flag_names(info.flags, _MACHINE)),
            "mnt_id": info.mnt_id, "inode": info.ino if info.ino is not None else target.inode,
        }
        details = parse_fds.fdinfo_details(kind, info)
        if kind == "socket":
            if sockets is None:
                sockets = _socket_table(pd)
            details = sockets.get(target.inode, {"protocol": None})
        elif kind == "anon_inode":
            details = {"anon_inode": target.name}
        if details:
            row["details"] = details
        rows.append(row)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["type"]] = counts.get(r["type"], 0) + 1
    return {"available": True, "count": len(rows), "by_type": counts, "closed_while_read": closed, "table": rows}


def _socket_table(pd: ProcDir) -> dict[int, dict]:
    """inode -> protocol details, from the process's network namespace (/proc/PID/net)."""
    table: dict[int, dict] = {}
    for proto in parse_fds.NET_PROTOCOL_FILES:
        try:
            data = pd.read(f"net/{proto}")
        except NoSuchProcess:
            continue  # protocol not built in (e.g. no IPv6): no such file
        table.update(parse_fds.parse_net_sockets(proto, data))
    return table
