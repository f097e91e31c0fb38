"""Pure /proc parsers and the collector on captured fixtures (tests/fixtures/proc/).

The captured files come from tests/fixtures/proc/capture.py on this project's machine
(a subject_threads process, kthreadd, a real zombie, a process named "a) b (c", one fd
of each type); *_handmade files cover formats this kernel no longer prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perflab.observe.procfs import classify, collect, pagemap, parse, parse_fds, parse_maps
from perflab.observe.procfs.parse import ProcParseError
from perflab.observe.procfs.parse_maps import Mapping

FIX = Path(__file__).resolve().parent / "fixtures" / "proc"
FILES = FIX / "files"
MANIFEST = json.loads((FIX / "manifest.json").read_text())
SUBJECT = MANIFEST["subject"]
TREE = FIX / "tree"
SUBJECT_DIR = TREE / str(SUBJECT["pid"])


def blob(name: str) -> bytes:
    return (FILES / name).read_bytes()


# ---- stat ---------------------------------------------------------------------------

def test_stat_comm_with_spaces_and_parentheses():
    st = parse.parse_stat(blob("stat_comm_parens"))
    assert st.comm == "a) b (c"
    assert st.state == "S" and st.num_threads == 1 and st.policy == 0
    assert not st.kernel_thread
    # The same name in status (which escapes nothing but is line-based).
    assert parse.parse_status(blob("status_comm_parens"))["Name"] == "a) b (c"


def test_stat_handmade_comm_nastier_still():
    st = parse.parse_stat(blob("stat_handmade_comm_nasty"))
    assert st.comm == "(x)) ) (y"
    assert st.state == "Z" and st.ppid == 1
    assert (st.utime_ticks, st.stime_ticks) == (3, 4)


def test_stat_kernel_thread_by_pf_kthread_flag():
    st = parse.parse_stat(blob("stat_kthread"))
    assert st.pid == 2 and st.comm == "kthreadd" and st.ppid == 0
    assert st.kernel_thread and st.flags & parse.PF_KTHREAD
    assert st.vsize_bytes == 0  # a consequence, never the test
    status = parse.parse_status(blob("status_kthread"))
    assert status["Kthread"] == "1" and "VmSize" not in status


def test_stat_zombie():
    st = parse.parse_stat(blob("stat_zombie"))
    assert st.state == "Z" and parse.state_name(st.state) == "zombie"
    assert st.comm == "sleep" and not st.kernel_thread
    assert parse_maps.parse_maps(blob("maps_zombie")) == []  # the mm is gone
    assert parse.parse_syscall(blob("syscall_zombie")) == parse.SyscallState(False, -1, 0, 0)


@pytest.mark.parametrize("bad", [b"", b"12 no parens S 1", b"12 (x) S 1 2 3"])
def test_stat_malformed_raises(bad):
    with pytest.raises(ProcParseError):
        parse.parse_stat(bad)


def test_sched_policy_names():
    assert parse.sched_policy_name(0) == "SCHED_OTHER"
    assert parse.sched_policy_name(1) == "SCHED_FIFO"
    assert parse.sched_policy_name(6) == "SCHED_DEADLINE"
    assert parse.sched_policy_name(42) == "policy 42"


# ---- status -------------------------------------------------------------------------

def test_status_credentials_and_switches():
    raw = (SUBJECT_DIR / "status").read_bytes()
    status = parse.parse_status(raw)
    assert len(parse.status_ints(status, "Uid")) == 4
    assert int(status["Tgid"]) == SUBJECT["pid"]
    vol, invol = parse.status_switches(raw)
    assert vol == int(status["voluntary_ctxt_switches"])
    assert invol == int(status["nonvoluntary_ctxt_switches"])
    assert parse.capability_names(1 | 1 << 21) == ["chown", "sys_admin"]


def test_status_switches_missing_raises():
    with pytest.raises(ProcParseError):
        parse.status_switches(b"Name:\tx\n")


# ---- syscall ------------------------------------------------------------------------

def test_syscall_states():
    blocked = parse.parse_syscall(blob("syscall_blocked"))
    assert not blocked.running and blocked.nr == 230  # clock_nanosleep on x86_64
    assert blocked.sp and blocked.sp > 0x7f0000000000
    assert parse.parse_syscall(blob("syscall_running_handmade")).running
    other = parse.parse_syscall(blob("syscall_notinsyscall_handmade"))
    assert (other.nr, other.sp, other.pc) == (-1, 0x7FFC0BADF00D, 0x7F0000401000)


# ---- maps / smaps -------------------------------------------------------------------

def test_smaps_fast_path_equals_generic_parser():
    raw = (SUBJECT_DIR / "smaps").read_bytes()
    fast = parse_maps.parse_smaps(raw)
    slow = parse_maps.parse_smaps_generic(raw)
    assert fast == slow and len(fast) > 20
    assert all(m.rss_bytes is not None and m.pss_bytes <= m.rss_bytes for m in fast)
    # The same headers as maps, captured a moment apart.
    maps = parse_maps.parse_maps((SUBJECT_DIR / "maps").read_bytes())
    assert [(m.start, m.end, m.path) for m in maps] == [(m.start, m.end, m.path) for m in fast]


def test_smaps_legacy_handmade_uses_generic_path():
    ms = parse_maps.parse_smaps(blob("smaps_legacy_handmade"))  # no KernelPageSize lines
    assert [m.path for m in ms] == ["/usr/bin/legacy (deleted)", "[stack:4242]", "[anon:my arena]",
                                    "/dev/zero (deleted)", "[stack]"]
    assert ms[0].rss_bytes == 300 * 1024 and ms[0].pss_bytes == 150 * 1024
    assert ms[3].perms == "rw-s" and ms[3].inode == 1234


def test_maps_bad_line_raises():
    with pytest.raises(ProcParseError):
        parse_maps.parse_maps("not a mapping\n")


# ---- classification ------------------------------------------------------------------

def _sps(task_dir: Path) -> dict[int, int | None]:
    return {int(t.name): parse.parse_syscall((t / "syscall").read_bytes()).sp for t in task_dir.iterdir()}


def test_classify_captured_subject_finds_every_thread_stack():
    ms = parse_maps.parse_smaps((SUBJECT_DIR / "smaps").read_bytes())
    exe = str((SUBJECT_DIR / "exe").readlink())
    sps = _sps(SUBJECT_DIR / "task")
    labelled, stack_of = classify.classify(ms, exe, sps)
    kinds = [c.kind for c in labelled]
    assert kinds.count("heap") <= 1 and kinds.count("main_stack") == 1
    assert {"executable", "library", "vdso", "vvar", "vsyscall"} <= set(kinds)
    libs = {c.library.rsplit("/", 1)[-1] for c in labelled if c.kind == "library"}
    assert "libc.so.6" in libs and any(name.startswith("ld-linux") for name in libs)
    # Every thread's stack is the mapping that holds what pthread_getattr_np reported,
    # although the three stacks have different sizes (64, 200, 1000 KiB).
    sizes = set()
    for t in SUBJECT["threads"]:
        c = labelled[stack_of[t["tid"]]]
        assert c.kind == "thread_stack" and c.tids == (t["tid"],)
        assert c.mapping.start <= t["stack_lo"] and t["stack_hi"] <= c.mapping.end
        sizes.add(c.mapping.size_bytes)
    assert len(sizes) == 3
    # The main thread's stack pointer is in [stack]; each thread stack has its guard below.
    assert labelled[stack_of[SUBJECT["pid"]]].kind == "main_stack"
    guards = [c for c in labelled if c.kind == "stack_guard"]
    assert sorted(g.tids[0] for g in guards) == sorted(t["tid"] for t in SUBJECT["threads"])


def test_classify_without_stack_pointers_finds_no_thread_stack():
    ms = parse_maps.parse_smaps((SUBJECT_DIR / "smaps").read_bytes())
    labelled, stack_of = classify.classify(ms, None, {t["tid"]: None for t in SUBJECT["threads"]})
    assert "thread_stack" not in {c.kind for c in labelled}  # no size guessing
    assert all(v is None for v in stack_of.values())


def test_classify_legacy_labels_and_names():
    ms = parse_maps.parse_smaps(blob("smaps_legacy_handmade"))
    labelled, stack_of = classify.classify(ms, "/usr/bin/legacy", {4242: None, 4243: None})
    assert [c.kind for c in labelled] == ["executable", "thread_stack", "anonymous", "file", "main_stack"]
    assert labelled[0].deleted and labelled[1].tids == (4242,)
    assert labelled[2].name == "my arena"
    assert stack_of == {4242: 1, 4243: None}


def test_classify_stack_pointer_in_heap_is_not_relabelled():
    heap = Mapping(0x1000, 0x9000, "rw-p", 0, "00:00", 0, "[heap]", 0, 0)
    labelled, stack_of = classify.classify([heap], None, {7: 0x2000})
    assert labelled[0].kind == "heap" and stack_of == {7: 0}


def test_totals_and_libraries():
    ms = parse_maps.parse_smaps((SUBJECT_DIR / "smaps").read_bytes())
    labelled, _ = classify.classify(ms, str((SUBJECT_DIR / "exe").readlink()), _sps(SUBJECT_DIR / "task"))
    tot = classify.totals(labelled)
    assert sum(v["mappings"] for v in tot.values()) == len(ms)
    assert sum(v["rss_bytes"] for v in tot.values()) == sum(m.rss_bytes for m in ms)
    libs = classify.libraries(labelled)
    assert sum(r["mappings"] for r in libs) == tot["library"]["mappings"]


# ---- fdinfo, fd links ----------------------------------------------------------------

LINKS = json.loads((FILES / "fdinfo" / "fdlinks.json").read_text())


@pytest.mark.parametrize("name,kind", [
    ("pipe", "pipe"), ("socket", "socket"), ("eventfd", "eventfd"), ("epoll", "epoll"),
    ("signalfd", "signalfd"), ("timerfd", "timerfd"), ("inotify", "inotify"), ("pidfd", "pidfd"),
    ("namespace", "namespace"), ("regular", "path"), ("memfd", "path"), ("directory", "path"),
])
def test_fd_targets(name, kind):
    assert parse_fds.parse_fd_target(LINKS[name]).kind == kind


def test_fd_target_other_anon_inode_and_unknown():
    assert parse_fds.parse_fd_target("anon_inode:bpf-map") == parse_fds.FdTarget("anon_inode", "bpf-map", None)
    assert parse_fds.parse_fd_target("pidfd:[1234]").kind == "pidfd"  # pidfs naming
    assert parse_fds.parse_fd_target("weird").kind == "unknown"


def test_fdinfo_every_type():
    info = {k: parse_fds.parse_fdinfo((FILES / "fdinfo" / k).read_bytes()) for k in LINKS}
    assert info["regular"].pos == 10 and info["regular"].flags & 3 == 0
    assert parse_fds.fdinfo_details("eventfd", info["eventfd"])["count"] == 5
    targets = parse_fds.fdinfo_details("epoll", info["epoll"])["targets"]
    assert len(targets) == 1 and targets[0]["events"] & 1  # EPOLLIN
    t = parse_fds.fdinfo_details("timerfd", info["timerfd"])
    assert t["it_interval_ns"] == 1_500_000_000 and 0 < t["it_value_ns"] <= 100_000_000_000
    assert parse_fds.fdinfo_details("signalfd", info["signalfd"])["signals"] == [10, 15]  # USR1, TERM
    assert parse_fds.fdinfo_details("pidfd", info["pidfd"])["pid"] > 0
    assert parse_fds.fdinfo_details("inotify", info["inotify"])["watches"] == 1
    assert "O_PATH" in parse_fds.open_flag_names(info["o_path"].flags)
    names = parse_fds.open_flag_names(info["append"].flags)
    assert names[0] == "O_WRONLY" and "O_APPEND" in names and "O_NONBLOCK" in names
    assert "O_DIRECTORY" in parse_fds.open_flag_names(info["directory"].flags)


def test_fdinfo_generic_order_and_errors():
    info = parse_fds.parse_fdinfo("flags:\t02\npos:\t7\nmnt_id:\t3\nextra:\tz\n")
    assert (info.pos, info.flags, info.mnt_id, info.ino, info.fields) == (7, 2, 3, None, {"extra": "z"})
    with pytest.raises(ProcParseError):
        parse_fds.parse_fdinfo("pos:\t1\n")


def test_open_flags_arm64_table():
    assert "O_DIRECTORY" in parse_fds.open_flag_names(0o40000, "aarch64")
    assert "O_DIRECT" in parse_fds.open_flag_names(0o40000, "x86_64")


# ---- cgroup, ns, net ------------------------------------------------------------------

def test_cgroup_paths_may_hold_colons():
    lines = parse_fds.parse_cgroup(blob("cgroup_handmade"))
    assert lines[0] == parse_fds.CgroupLine(12, ["pids"], "/user.slice/a:b")
    assert lines[1].hierarchy_id == 0 and lines[1].controllers == []


def test_ns_link():
    assert parse_fds.parse_ns_link("net:[4026531840]") == ("net", 4026531840)
    with pytest.raises(ProcParseError):
        parse_fds.parse_ns_link("net")


def test_net_tcp_listener_on_loopback():
    ino = parse_fds.parse_fd_target(LINKS["socket"]).inode
    table = parse_fds.parse_net_sockets("tcp", blob("net_tcp"))
    assert table[ino]["state"] == "LISTEN" and table[ino]["local"].startswith("127.0.0.1:")


def test_net_unix_sockets_of_subject():
    table = parse_fds.parse_net_sockets("unix", (SUBJECT_DIR / "net" / "unix").read_bytes())
    assert table and all(v["protocol"] == "unix" and v["type"] == "stream" for v in table.values())


# ---- pagemap (pure part) --------------------------------------------------------------

def test_pagemap_entry_bits():
    present = (1 << 63) | (1 << 56) | 0x1234
    swapped = (1 << 62) | (1 << 55)
    data = present.to_bytes(8, "little") + swapped.to_bytes(8, "little") + bytes(8)
    e = pagemap.parse_pagemap(data, 0x10000 + 5, page_size=4096)
    assert e[0].vaddr == 0x10000 and e[0].present and e[0].exclusive and e[0].pfn == 0x1234
    assert not e[1].present and e[1].swapped and e[1].soft_dirty and e[1].pfn is None
    assert not e[2].present and e[2].vaddr == 0x12000
    with pytest.raises(ValueError):
        pagemap.parse_pagemap(bytes(7), 0)


# ---- the collector over a captured tree (an overridden proc root) ----------------------

def test_collect_over_captured_tree():
    snap = collect(SUBJECT["pid"], proc_root=str(TREE))
    assert snap["pid"] == SUBJECT["pid"] and snap["process"]["name"] == "subject_threads"
    assert snap["sharing"]["available"] is False  # kcmp needs live tasks
    tids = {t["tid"] for t in snap["threads"]}
    assert tids == {SUBJECT["pid"]} | {t["tid"] for t in SUBJECT["threads"]}
    for t in snap["threads"]:
        assert t["stack"] is not None, t
        assert t["stack"]["kind"] == ("main_stack" if t["tid"] == SUBJECT["pid"] else "thread_stack")
    by_type = snap["fds"]["by_type"]
    for kind in ("pipe", "socket", "eventfd", "epoll", "timerfd", "signalfd"):
        assert by_type.get(kind, 0) >= SUBJECT["fds"][kind], (kind, by_type)
    sockets = [r for r in snap["fds"]["table"] if r["type"] == "socket"]
    assert sockets and all(r["details"]["protocol"] == "unix" for r in sockets)
    a = snap["address_space"]
    assert a["totals"]["mappings"] == len(a["mappings"])
    json.dumps(snap)  # JSON-ready as it is
