"""One look at a process: user address space, kernel-side state, fds, threads, and
what its tasks share (kcmp), as one JSON-ready dict with units in the field names.

Reading is not atomic: the process keeps running. Threads or fds that disappear
between listing and reading are dropped and counted ("vanished"); if the process
itself exits (or turns zombie) while being read, NoSuchProcess is raised, never a
half-read answer.

The threads, mappings and fds of a live process are read by the procsnap reader in C
when it is built (procfs/native.py), else here in Python; the answer is the same
(tests/test_procsnap.py). Three forms: collect() the dict, collect_json() its JSON text
(the rows spliced in as procsnap wrote them, never built as dicts), collect_view() the
dict with its long lists cut to the rows a terminal shows.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import time

from perflab.core.errors import NoSuchProcess
from perflab.observe.procfs import fdtable, native, parse, parse_fds
from perflab.observe.procfs.kcmp import RESOURCES
from perflab.observe.procfs.sharing import KcmpState, sharing_of
from perflab.observe.procfs.read import DEFAULT_PROC_ROOT, ProcDir, user_name

SCHEMA = "perflab.inspect/1"
FORK_FDS = 2000  # on the Python path, read fd tables at least this big in a forked child (procfs/forked.py)
KTHREAD_NO_MM = (
    "kernel thread (PF_KTHREAD set in the flags of /proc/PID/stat): it runs only in "
    "kernel space and has no mm_struct, so it has no user address space")
_SEPARATORS = (",", ":")  # what `perflab inspect --json` writes


def _hex(x: int | None) -> str | None:
    return None if x is None else f"0x{x:x}"


def collect(pid: int, proc_root: str = DEFAULT_PROC_ROOT, sharing: bool = True,
            native_reader: bool = True) -> dict:
    """Everything `perflab inspect PID` shows. Raises NoSuchProcess, AccessDenied.
    native_reader=False: the Python path even where procsnap is built."""
    return _finish(_read(pid, proc_root, sharing, native_reader, 0), None)


def collect_json(pid: int, proc_root: str = DEFAULT_PROC_ROOT, sharing: bool = True,
                 native_reader: bool = True) -> str:
    """json.dumps(collect(...), separators=(",", ":")): the same text."""
    return b"".join(json_chunks(pid, proc_root, sharing, native_reader)).decode("ascii")


def json_chunks(pid: int, proc_root: str = DEFAULT_PROC_ROOT, sharing: bool = True,
                native_reader: bool = True) -> list:
    """collect_json's text in pieces (bytes-like), the rows procsnap wrote among them
    as it wrote them: never decoded, encoded or copied here (`perflab inspect --json`
    writes the pieces as they are)."""
    out = _read(pid, proc_root, sharing, native_reader, 0)
    texts = {}
    for key, value in out.items():
        if isinstance(value, _Text):
            texts[key] = value
            out[key] = f"\0procsnap:{key}\0"  # a NUL: no name, path or argument holds one
    chunks, rest = [], json.dumps(out, check_circular=False, separators=_SEPARATORS).encode("ascii")
    for key, text in texts.items():  # in the order of the dict, so of the text
        before, rest = rest.split(json.dumps(out[key]).encode("ascii"), 1)
        chunks += [before, *text.chunks()]
    return chunks + [rest]


def collect_view(pid: int, rows: int, proc_root: str = DEFAULT_PROC_ROOT, sharing: bool = True,
                 native_reader: bool = True) -> dict:
    """The dict with its threads, fds and mappings cut to their first `rows` (> 0): what
    the terminal shows. "view" holds the full counts the terminal needs."""
    return _finish(_read(pid, proc_root, sharing, native_reader, rows), rows)


def _read(pid: int, proc_root: str, sharing: bool, native_reader: bool, rows: int) -> dict:
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
        kcmp_state = KcmpState(pd.proc_root) if sharing else None
        # procsnap reads the tasks and fds while this process forks the null probe
        # and reads the rest (procfs/native.py)
        job = None
        if native_reader and not st.kernel_thread and st.state not in "ZX":
            kcmp = kcmp_state is not None and kcmp_state.kc is not None
            job = native.start(pd, st.ppid, kcmp, rows)
        try:
            # The null probe forks: do it now, while this process is small (a fork later
            # would copy the page tables of everything read so far).
            with kcmp_state if kcmp_state is not None else contextlib.nullcontext():
                out = None
                if job is not None:
                    try:
                        out = _collect_native(pd, st, status, notes, kcmp_state, job)
                    except native.Deferred:
                        out = None  # a format procsnap does not model: Python reads it all
                if out is None:
                    out = _collect(pd, st, status, notes, kcmp_state)
        finally:
            if job is not None:
                job.cancel()  # nothing once its result was read
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
    """The Python path."""
    from perflab.observe.procfs.forked import Forked  # pickle: the Python path's only

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
    shares = (sharing_of(pd, st, live, kthread, kcmp_state) if kcmp_state is not None
              else {"available": False, "reason": "not requested"})
    return _assemble(pd, ticks, process, space, fds, threads, shares, notes)


def _fds(pd: ProcDir) -> dict:
    return fdtable.read_fds(pd)


def _assemble(pd, ticks, process, space, fds, threads, shares, notes) -> dict:
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


# ---- the procsnap path ----------------------------------------------------------------------

class _Text:
    """A section kept as the JSON text procsnap wrote: `head`, its array of rows, `tail`;
    as a value, `load(rows)` of its rows decoded."""

    def __init__(self, head: bytes, rows: native.Rows, tail: bytes, load, view: dict | None = None):
        self.head, self.rows, self.tail, self.load, self.view = head, rows, tail, load, view or {}

    def chunks(self) -> list:
        return [self.head, self.rows.text, self.tail]

    def value(self, rows: int | None):
        return self.load(json.loads(bytes(self.rows.text) if rows is None else self.rows.first(rows)))


def _collect_native(pd: ProcDir, st: parse.Stat, status: dict[str, str], notes: list[str],
                    kcmp_state: KcmpState | None, job: native.Job) -> dict | None:
    ticks = os.sysconf("SC_CLK_TCK")
    process = _process(pd, st, status, ticks, False, False)
    kcmp = kcmp_state is not None and kcmp_state.kc is not None
    got = job.result()
    if got is None:
        return None
    if got.vanished:
        notes.append(f"{len(got.vanished)} thread(s) exited while being read: {sorted(got.vanished)[:10]}")
    if kcmp:
        kinds = [kind for kind, _ in RESOURCES.values()]
        kcmp_state.kc.presets = {kinds[res]: preset for res, preset in got.kcmp.items()}
    live = [t for t, state in zip(got.tids, got.states) if state not in "ZX"]
    rest = json.loads(got.space_rest)
    space = _Text(b'{"available":true,"read_from":"smaps","mappings":', got.mappings, b"," + got.space_rest[1:],
                  lambda rows: {"available": True, "read_from": "smaps", "mappings": rows, **rest})
    threads = _Text(b"", got.threads, b"", lambda rows: rows,
                    {"threads": len(got.tids), "live_threads": len(live)})
    fd_rows, types, closed = got.fds, got.fd_types, got.fds_closed
    if got.fd_python:
        fd_rows, types, closed = _python_fd_rows(pd, got)
    summary = fdtable.table(None, types, closed)
    del summary["table"]
    head = json.dumps(summary, separators=_SEPARATORS)[:-1].encode("ascii") + b',"table":'
    fds = _Text(head, fd_rows, b"}", lambda rows: {**summary, "table": rows})
    shares = (sharing_of(pd, st, live, False, kcmp_state) if kcmp_state is not None
              else {"available": False, "reason": "not requested"})
    return _assemble(pd, ticks, process, space, fds, threads, shares, notes)


def _python_fd_rows(pd: ProcDir, got: native.Native) -> tuple[native.Rows, list[str], int]:
    """The fd rows procsnap left to Python (placeholders "P" in its array), made by
    fdtable.fd_row; a row closed meanwhile is dropped with its comma."""
    text, types, closed = got.fds.text, list(got.fd_types), got.fds_closed
    pieces, at = [], 0
    sockets = fdtable.Sockets(pd)
    for fd, start, end, index in got.fd_python:
        row = fdtable.fd_row(pd, fd, sockets)
        if row is None:
            closed += 1
            types[index] = None
            if bytes(text[start - 1:start]) == b",":
                start -= 1  # the comma before it
            elif bytes(text[end:end + 1]) == b",":
                end += 1  # the first row: the comma after it
            pieces += [text[at:start]]
        else:
            types[index] = row["type"]
            pieces += [text[at:start], json.dumps(row, separators=_SEPARATORS).encode("ascii")]
        at = end
    joined = b"".join([*pieces, text[at:]])
    # no row offsets: the terminal view decodes this table whole, and cuts it
    return native.Rows(memoryview(joined), []), [t for t in types if t is not None], closed


def _finish(out: dict, rows: int | None) -> dict:
    """Decode what procsnap wrote: every row, or the first `rows` of each list."""
    view = {}
    for key, value in list(out.items()):
        if isinstance(value, _Text):
            out[key] = value.value(rows)
            view.update(value.view)
    if rows is not None:
        threads = out["threads"]
        view.setdefault("threads", len(threads))
        view.setdefault("live_threads", sum(1 for t in threads if t["state"] not in "ZX"))
        out["threads"] = threads[:rows]
        if out["fds"].get("available"):
            out["fds"]["table"] = out["fds"]["table"][:rows]
        if out["address_space"].get("available"):
            out["address_space"]["mappings"] = out["address_space"]["mappings"][:rows]
        out["view"] = view
    return out


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
    from perflab.observe.procfs import classify, parse_maps  # the Python path's only
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
