"""The procsnap reader (kernels/procsnap/, observe/procfs/native.py) gives the snapshot the
Python path gives, to the byte: on the captured tree, on a synthetic /proc tree made of
every case the parsers know (nasty names, every fd type, deleted and named mappings,
legacy stack labels, float formatting, IPv6 sockets it leaves to Python, formats it
defers), and on live processes. The Python path (parse.py, parse_maps.py, parse_fds.py,
classify.py) is the reference; its own tests are tests/test_procfs_parse.py.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import subprocess
from pathlib import Path

import pytest

from perflab.core.errors import AccessDenied, NoSuchProcess
from perflab.observe.procfs import native, snapshot
from perflab.observe.procfs.read import ProcDir

TREE = Path(__file__).resolve().parent / "fixtures" / "proc" / "tree"
CAPTURED_PID = int(next(TREE.iterdir()).name)
needs_reader = pytest.mark.skipif(native.reader_path() is None, reason="procsnap not built (setup.py build_kernels)")
pytestmark = needs_reader

SEP = (",", ":")


def python_text(pid: int, root: str, sharing: bool = True) -> str:
    snap = snapshot.collect(pid, proc_root=root, sharing=sharing, native_reader=False)
    return json.dumps(snap, check_circular=False, separators=SEP)


def no_elapsed(text: str) -> str:
    return re.sub(r',"elapsed_s":[0-9.e-]+\}$', "}", text)


@pytest.fixture
def spy(monkeypatch):
    """What each procsnap run gave: the Native, None (died), or the Deferred raised."""
    seen = []
    real = native.Job.result

    def result(self):
        try:
            got = real(self)
        except native.Deferred as exc:
            seen.append(exc)
            raise
        seen.append(got)
        return got

    monkeypatch.setattr(native.Job, "result", result)
    return seen


def test_captured_tree_same_text(spy):
    text = snapshot.collect_json(CAPTURED_PID, proc_root=str(TREE))
    assert isinstance(spy[-1], native.Native)  # read by procsnap, not handed back
    assert no_elapsed(text) == no_elapsed(python_text(CAPTURED_PID, str(TREE)))


# ---- a synthetic /proc/PID ------------------------------------------------------------------

PID = 4242
STAT_FIELDS = 52


def stat_line(pid: int, comm: bytes, state: str = "S", utime: int = 0, stime: int = 0, nice: int = 0,
              priority: int = 20, processor: int = 1, rt: int = 0, policy: int = 0, flags: int = 0x400040,
              threads: int = 1) -> bytes:
    f = ["0"] * (STAT_FIELDS - 2)  # field n (1-based) is f[n - 3]
    f[0], f[1], f[6] = state, "1", str(flags)
    f[11], f[12], f[15], f[16], f[17] = str(utime), str(stime), str(priority), str(nice), str(threads)
    f[19], f[20], f[36], f[37], f[38] = "12345", "4096000", str(processor), str(rt), str(policy)
    return b"%d (" % pid + comm + b") " + " ".join(f).encode() + b"\n"


STATUS = ("Name:\t{name}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{tgid}\nNgid:\t0\nPid:\t{pid}\n"
          "PPid:\t1\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t0 \nNSpid:\t{pid}\n"
          "CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n"
          "CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n"
          "voluntary_ctxt_switches:\t{vol}\nnonvoluntary_ctxt_switches:\t{invol}\n")

EXE = "/usr/bin/subject (deleted)"


def smaps_block(start: int, end: int, perms: str, path: bytes = b"", inode: int = 0, dev: str = "00:00",
                offset: int = 0, rss: int = 4, pss: int = 4) -> bytes:
    head = b"%x-%x %s %08x %s %d" % (start, end, perms.encode(), offset, dev.encode(), inode)
    head += (b" " * max(1, 73 - len(head)) + path) if path else b" "
    return head + b"\n" + (
        f"Size:           {(end - start) // 1024:8d} kB\nKernelPageSize:        4 kB\n"
        f"MMUPageSize:           4 kB\nRss:            {rss:8d} kB\nPss:            {pss:8d} kB\n"
        "Pss_Dirty:             0 kB\nShared_Clean:          0 kB\nVmFlags: rd wr mr mw me ac sd\n").encode()


def build_tree(root: Path, rng: random.Random, rejected: bool = False) -> dict:
    """A process of many threads (every state, name and stack case), mappings of every
    kind and fds of every type, written as /proc would show them; `rejected`: with two
    fdinfo files parse_fdinfo rejects."""
    d = root / str(PID)
    (d / "task").mkdir(parents=True)
    (d / "fd").mkdir()
    (d / "fdinfo").mkdir()
    (d / "net").mkdir()
    (d / "ns").mkdir()
    for ns, ino in (("mnt", 4026531841), ("net", 4026531840), ("pid", 4026531836)):
        os.symlink(f"{ns}:[{ino}]", d / "ns" / ns)
    (d / "cmdline").write_bytes(b"subject\0--arg=\xff\0")
    (d / "cgroup").write_bytes(b"0::/user.slice/a:b\n")
    os.symlink(EXE, d / "exe")  # a path that is not there: no exe_id, matched by path

    # mappings: executable, libraries (one deleted, one dlopen()ed with an odd name),
    # heap, named anonymous memory, a file, thread stacks with guard pages, a legacy
    # label, special ones
    maps: list[bytes] = []
    at = 0x555500000000

    def add(size: int, perms: str, path: bytes = b"", **kw) -> tuple[int, int]:
        nonlocal at
        start, at = at, at + size
        maps.append(smaps_block(start, start + size, perms, path, **kw))
        return start, start + size

    add(0x2000, "r--p", EXE.encode(), inode=77, dev="fe:00")
    add(0x1000, "r-xp", EXE.encode(), inode=77, dev="fe:00", offset=0x2000)
    add(0x21000, "rw-p", b"[heap]")
    at = 0x7f0000000000
    add(0x3000, "r--p", b"/usr/lib/libc.so.6", inode=10, dev="fe:00", pss=1)
    add(0x9000, "r-xp", b"/usr/lib/libc.so.6", inode=10, dev="fe:00", offset=0x3000, pss=3)
    add(0x1000, "r-xp", b"/opt/plug in/odd.plugin", inode=11, dev="fe:00")
    add(0x1000, "r--p", b"/usr/lib/libgone.so.1.2 (deleted)", inode=12, dev="fe:00")
    add(0x1000, "r--p", b"/data/caf\xc3\xa9 \xff.bin", inode=13, dev="fe:00")
    add(0x1000, "rw-p", b"[anon:my arena]")
    add(0x1000, "rw-s", b"/dev/zero (deleted)", inode=14, dev="00:01")
    add(0x1000, "rw-p", b"[stack:4300]")  # Linux < 4.5 labelled thread stacks so
    tids = [PID] + list(range(PID + 1, PID + 240))
    stacks = {}
    for i, tid in enumerate(tids[1:]):
        if i % 17 == 5:
            continue  # no stack mapping for it: "outside every mapping"
        add(0x1000, "---p")  # the guard page
        stacks[tid] = add(0x4000 * (1 + i % 4), "rw-p", rss=8)
    add(0x1000, "r--p", b"[vvar]")
    add(0x1000, "r--p", b"[vvar_vclock]")
    add(0x2000, "r-xp", b"[vdso]")
    add(0x21000, "rw-p", b"[stack]")
    main_sp = at - 0x100
    at = 0xffffffffff600000
    add(0x1000, "--xp", b"[vsyscall]")
    (d / "smaps").write_bytes(b"".join(maps))

    # tasks
    names = [b"subject", b"a) b (c", b'q"uo\\te', b"tab\there", b"\xff\xfe bytes", b"caf\xc3\xa9",
             b"\xf0\x9f\x98\x80 smile", b"esc\x1b[2J", b"del\x7f", b"\xed\xa0\x80 surrogate", b"[/x]"]
    for i, tid in enumerate(tids):
        t = d / "task" / str(tid)
        t.mkdir()
        state = "S" if i % 29 else ("R" if i % 58 else "Z")
        if tid == PID:
            state = "S"
        utime = rng.choice([0, 1, 7, 10, 99, 100, 101, 12345, 10**6 + 3, 2**40 + 1, rng.randrange(10**9)])
        stime = rng.randrange(0, 5000)
        policy, rt, prio = (1, 50, -51) if i % 13 == 3 else ((9, 0, 20) if i % 31 == 4 else (0, 0, 20))
        t.joinpath("stat").write_bytes(stat_line(tid, names[i % len(names)], state, utime, stime,
                                                 nice=-(i % 5), priority=prio, processor=i % 2, rt=rt,
                                                 policy=policy))
        t.joinpath("status").write_text(STATUS.format(name="subject", tgid=PID, pid=tid, vol=i * 3, invol=i % 7))
        if state in "ZX":
            continue
        if i % 23 == 7:
            sc = "running\n"
        elif tid == PID:
            sc = f"0 0x3 0x7ffc 0x1 0x0 0x0 0x0 0x{main_sp:x} 0x7f00000012\n"
        elif tid in stacks:
            lo, hi = stacks[tid]
            nr = -1 if i % 11 == 2 else 202
            args = "" if nr == -1 else " 0x1 0x2 0x3 0x4 0x5 0x6"
            sc = f"{nr}{args} 0x{hi - 0x40:x} 0x7f0000001234\n"
        else:
            sc = "202 0x1 0x2 0x3 0x4 0x5 0x6 0x10 0x7f0000001234\n"  # outside every mapping
        t.joinpath("syscall").write_text(sc)
    (d / "stat").write_bytes(stat_line(PID, b"subject", "S", 5, 6, threads=len(tids)))
    (d / "status").write_text(STATUS.format(name="subject", tgid=PID, pid=PID, vol=1, invol=2))

    # fds: target (a symlink in the tree) and fdinfo
    def fd(n: int, target: str | bytes, info: str, flags: str = "02", mnt: int = 15, ino: int | None = 1038):
        os.symlink(target, d / "fd" / str(n))
        head = f"pos:\t0\nflags:\t0{flags}\nmnt_id:\t{mnt}\n" + (f"ino:\t{ino}\n" if ino is not None else "")
        (d / "fdinfo" / str(n)).write_text(head + info)

    fd(0, "/dev/null", "", "0100002", 24, 3)
    fd(1, "pipe:[501]", "", "01", 16, 501)
    fd(2, "/tmp", "", "0200000", 24, 2)  # a directory that exists here
    fd(3, "/nowhere/file (deleted)", "", "0100000", 27, 99)  # cannot be followed: unknown
    fd(4, "socket:[601]", "", "02", 10, 601)  # unix, with a path of two words
    fd(5, "socket:[602]", "", "04002", 10, 602)  # tcp listener
    fd(6, "socket:[603]", "", "02", 10, 603)  # tcp6: left to Python
    fd(7, "socket:[604]", "", "02", 10, 604)  # netlink
    fd(8, "socket:[605]", "", "02", 10, 605)  # packet
    fd(9, "socket:[699]", "", "02", 10, 699)  # in no table
    fd(10, "anon_inode:[eventfd]", "eventfd-count:                5\neventfd-id: 3\neventfd-semaphore: 1\n")
    fd(11, "anon_inode:[eventpoll]", "tfd:        1 events:       19 data:                1  pos:0 ino:1f5 sdev:f\n"
                                     "tfd:        4 events: 80000019 data:     7fffffffffff  pos:0 ino:259 sdev:8\n")
    fd(12, "anon_inode:[timerfd]", "clockid: 1\nticks: 3\nsettime flags: 01\nit_value: (1, 500)\n"
                                   "it_interval: (0, 250000000)\n")
    fd(13, "anon_inode:[signalfd]", "sigmask:\t0000000000014003\n")
    fd(14, "anon_inode:inotify", "inotify wd:1 ino:2 sdev:8 mask:fce ignored_mask:0 fhandle-bytes:8\n"
                                 "inotify wd:2 ino:3 sdev:8 mask:fce ignored_mask:0 fhandle-bytes:8\n")
    fd(15, "anon_inode:[pidfd]", "Pid:\t4300\nNSpid:\t4300\n")
    fd(16, "anon_inode:[io_uring]", "SqMask:\t0x3\n")
    fd(17, "anon_inode:[weird thing]", "")
    fd(18, "net:[4026531840]", "", ino=4026531840)
    fd(19, "foo_fs:[12]", "", ino=None)
    fd(20, "not a target", "", ino=None)
    fd(21, "/dev/null", "lock:\t1: POSIX  ADVISORY  WRITE 4242 00:05:3 0 EOF\n", "04010002")
    fd(22, "/dev/null", "", "020200002")  # O_TMPFILE | O_DIRECTORY
    if rejected:  # Python rejects them, and so the whole snapshot: so must the result
        fd(23, "anon_inode:[eventfd]", "eventfd-count: zz\n")
        fd(25, "anon_inode:[eventfd]", "eventfd-count: 0\nodd line without colon\n")
    fd(24, "pidfd:[777]", "Pid:\t-1\n")
    fd(26, "/dev/null", "", "05000002")  # O_SYNC (which includes O_DSYNC)
    fd(27, b"odd\xff:[5]", "", ino=None)  # a link procsnap leaves to Python to classify
    (d / "net" / "unix").write_text(
        "Num       RefCount Protocol Flags    Type St Inode Path\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 601 /run/my  sock\n"
        "0000000000000000: 00000002 00000000 00000000 0007 03 700\n")
    (d / "net" / "tcp").write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 602 1\n")
    (d / "net" / "tcp6").write_text(
        "  sl  local_address                         remote_address                        st tx_queue\n"
        "   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000"
        " 00:00000000 00000000     0        0 603 1\n")
    (d / "net" / "udp").write_text("  sl  local_address rem_address   st\n")
    (d / "net" / "netlink").write_text(
        "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n"
        "0000000000000000 0   4242       00000000 0        0        0     2        0        604\n")
    (d / "net" / "packet").write_text(
        "sk       RefCnt Type Proto  Iface R Rmem   User   Inode\n"
        "0000000000000000 3      3    0003   2     1 0      0      605\n")
    return {"tids": tids}


@pytest.fixture
def tree(tmp_path):
    info = build_tree(tmp_path, random.Random(15))
    return tmp_path, info


def test_synthetic_tree_same_text_and_same_views(tree, spy):
    root, info = tree
    text = snapshot.collect_json(PID, proc_root=str(root))
    got = spy[-1]
    assert isinstance(got, native.Native)
    # the IPv6 socket, the socket in no table it read (it may be in the IPv6 one), a link
    # it does not classify
    assert [fd for fd, *_ in got.fd_python] == [6, 9, 27]
    reference = python_text(PID, str(root))
    assert no_elapsed(text) == no_elapsed(reference)
    snap = json.loads(text)
    assert {t["tid"] for t in snap["threads"]} == set(info["tids"])
    kinds = {m["kind"] for m in snap["address_space"]["mappings"]}
    assert kinds == {"executable", "library", "heap", "main_stack", "thread_stack", "stack_guard",
                     "anonymous", "file", "vdso", "vvar", "vsyscall"}
    # the dict, and the terminal's view of it, are the Python path's too; a view of 3
    # rows leaves fd 27 unshown: procsnap cannot give its type and defers
    for rows in (1, 3, 20, 10**4):
        a = snapshot.collect_view(PID, rows, proc_root=str(root))
        b = snapshot.collect_view(PID, rows, proc_root=str(root), native_reader=False)
        a.pop("elapsed_s"), b.pop("elapsed_s")
        assert a == b, rows
    a, b = snapshot.collect(PID, proc_root=str(root)), json.loads(reference)
    a.pop("elapsed_s"), b.pop("elapsed_s")
    assert a == b


def test_formats_python_rejects_are_rejected_alike(tmp_path):
    root = tmp_path
    build_tree(root, random.Random(1), rejected=True)
    for n in (23, 25):  # both still there: the first one Python meets fails it
        errors = []
        for native_reader in (True, False):
            with pytest.raises(Exception) as info:
                snapshot.collect(PID, proc_root=str(root), native_reader=native_reader)
            errors.append((type(info.value), str(info.value)))
        assert errors[0] == errors[1]
        os.unlink(root / str(PID) / "fd" / str(n))


def test_what_procsnap_does_not_model_goes_to_python(tree, spy):
    root, _ = tree
    smaps = root / str(PID) / "smaps"
    data = smaps.read_bytes()
    smaps.write_bytes(data.replace(b"KernelPageSize:", b"KernelPagesize:", 1))  # a kernel of another shape
    text = snapshot.collect_json(PID, proc_root=str(root))
    assert isinstance(spy[-1], native.Deferred) and "smaps" in str(spy[-1])
    assert no_elapsed(text) == no_elapsed(python_text(PID, str(root)))


def test_without_the_reader_the_python_path_reads(tree, monkeypatch):
    root, _ = tree
    monkeypatch.setattr(native, "reader_path", lambda: None)
    text = snapshot.collect_json(PID, proc_root=str(root))
    assert no_elapsed(text) == no_elapsed(python_text(PID, str(root)))


def test_errors_are_the_python_readers_errors(tree):
    root, _ = tree
    with ProcDir(PID, str(root)) as pd:
        with pytest.raises(AccessDenied) as denied:
            native.parse(b"E 13 task/4300/syscall\n", pd)
        try:
            pd.read("task/4300/nothing-there")
        except NoSuchProcess as exc:
            gone = exc
        with pytest.raises(NoSuchProcess) as again:
            native.parse(b"E 2 task/4300/nothing-there\n", pd)
        assert str(again.value) == str(gone)
        assert "permission denied" in str(denied.value) and "task/4300/syscall" in str(denied.value)
        with pytest.raises(native.Deferred, match="a reason"):
            native.parse(b"X a reason\n", pd)
        assert native.parse(b"procsnap 99\n", pd) is None  # another protocol: Python reads


def test_float_repr_of_cpu_times(tmp_path):
    """utime / ticks is written as repr(float) writes it, for every tick count of a
    thread's life and beyond."""
    rng = random.Random(7)
    root = tmp_path
    d = root / str(PID)
    build_tree(root, rng)
    values = list(range(0, 3000)) + [rng.randrange(10**k, 10**(k + 1)) for k in range(3, 15) for _ in range(40)]
    for i, tid in enumerate(sorted(int(t) for t in os.listdir(d / "task"))):
        st = d / "task" / str(tid) / "stat"
        data = st.read_bytes()
        f = data.split(b") ", 1)
        fields = f[1].split()
        fields[11], fields[12] = str(values[i % len(values)]).encode(), str(values[-1 - i % len(values)]).encode()
        st.write_bytes(f[0] + b") " + b" ".join(fields) + b"\n")
    # more threads: one per value, so every value is written
    for k, v in enumerate(values):
        tid = 100000 + k
        t = d / "task" / str(tid)
        t.mkdir()
        t.joinpath("stat").write_bytes(stat_line(tid, b"x", "Z", v, values[-1 - k]))
        t.joinpath("status").write_text(STATUS.format(name="x", tgid=PID, pid=tid, vol=0, invol=0))
    assert no_elapsed(snapshot.collect_json(PID, proc_root=str(root))) == no_elapsed(python_text(PID, str(root)))


