"""Pure parsers for /proc files: bytes or str in, plain values out; no I/O. This module:
a task's stat, status and syscall; parse_maps.py: maps and smaps; parse_fds.py: what
a process has open (fdinfo, fd links, cgroup, namespaces, socket tables).

Formats follow proc(5) and the kernel code that prints them (cited per function).
Everything here is tested on captured fixtures (tests/fixtures/proc/), including nasty
ones: a comm with spaces and parentheses, a zombie, a kernel thread.
A malformed file raises ProcParseError (a bug or an unknown kernel format, never data).
"""

from __future__ import annotations

from typing import NamedTuple

from perflab.core.errors import PerflabError


class ProcParseError(PerflabError):
    """A /proc file did not have the format this parser knows."""


def text_of(data: bytes | str) -> str:
    # Paths in /proc are bytes; surrogateescape keeps undecodable ones round-trippable.
    return data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data


# ---- /proc/PID/stat ---------------------------------------------------------------

PF_KTHREAD = 0x00200000  # include/linux/sched.h: "I am a kernel thread"


class Stat(NamedTuple):
    """The fields of /proc/PID/stat that perflab uses (proc(5), fs/proc/array.c)."""

    pid: int
    comm: str
    state: str
    ppid: int
    pgrp: int
    session: int
    flags: int
    minflt: int
    majflt: int
    utime_ticks: int
    stime_ticks: int
    priority: int
    nice: int
    num_threads: int
    starttime_ticks: int
    vsize_bytes: int
    rss_pages: int
    kstkesp: int
    processor: int
    rt_priority: int
    policy: int

    @property
    def kernel_thread(self) -> bool:
        return bool(self.flags & PF_KTHREAD)


def parse_stat(data: bytes | str) -> Stat:
    """/proc/PID/stat (proc(5)). comm may hold spaces and parentheses ("a) b (c"), and
    the kernel does not escape it, so it is what lies between the FIRST '(' and the
    LAST ')' (do_task_stat() in fs/proc/array.c prints "%d (%s) %c ...")."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
    open_ = raw.find(b"(")
    close = raw.rfind(b")")
    if open_ < 0 or close < open_:
        raise ProcParseError(f"stat: no '(comm)' in {raw[:60]!r}")
    rest = raw[close + 2:].split()  # int() takes bytes: no decoding of the numbers
    if len(rest) < 39:  # up to field 41 (policy): 39 fields after comm
        raise ProcParseError(f"stat: {len(rest) + 2} fields, expected at least 41")
    f = rest  # field n (1-based, proc(5)) is f[n - 3]
    try:
        return Stat(
            pid=int(raw[:open_]),
            comm=raw[open_ + 1:close].decode("utf-8", "surrogateescape"),
            state=f[0].decode(),
            ppid=int(f[1]),
            pgrp=int(f[2]),
            session=int(f[3]),
            flags=int(f[6]),
            minflt=int(f[7]),
            majflt=int(f[9]),
            utime_ticks=int(f[11]),
            stime_ticks=int(f[12]),
            priority=int(f[15]),
            nice=int(f[16]),
            num_threads=int(f[17]),
            starttime_ticks=int(f[19]),
            vsize_bytes=int(f[20]),
            rss_pages=int(f[21]),
            kstkesp=int(f[26]),
            processor=int(f[36]),
            rt_priority=int(f[37]),
            policy=int(f[38]),
        )
    except ValueError as exc:
        raise ProcParseError(f"stat: {exc}") from None


# fs/proc/array.c task_state_array (plus letters older kernels printed).
STATE_NAMES = {
    "R": "running",
    "S": "sleeping",
    "D": "disk sleep",
    "T": "stopped",
    "t": "tracing stop",
    "X": "dead",
    "x": "dead",
    "Z": "zombie",
    "P": "parked",
    "I": "idle",
    "K": "wakekill",
    "W": "waking",
}


def state_name(letter: str) -> str:
    return STATE_NAMES.get(letter, "unknown")


# include/uapi/linux/sched.h
SCHED_POLICIES = {
    0: "SCHED_OTHER",
    1: "SCHED_FIFO",
    2: "SCHED_RR",
    3: "SCHED_BATCH",
    5: "SCHED_IDLE",
    6: "SCHED_DEADLINE",
    7: "SCHED_EXT",
}
REALTIME_POLICIES = {1, 2}


def sched_policy_name(policy: int) -> str:
    return SCHED_POLICIES.get(policy, f"policy {policy}")


# ---- /proc/PID/status -------------------------------------------------------------

def parse_status(data: bytes | str) -> dict[str, str]:
    """/proc/PID/status: 'Key:<TAB>value' lines (proc(5); fs/proc/array.c
    proc_pid_status). Values are stripped strings; use the helpers to convert."""
    out: dict[str, str] = {}
    for line in text_of(data).splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if line.strip():
                raise ProcParseError(f"status: line without ':': {line[:60]!r}")
            continue
        out[key] = value.strip()
    if "Name" not in out:
        raise ProcParseError("status: no Name line")
    return out


def status_ints(status: dict[str, str], key: str) -> list[int]:
    """Uid/Gid (real, effective, saved set, filesystem), Groups, NSpid...: int lists."""
    return [int(x) for x in status.get(key, "").split()]


_VOL = b"\nvoluntary_ctxt_switches:"
_NONVOL = b"\nnonvoluntary_ctxt_switches:"


def status_switches(data: bytes) -> tuple[int, int]:
    """(voluntary, involuntary) context switches from a status file, found directly:
    parsing all ~60 lines of 10,000 threads' status costs more than reading them."""
    out = []
    for key in (_VOL, _NONVOL):
        i = data.find(key)
        if i < 0:
            raise ProcParseError(f"status: no {key[1:-1].decode()} line")
        j = data.find(b"\n", i + 1)
        out.append(int(data[i + len(key): j if j >= 0 else None]))
    return out[0], out[1]


# include/uapi/linux/capability.h, in bit order.
CAPABILITIES = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
    "setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast",
    "net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio",
    "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
    "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
    "audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
    "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
)


def capability_names(mask: int) -> list[str]:
    return [
        CAPABILITIES[b] if b < len(CAPABILITIES) else f"cap_{b}"
        for b in range(64)
        if mask >> b & 1
    ]


# ---- /proc/PID/task/TID/syscall -----------------------------------------------------

class SyscallState(NamedTuple):
    """proc_pid_syscall() in fs/proc/base.c: 'running'; '-1 SP PC' (blocked, not in a
    system call); or 'NR ARG1..ARG6 SP PC' (blocked in system call NR)."""

    running: bool
    nr: int | None
    sp: int | None  # user stack pointer
    pc: int | None


def parse_syscall(data: bytes | str) -> SyscallState:
    fields = text_of(data).split()
    if fields == ["running"]:
        return SyscallState(True, None, None, None)
    if len(fields) < 3:
        raise ProcParseError(f"syscall: unexpected {' '.join(fields)[:60]!r}")
    try:
        return SyscallState(False, int(fields[0]), int(fields[-2], 16), int(fields[-1], 16))
    except ValueError as exc:
        raise ProcParseError(f"syscall: {exc}") from None


