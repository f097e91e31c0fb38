"""Pure parts of perflab.observe.trace: clone flag decoding, record parsing, mountinfo,
capability prechecks, the generated syscall table."""

from __future__ import annotations

import pytest

from perflab.observe.trace import clone_flags
from perflab.observe.trace.cgroup import own_v2_path
from perflab.observe.trace.errors import MeasurementUnavailable
from perflab.observe.trace.mechanisms import CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, effective_caps, precheck
from perflab.observe.trace.mounts import mount_points
from perflab.observe.trace.result import Unavailable, from_record
from perflab.observe.trace.syscall_table import NAMES, NUMBERS

from trace_records import FORK, THREAD, clone, record


# ---- clone flags ------------------------------------------------------------------
def test_glibc_fork_flags():
    assert clone_flags.flag_names(FORK, "clone") == ("CLONE_CHILD_CLEARTID", "CLONE_CHILD_SETTID")
    assert clone_flags.exit_signal_of(FORK, "clone") == 17
    assert clone_flags.describe(FORK, "clone") == "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD"


def test_pthread_create_flags():
    names = clone_flags.flag_names(THREAD, "clone3")
    assert names == ("CLONE_VM", "CLONE_FS", "CLONE_FILES", "CLONE_SIGHAND", "CLONE_THREAD",
                     "CLONE_SYSVSEM", "CLONE_SETTLS", "CLONE_PARENT_SETTID", "CLONE_CHILD_CLEARTID")
    assert clone_flags.signal_name(clone_flags.exit_signal_of(THREAD, "clone3", 0)) is None


def test_low_byte_is_the_exit_signal_for_clone_but_a_flag_for_clone3():
    # 0x80 is CLONE_NEWTIME in clone3, and part of the signal number for clone
    assert clone_flags.flag_names(0x80, "clone3") == ("CLONE_NEWTIME",)
    assert clone_flags.flag_names(0x80 | 0x100, "clone") == ("CLONE_VM",)
    assert clone_flags.exit_signal_of(0x100 | 17, "clone") == 17
    with pytest.raises(ValueError):
        clone_flags.exit_signal_of(0x100, "clone3")


def test_vfork_style_and_clone3_only_flags():
    flags = 0x100 | 0x4000 | 17  # CLONE_VM|CLONE_VFORK|SIGCHLD: posix_spawn's clone
    assert clone_flags.describe(flags, "clone") == "CLONE_VM|CLONE_VFORK|SIGCHLD"
    assert clone_flags.flag_names(0x100000000 | 0x200000000, "clone3") == (
        "CLONE_CLEAR_SIGHAND", "CLONE_INTO_CGROUP")


def test_unknown_bits_are_shown_not_dropped():
    assert clone_flags.flag_names(1 << 40 | 0x100, "clone3") == ("CLONE_VM", hex(1 << 40))


def test_not_a_clone_call():
    with pytest.raises(ValueError):
        clone_flags.flag_names(0, "fork")


# ---- records ----------------------------------------------------------------------
def test_record_parses_counts_clones_and_counters():
    r = from_record(record())
    assert r.calls("getppid") == 29 and r.region_calls("getppid") == 23
    assert r.total == 29 + 1 + 2 + 1 + 1
    thread, fork = r.clone_calls
    assert thread.has("CLONE_THREAD", "CLONE_VM") and thread.exit_signal_name is None
    assert fork.exit_signal_name == "SIGCHLD" and not fork.has("CLONE_VM")
    assert r.require("faults_min") == 1 and r.counter_sources["faults_min"] == "perf"


def test_unavailable_counter_is_typed_never_zero():
    rec = record(mechanism="ptrace")
    rec["counters"]["context_switches"] = {"unavailable": "ptrace stops switch"}
    r = from_record(rec)
    assert r.context_switches == Unavailable("ptrace stops switch")
    with pytest.raises(MeasurementUnavailable):
        r.require("context_switches")
    assert r.to_json()["counters"]["context_switches"] == {"unavailable": "ptrace stops switch"}


def test_incomplete_region_is_unavailable():
    r = from_record(record(markers=3))
    assert isinstance(r.region, Unavailable) and "3 getpgrp marker calls" in r.region.reason
    with pytest.raises(MeasurementUnavailable):
        r.region_calls("getppid")


def test_unreadable_clone3_has_unavailable_flags():
    r = from_record(record(mechanism="perf", clones=[clone("clone3", 0, 0, readable=False)]))
    (c,) = r.clone_calls
    assert isinstance(c.flags, Unavailable) and "perf sample" in c.flags.reason
    assert c.flag_names == () and not c.has("CLONE_THREAD")


def test_mechanism_without_arguments_has_no_clone_list():
    rec = record()
    rec["clone_calls"] = {"unavailable": "no arguments"}
    assert from_record(rec).clone_calls == Unavailable("no arguments")


# ---- environment parsers ----------------------------------------------------------
MOUNTINFO = """\
24 29 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
52 24 0:12 / /sys/kernel/tracing rw,relatime - tracefs nodev rw
53 24 0:12 / /mnt/with\\040space rw - tracefs nodev rw
"""


def test_mount_points():
    assert [str(p) for p in mount_points("cgroup2", MOUNTINFO)] == ["/sys/fs/cgroup/unified"]
    assert [str(p) for p in mount_points("tracefs", MOUNTINFO)] == ["/sys/kernel/tracing", "/mnt/with space"]
    assert mount_points("debugfs", MOUNTINFO) == []


def test_own_v2_path():
    assert own_v2_path("4:memory:/x\n0::/user.slice/a\n") == "/user.slice/a"


def test_capability_prechecks():
    assert effective_caps("Name:\tx\nCapEff:\t000001fffeffffff\n") == 0x1FFFEFFFFFF
    root = (1 << CAP_SYS_ADMIN) | (1 << CAP_PERFMON) | (1 << CAP_BPF)
    assert precheck("bpf", root) is None and precheck("ptrace", 0) is None
    assert "CAP_BPF" in precheck("bpf", 0)
    assert "CAP_BPF" in precheck("bpf", 1 << CAP_PERFMON)  # both are needed
    with pytest.raises(ValueError):
        precheck("strace", root)


def test_syscall_table_is_x86_64():
    assert NAMES[0] == "read" and NAMES[39] == "getpid" and NAMES[110] == "getppid" and NAMES[56] == "clone"
    assert NUMBERS["clone3"] == 435 and NUMBERS["getpgrp"] == 111
    assert NUMBERS["rseq"] == 334 and NUMBERS["mseal"] == 462  # beyond Debian 12's header