# ---- live -----------------------------------------------------------------------------------

def normalized(text: str) -> str:
    """PSS shares a library's pages among every process mapping it: another process starting
    or exiting between two reads changes it. Nothing else of a blocked subject moves."""
    return re.sub(r'"pss_bytes":\d+', '"pss_bytes":0', no_elapsed(text))


@pytest.mark.live
def test_live_subject_same_text(spy):
    from test_inspect_live import spawn_subject, stop

    proc, info = spawn_subject("--fds=40", "--fork-child=1")
    try:
        for _ in range(3):  # the subject keeps still; a PSS may move between the two reads
            text = snapshot.collect_json(info["pid"])
            assert isinstance(spy[-1], native.Native)
            reference = python_text(info["pid"], "/proc")
            if no_elapsed(text) == no_elapsed(reference):
                break
        assert normalized(text) == normalized(reference)
        snap = json.loads(text)
        assert snap["sharing"]["available"] is (snap["sharing"].get("reason") is None)
        view = snapshot.collect_view(info["pid"], 5)
        assert len(view["threads"]) == 5 and view["view"]["threads"] == len(snap["threads"])
    finally:
        stop(proc)


@pytest.mark.live
def test_live_exit_during_native_read_is_no_such_process(monkeypatch):
    from test_inspect_live import spawn_subject

    proc, info = spawn_subject()
    real = native.Job.result

    def read_then_exit(self):
        out = real(self)
        proc.kill()
        proc.wait()
        return out

    monkeypatch.setattr(native.Job, "result", read_then_exit)
    with pytest.raises(NoSuchProcess, match="exited while being read"):
        snapshot.collect(info["pid"])


