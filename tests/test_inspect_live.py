"""perflab inspect on live processes: a subject_threads process with threads of
different stack sizes, a forked child, kernel threads, races, other users.

Oracles: what the subject reports about itself (pthread_getattr_np, gettid), `ps -L`,
and kcmp positive controls (a task given an io_context with ionice must stand out).
"""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SETPRIV, as_nobody, cli, nobody_env
from perflab.engine import process
from perflab.core.errors import AccessDenied, NoSuchProcess
from perflab.observe.procfs import collect, kcmp, pagemap, parse, snapshot

pytestmark = pytest.mark.live


def _kcmp_reason() -> str | None:
    try:
        kcmp.Kcmp()
    except kcmp.KcmpUnavailable as exc:
        return str(exc)
    return None


KCMP_REASON = _kcmp_reason()
needs_kcmp = pytest.mark.skipif(KCMP_REASON is not None, reason=f"{KCMP_REASON}")

ROOT = os.geteuid() == 0
STACKS_KIB = (64, 200, 1000, 136)  # different on purpose: no size heuristic can pass


def spawn_subject(*extra: str, prefix: list[str] | None = None) -> tuple[subprocess.Popen, dict]:
    argv = [str(process.kernel_path("subject_threads")), f"--threads={len(STACKS_KIB)}",
            "--stack-kib=" + ",".join(map(str, STACKS_KIB)), *extra]
    proc = subprocess.Popen([*(prefix or []), *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = proc.stdout.readline()
    assert line, "subject_threads printed nothing"
    info = json.loads(line)
    wait_blocked(info["pid"])
    return proc, info


def wait_blocked(pid: int, timeout: float = 5.0) -> None:
    """Until every task is blocked in the kernel: the subject prints its JSON line just
    before its main thread blocks in read(2), and a running task reports no stack pointer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            states = [Path(f"/proc/{pid}/task/{t}/syscall").read_text().split()[0]
                      for t in os.listdir(f"/proc/{pid}/task")]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return  # gone, or another user's: the test will say
        if "running" not in states:
            return
        time.sleep(0.002)


def stop(proc: subprocess.Popen) -> None:
    proc.stdin.close()  # EOF: the subject (and its forked child) exit
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def subject():
    proc, info = spawn_subject("--fds=14", "--fork-child=1")
    yield info
    stop(proc)


@pytest.fixture(scope="module")
def snap(subject):
    return collect(subject["pid"])


def group_of(snap: dict, resource: str) -> list[dict]:
    return next(r for r in snap["sharing"]["resources"] if r["resource"] == resource)["groups"]


# ---- user address space ------------------------------------------------------------------

def test_every_thread_stack_found_by_its_stack_pointer(subject, snap):
    threads = {t["tid"]: t for t in snap["threads"]}
    assert set(threads) == {subject["pid"]} | {t["tid"] for t in subject["threads"]}
    sizes = set()
    for t in subject["threads"]:
        st = threads[t["tid"]]["stack"]
        assert st is not None and st["kind"] == "thread_stack", threads[t["tid"]]
        lo, hi = int(st["start"], 16), int(st["end"], 16)
        assert lo <= t["stack_lo"] and t["stack_hi"] <= hi  # what pthread_getattr_np says
        sizes.add(st["size_bytes"])
    assert len(sizes) == len(STACKS_KIB)
    assert threads[subject["pid"]]["stack"]["kind"] == "main_stack"
    mapped = [m for m in snap["address_space"]["mappings"] if m["kind"] == "thread_stack"]
    assert sorted(tid for m in mapped for tid in m["tids"]) == sorted(t["tid"] for t in subject["threads"])


def test_address_space_kinds_and_totals(snap):
    a = snap["address_space"]
    kinds = set(a["by_kind"])
    assert {"executable", "library", "main_stack", "thread_stack", "stack_guard", "vdso"} <= kinds
    assert any(lib["name"] == "libc.so.6" for lib in a["libraries"])
    t = a["totals"]
    assert t["rss_bytes"] == sum(m["rss_bytes"] for m in a["mappings"])
    assert 0 < t["pss_bytes"] <= t["rss_bytes"] <= t["size_bytes"]
    exe = [m for m in a["mappings"] if m["kind"] == "executable"]
    assert exe and all(m["path"].endswith("/subject_threads") for m in exe)


# ---- kernel side -------------------------------------------------------------------------

def test_kernel_side_identity_and_fds(subject, snap):
    p = snap["process"]
    assert (p["pid"], p["tgid"], p["ppid"]) == (subject["pid"], subject["pid"], os.getpid())
    assert p["name"] == "subject_threads" and not p["kernel_thread"]
    assert p["policy"] == "SCHED_OTHER" and p["num_threads"] == len(STACKS_KIB) + 1
    assert p["credentials"]["uid"]["real"] == os.getuid()
    assert p["cgroups"] and {n["type"] for n in p["namespaces"]} >= {"net", "pid", "mnt", "user"}
    fds = snap["fds"]
    for kind, n in subject["fds"].items():
        assert fds["by_type"].get(kind, 0) >= n, (kind, fds["by_type"])
    by_fd = {r["fd"]: r for r in fds["table"]}
    regular = [r for r in fds["table"] if r["type"] == "regular" and "perflab-subject" in r["target"]]
    assert regular and all("(deleted)" in r["target"] for r in regular)
    assert {r["pos_bytes"] for r in regular} >= {8}  # the first fd wrote 8 bytes
    epolls = [r for r in fds["table"] if r["type"] == "epoll"]
    assert all(by_fd[t["tfd"]]["type"] == "regular" for r in epolls for t in r["details"]["targets"])
    socks = [r for r in fds["table"] if r["type"] == "socket"]
    assert all(r["details"]["protocol"] == "unix" for r in socks)
    assert all(r["details"]["signals"] == [signal.SIGUSR2] for r in fds["table"] if r["type"] == "signalfd")


@pytest.mark.skipif(not shutil.which("ps"), reason="needs ps (procps)")
def test_threads_against_ps(subject, snap):
    out = subprocess.run(["ps", "-L", "-o", "tid=,stat=", "-p", str(subject["pid"])],
                         capture_output=True, text=True, check=True).stdout
    ps = {int(tid): stat[0] for tid, stat in (line.split() for line in out.splitlines())}
    mine = {t["tid"]: t["state"] for t in snap["threads"]}
    assert mine == ps
    for t in snap["threads"]:
        assert t["cpu_s"] >= 0 and t["voluntary_switches"] >= 1 and t["last_cpu"] < os.cpu_count()
        assert t["stack_pointer"] is not None  # every subject thread blocks in futex/read


def test_a_thread_id_shows_its_process(subject):
    tid = subject["threads"][0]["tid"]
    s = collect(tid, sharing=False)
    assert s["pid"] == subject["pid"] and f"thread of process {subject['pid']}" in s["notes"][0]


# ---- sharing (kcmp) ----------------------------------------------------------------------

@needs_kcmp
def test_threads_share_vm_files_fs_sighand_parent_does_not(subject, snap):
    assert snap["sharing"]["available"], snap["sharing"]
    tids = sorted(t["tid"] for t in snap["threads"])
    assert snap["sharing"]["parent"]["included"]  # the parent is this test process
    for res in ("vm", "files", "fs", "sighand"):
        groups = group_of(snap, res)
        assert groups[0]["tids"] == tids and groups[0]["status"] == "shared"
        assert not groups[0]["includes_parent"]
        assert [g["includes_parent"] for g in groups[1:]] == [True]


@needs_kcmp
def test_forked_child_shares_nothing_with_its_parent(subject):
    s = collect(subject["child_pid"])
    assert s["process"]["ppid"] == subject["pid"] and s["sharing"]["parent"]["included"]
    for res in ("vm", "files", "fs", "sighand"):
        groups = group_of(s, res)
        assert len(groups) == 2 and all(g["status"] == "not shared" for g in groups), (res, groups)
    kc = kcmp.Kcmp()
    for kind in (kcmp.KCMP_VM, kcmp.KCMP_FILES, kcmp.KCMP_FS, kcmp.KCMP_SIGHAND):
        assert not kc.same(subject["pid"], subject["child_pid"], kind)
        assert kc.same(subject["pid"], subject["threads"][0]["tid"], kind)


@needs_kcmp
@pytest.mark.skipif(not shutil.which("ionice"), reason="needs ionice (util-linux)")
def test_io_context_null_probe_positive_control():
    """A thread given an I/O priority gets an io_context (set_task_ioprio() in
    block/ioprio.c); the others have none. kcmp alone would call them all 'same'."""
    proc, info = spawn_subject()
    try:
        before = group_of(collect(info["pid"]), "io")
        assert [g["status"] for g in before] == ["not allocated"], before
        tid = info["threads"][1]["tid"]
        subprocess.run(["ionice", "-c", "2", "-n", "4", "-p", str(tid)], check=True)
        after = collect(info["pid"])
        assert after["sharing"]["null_probe"]["valid"]["io"]
        groups = {tuple(g["tids"]): g["status"] for g in group_of(after, "io")}
        assert groups[(tid,)] == "not shared"
        rest = [g for g in group_of(after, "io") if tid not in g["tids"]]
        assert all(g["status"] == "not allocated" for g in rest)
    finally:
        stop(proc)


@needs_kcmp
def test_sorting_grouping_matches_pairwise_grouping(subject):
    others = subprocess.Popen(["sleep", "30"])
    try:
        tasks = [subject["pid"], *(t["tid"] for t in subject["threads"]), subject["child_pid"],
                 os.getpid(), others.pid]
        kc = kcmp.Kcmp()
        rng = random.Random(7)
        for kind in (kcmp.KCMP_VM, kcmp.KCMP_FILES, kcmp.KCMP_FS, kcmp.KCMP_SIGHAND, kcmp.KCMP_IO):
            shuffled = tasks[:]
            rng.shuffle(shuffled)
            sorted_groups = kcmp.group(kc, shuffled, kind).groups
            assert sorted_groups == kcmp._by_representative(kc, shuffled, kind)
            assert sorted(t for g in sorted_groups for t in g) == sorted(tasks)
        vm = kcmp.group(kc, tasks, kcmp.KCMP_VM).groups
        assert vm[0] == sorted(tasks[: len(STACKS_KIB) + 1]) and len(vm) == 4
    finally:
        others.kill()
        others.wait()


@needs_kcmp
def test_grouping_drops_tasks_that_exited():
    gone = subprocess.Popen(["true"])
    gone.wait()
    g = kcmp.group(kcmp.Kcmp(), [os.getpid(), gone.pid], kcmp.KCMP_VM)
    assert g.groups == [[os.getpid()]] and g.vanished == [gone.pid]


@needs_kcmp
def test_kcmp_file_same_open_file_description():
    kc = kcmp.Kcmp()
    r, w = os.pipe()
    d = os.dup(r)
    try:
        assert kc.same_file(os.getpid(), r, os.getpid(), d)
        assert not kc.same_file(os.getpid(), r, os.getpid(), w)
    finally:
        for fd in (r, w, d):
            os.close(fd)


# ---- kernel threads, zombies, races --------------------------------------------------------

def kernel_threads() -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                st = parse.parse_stat(Path(f"/proc/{name}/stat").read_bytes())
            except (FileNotFoundError, ProcessLookupError):
                continue
            if st.kernel_thread:
                out.append(st.pid)
    return out


@pytest.mark.skipif(not ROOT, reason="kernel threads' /proc entries need root")
def test_kernel_threads_have_no_user_address_space():
    pids = kernel_threads()
    assert 2 in pids
    for pid in [2, *random.Random(1).sample(pids, min(3, len(pids)))]:
        try:
            s = collect(pid)
        except NoSuchProcess:
            continue  # a kworker may come and go
        assert s["process"]["kernel_thread"]
        assert not s["address_space"]["available"]
        assert "PF_KTHREAD" in s["address_space"]["reason"] and "no user address space" in s["address_space"]["reason"]
        if KCMP_REASON is None:  # the kernel thread itself has no mm (its parent kthreadd neither)
            assert all(g["status"].startswith("not allocated") for g in group_of(s, "vm"))
    p = cli("inspect", "2")
    assert p.returncode == 0 and "no user address space" in " ".join(p.stdout.split()), p.stdout + p.stderr


def test_zombie_is_shown_not_an_error():
    child = subprocess.Popen(["sleep", "30"])
    try:
        os.kill(child.pid, signal.SIGKILL)
        for _ in range(200):
            if parse.parse_stat(Path(f"/proc/{child.pid}/stat").read_bytes()).state == "Z":
                break
            time.sleep(0.005)
        s = collect(child.pid)
        assert s["process"]["state"] == "Z"
        assert not s["address_space"]["available"] and "zombie" in s["address_space"]["reason"]
    finally:
        child.wait()


def test_exit_during_read_is_no_such_process(subject, monkeypatch):
    proc, info = spawn_subject()
    real = snapshot._fds

    def fds_then_exit(pd):
        out = real(pd)
        proc.kill()
        proc.wait()
        return out

    monkeypatch.setattr(snapshot, "_fds", fds_then_exit)
    with pytest.raises(NoSuchProcess, match="exited while being read"):
        collect(info["pid"], native_reader=False)


def test_racing_exits_never_raise_anything_else():
    """Processes (threaded ones too) that exit on their own while being inspected."""
    deadline = time.monotonic() + 4
    outcomes = {"ok": 0, "gone": 0}
    while time.monotonic() < deadline:
        procs = [subprocess.Popen(["sleep", f"{random.uniform(0, 0.004):.4f}"])]
        threaded = subprocess.Popen([str(process.kernel_path("subject_threads")), "--threads=20"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        procs.append(threaded)  # stdin at EOF: exits right after starting its threads
        for p in procs:
            for native_reader in (True, False, True):  # procsnap, the Python path
                try:
                    collect(p.pid, native_reader=native_reader)
                    outcomes["ok"] += 1
                except NoSuchProcess:
                    outcomes["gone"] += 1
        for p in procs:
            p.wait()
    assert outcomes["gone"] > 0 and outcomes["ok"] + outcomes["gone"] > 20, outcomes


# ---- command line ------------------------------------------------------------------------------

def one_line_error(proc: subprocess.CompletedProcess, code: int, needle: str) -> None:
    assert proc.returncode == code, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def test_cli_errors():
    one_line_error(cli("inspect", "999999999"), 1, "no such process: 999999999")
    one_line_error(cli("inspect", "abc"), 2, "PID must be a positive integer")
    one_line_error(cli("inspect", "0"), 2, "PID must be a positive integer")
    one_line_error(cli("inspect", "12", "--limit", "x"), 2, "--limit")


def test_cli_json_and_terminal(subject):
    p = cli("inspect", str(subject["pid"]), "--json")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["schema"] == snapshot.SCHEMA and s["clock_ticks_per_s"] == os.sysconf("SC_CLK_TCK")
    assert all(k in s["threads"][0] for k in ("cpu_s", "voluntary_switches", "involuntary_switches", "last_cpu"))
    assert all("size_bytes" in m and "rss_bytes" in m and "pss_bytes" in m for m in s["address_space"]["mappings"])
    t = cli("inspect", str(subject["pid"]), "--maps", "--limit", "0", env={"COLUMNS": "200"})
    assert t.returncode == 0, t.stderr
    words = ["thread_stack", "stack_guard", "libc.so.6", "eventfd"]
    words += ["sighand", "all 5 threads"] if KCMP_REASON is None else ["unavailable"]
    for word in words:
        assert word in t.stdout, word


# ---- another user ------------------------------------------------------------------------------

def test_nobody_is_denied_a_root_process(nobody_python):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        p = as_nobody(nobody_python, "inspect", str(sleeper.pid))
        one_line_error(p, 1, "permission denied")
        assert "run as root or as that user" in p.stderr
    finally:
        sleeper.kill()
        sleeper.wait()


def test_nobody_inspects_its_own_process(nobody_python):
    proc, info = spawn_subject(prefix=SETPRIV)
    try:
        p = as_nobody(nobody_python, "inspect", str(info["pid"]), "--json")
        assert p.returncode == 0, p.stderr
        s = json.loads(p.stdout)
        assert s["process"]["credentials"]["user"] == "nobody"
        stacks = {t["tid"]: t["stack"] for t in s["threads"]}
        assert all(stacks[t["tid"]] and stacks[t["tid"]]["kind"] == "thread_stack" for t in info["threads"])
        sh = s["sharing"]
        if KCMP_REASON is None:
            assert sh["available"] and group_of(s, "vm")[0]["tasks"] == len(STACKS_KIB) + 1
            # Its parent is this root-owned test process: kcmp is refused, which is said.
            assert not sh["parent"]["included"] and "permission denied" in sh["parent"]["reason"]
    finally:
        stop(proc)


# ---- pagemap ------------------------------------------------------------------------------------

@pytest.mark.skipif(not ROOT, reason="page frame numbers need CAP_SYS_ADMIN")
def test_shared_frames_copy_on_write_after_fork():
    page = pagemap.PAGE_SIZE
    buf = mmap.mmap(-1, 2 * page, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # private: CoW
    buf[0:1], buf[page:page + 1] = b"a", b"b"  # both pages present before fork
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write page 0 on "w", leave on EOF
        try:
            os.close(go_w)
            if os.read(go_r, 1) == b"w":
                buf[0:1] = b"c"  # copy-on-write fault: page 0 gets its own frame
                os.write(done_w, b"x")
                os.read(go_r, 1)
        finally:
            os._exit(0)
    os.close(go_r)
    try:
        before = pagemap.shared_frames(os.getpid(), pid, [addr, addr + page])
        assert all(f.shared for f in before), before
        assert all(f.mapcount is None or f.mapcount >= 2 for f in before)
        os.write(go_w, b"w")
        os.read(done_r, 1)
        after = pagemap.shared_frames(os.getpid(), pid, [addr, addr + page])
        assert not after[0].shared and after[0].pfn_a != after[0].pfn_b
        assert after[0].exclusive_a and after[0].exclusive_b
        assert after[1].shared and after[1].pfn_a == before[1].pfn_a
    finally:
        os.close(go_w)  # EOF: the child leaves whatever state it is in
        os.waitpid(pid, 0)
        os.close(done_r)
        os.close(done_w)


def test_pagemap_hides_frames_from_nobody(nobody_python):
    code = ("import mmap, ctypes, os\n"
            "from perflab.observe.procfs import pagemap\n"
            "from perflab.core.errors import AccessDenied\n"
            "b = mmap.mmap(-1, 4096); b[0:1] = b'x'\n"
            "a = ctypes.addressof(ctypes.c_char.from_buffer(b))\n"
            "e = pagemap.read_pagemap(os.getpid(), a)[0]\n"
            "assert e.present and e.pfn == 0, e\n"
            "try:\n"
            "    pagemap.shared_frames(os.getpid(), os.getpid(), [a])\n"
            "except AccessDenied as exc:\n"
            "    print('denied:', exc)\n")
    p = subprocess.run([*SETPRIV, nobody_python, "-c", code], env=nobody_env(), capture_output=True,
                       text=True, cwd="/", timeout=30)
    assert p.returncode == 0 and "denied:" in p.stdout and "CAP_SYS_ADMIN" in p.stdout, p.stdout + p.stderr


def test_read_pagemap_of_missing_process():
    with pytest.raises(NoSuchProcess):
        pagemap.read_pagemap(999999999, 0)


def test_access_denied_is_environment_refused():
    from perflab.core.errors import EnvironmentRefused

    assert issubclass(AccessDenied, EnvironmentRefused) and issubclass(NoSuchProcess, EnvironmentRefused)
    assert AccessDenied("x").exit_code == 1 and NoSuchProcess("y").exit_code == 1


# ---- the forked fd reader ---------------------------------------------------------------------

def test_forked_fd_table_equals_in_process(subject, monkeypatch):
    monkeypatch.setattr(snapshot, "FORK_FDS", 10**9)
    here = collect(subject["pid"], sharing=False, native_reader=False)["fds"]
    monkeypatch.setattr(snapshot, "FORK_FDS", 1)
    forked = collect(subject["pid"], sharing=False, native_reader=False)["fds"]
    assert forked == here and forked["count"] > 14


def _value_or_die(parent: int, how: str):
    if os.getpid() != parent:  # in the child
        if how == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if how == "gone":
            raise NoSuchProcess("process 42 exited while being read", 42)
    return {"pid": os.getpid()}


def test_forked_returns_value_error_or_falls_back():
    from perflab.observe.procfs.forked import Forked

    me = os.getpid()
    assert Forked(_value_or_die, me, "ok").result()["pid"] != me  # computed in the child
    with pytest.raises(NoSuchProcess) as info:
        Forked(_value_or_die, me, "gone").result()
    assert info.value.pid == 42 and "exited while being read" in str(info.value)
    assert Forked(_value_or_die, me, "crash").result() == {"pid": me}  # redone here
    job = Forked(time.sleep, 30)
    t0 = time.monotonic()
    job.cancel()
    assert time.monotonic() - t0 < 5 and job.pid == -1


def test_exit_during_forked_read_is_no_such_process(monkeypatch):
    proc, info = spawn_subject("--fds=2500")
    monkeypatch.setattr(snapshot, "FORK_FDS", 100)
    real = snapshot._threads

    def threads_then_exit(*args):
        out = real(*args)
        proc.kill()
        proc.wait()
        return out

    monkeypatch.setattr(snapshot, "_threads", threads_then_exit)
    with pytest.raises(NoSuchProcess, match="exited while being read"):
        collect(info["pid"], native_reader=False)


def test_garbage_collector_restored():
    import gc

    assert gc.isenabled()
    with pytest.raises(NoSuchProcess):
        collect(999999999)
    collect(os.getpid(), sharing=False)
    assert gc.isenabled()


def test_terminal_shows_nasty_names_literally():
    """A comm with parentheses and what rich would take for markup ("[/x]")."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; open('/proc/self/comm', 'w').write('[/x] a) b (c'); "
         "print(flush=True); time.sleep(30)"], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()
        p = cli("inspect", str(child.pid), "--limit", "3", env={"COLUMNS": "200"})
        assert p.returncode == 0, p.stderr
        assert "[/x] a) b (c" in p.stdout
        s = collect(child.pid, sharing=False)
        assert s["process"]["name"] == "[/x] a) b (c" and s["threads"][0]["name"] == "[/x] a) b (c"
    finally:
        child.kill()
        child.wait()