@pytest.mark.live
def test_cli_json_is_collect_json_and_terminal_unchanged():
    """The CLI's --json is the Python path's text; its terminal view (rows decoded
    selectively) prints what the whole snapshot printed."""
    from rich.console import Console

    from perflab.cli.inspect_view import render
    from perflab.core.safe import safe_tree
    from test_inspect_live import spawn_subject, stop

    proc, info = spawn_subject("--fds=30")
    try:
        pid = info["pid"]
        out = subprocess.run([os.sys.executable, "-m", "perflab", "inspect", str(pid), "--json"],
                             capture_output=True, check=True).stdout
        assert normalized(out.decode().rstrip("\n")) == normalized(python_text(pid, "/proc"))
        for limit in (3, 20):
            texts = []
            for snap in (snapshot.collect_view(pid, limit),
                         snapshot.collect(pid, native_reader=False)):
                buf = io.StringIO()
                snap["elapsed_s"] = 0.0
                render(safe_tree(snap), Console(file=buf, width=160), limit=limit)
                texts.append(re.sub(r"PSS.*|\d+(\.\d+)? [KMG]iB", "", buf.getvalue()))
            assert texts[0] == texts[1]
    finally:
        stop(proc)


def test_a_reader_that_dies_leaves_it_to_python(tree, monkeypatch, spy):
    root, _ = tree
    monkeypatch.setattr(native, "reader_path", lambda: "/bin/false")  # exits 1, writes nothing
    text = snapshot.collect_json(PID, proc_root=str(root))
    assert spy == [None]
    assert no_elapsed(text) == no_elapsed(python_text(PID, str(root)))


def test_an_error_while_it_runs_kills_and_reaps_it(tree, monkeypatch):
    """procsnap runs while this process reads the rest: an error there (or Ctrl-C) must
    not leave it running or unreaped."""
    root, _ = tree
    started = []
    real_start = native.start

    def start(*args, **kw):
        job = real_start(*args, **kw)
        started.append(job.pid)
        return job

    def boom(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(native, "start", start)
    monkeypatch.setattr(snapshot, "_process", boom)
    with pytest.raises(KeyboardInterrupt):
        snapshot.collect(PID, proc_root=str(root))
    assert started and started[0] > 0
    with pytest.raises(ChildProcessError):
        os.waitpid(started[0], os.WNOHANG)  # reaped already
