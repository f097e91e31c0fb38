"""Pure parsers for /proc files: bytes or str in, plain values out; no I/O.

Formats follow proc(5) and the kernel code that prints them (cited per function).
Everything here is tested on captured fixtures (tests/fixtures/proc/), including nasty
ones: a comm with spaces and parentheses, a zombie, a kernel thread.
A malformed file raises ProcParseError (a bug or an unknown kernel format, never data).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import NamedTuple

from perflab.core.errors import PerflabError


class ProcParseError(PerflabError):
    """A /proc file did not have the format this parser knows."""


def _text(data: bytes | str) -> str:
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
    for line in _text(data).splitlines():
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
    fields = _text(data).split()
    if fields == ["running"]:
        return SyscallState(True, None, None, None)
    if len(fields) < 3:
        raise ProcParseError(f"syscall: unexpected {' '.join(fields)[:60]!r}")
    try:
        return SyscallState(False, int(fields[0]), int(fields[-2], 16), int(fields[-1], 16))
    except ValueError as exc:
        raise ProcParseError(f"syscall: {exc}") from None


# ---- /proc/PID/maps and smaps -------------------------------------------------------

class Mapping(NamedTuple):
    """One line of /proc/PID/maps (proc(5)); rss/pss in bytes when read from smaps."""

    start: int
    end: int
    perms: str
    offset: int
    dev: str  # "major:minor", hex
    inode: int
    path: str  # "" for anonymous; "[heap]", "[stack]", "[vdso]"... for special ones
    rss_bytes: int | None = None
    pss_bytes: int | None = None

    @property
    def size_bytes(self) -> int:
        return self.end - self.start


# show_map_vma() in fs/proc/task_mmu.c: "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu "
# then padding and the path (newlines in paths are escaped as \012 by seq_file_path).
_MAP_LINE = re.compile(
    r"^([0-9a-f]+)-([0-9a-f]+) ([-rwxsp]{4}) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+) ?\s*(.*)$"
)


def _mapping(m: re.Match, rss_kib: int | None = None, pss_kib: int | None = None) -> Mapping:
    return Mapping(
        int(m[1], 16), int(m[2], 16), m[3], int(m[4], 16), m[5], int(m[6]), m[7],
        None if rss_kib is None else rss_kib * 1024,
        None if pss_kib is None else pss_kib * 1024,
    )


def parse_maps(data: bytes | str) -> list[Mapping]:
    out = []
    for line in _text(data).splitlines():
        m = _MAP_LINE.match(line)
        if not m:
            raise ProcParseError(f"maps: unexpected line {line[:80]!r}")
        out.append(_mapping(m))
    return out


# The smaps header is a maps line; show_smap() then prints Size, KernelPageSize,
# MMUPageSize, and __show_smap() starts with Rss and Pss, always in this order. This
# fast path matches all of it in one pass of the C regex engine (a 10,000-thread
# process has a 14 MB smaps); the generic parser below is its fallback and reference.
_SMAPS_FAST = re.compile(
    rb"^([0-9a-f]+)-([0-9a-f]+) ([-rwxsp]{4}) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+) ?[ \t]*(.*)\n"
    rb"Size: .*\nKernelPageSize: .*\nMMUPageSize: .*\nRss: +(\d+) kB\nPss: +(\d+) kB$",
    re.M,
)


def parse_smaps(data: bytes | str) -> list[Mapping]:
    """/proc/PID/smaps (proc(5), Documentation/filesystems/proc.rst): every mapping
    with its Rss and Pss in bytes."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
    found = _SMAPS_FAST.findall(raw)
    if len(found) == raw.count(b"\nRss:"):
        dec = _text
        return [
            Mapping(int(a, 16), int(b, 16), p.decode(), int(o, 16), d.decode(), int(i),
                    dec(path), int(rss) * 1024, int(pss) * 1024)
            for a, b, p, o, d, i, path, rss, pss in found
        ]
    return parse_smaps_generic(raw)


def parse_smaps_generic(data: bytes | str) -> list[Mapping]:
    """Line by line: a header line starts with a lower-case hex address, a field line
    with a capitalised 'Name:'."""
    out: list[Mapping] = []
    header = None
    fields: dict[str, int] = {}

    def flush():
        if header is not None:
            if "Rss" not in fields or "Pss" not in fields:
                raise ProcParseError(f"smaps: mapping {header[0]}-{header[1]} has no Rss/Pss")
            out.append(_mapping(header, fields["Rss"], fields["Pss"]))

    for line in _text(data).splitlines():
        m = _MAP_LINE.match(line)
        if m:
            flush()
            header, fields = m, {}
            continue
        key, sep, value = line.partition(":")
        if not sep or header is None:
            raise ProcParseError(f"smaps: unexpected line {line[:80]!r}")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[key] = int(parts[0])
    flush()
    return out


# ---- /proc/PID/fdinfo/FD ------------------------------------------------------------

class FdInfo(NamedTuple):
    """seq_show() in fs/proc/fd.c prints pos, flags (octal), mnt_id, ino; the file's
    show_fdinfo() adds type-specific lines (eventfd, epoll, timerfd, signalfd, inotify,
    pidfd...). Repeated lines (epoll 'tfd:', 'inotify wd:') are kept as lists."""

    pos: int
    flags: int
    mnt_id: int
    ino: int | None
    fields: dict[str, str]
    epoll_targets: list[dict[str, int]]
    inotify_watches: list[dict[str, str]]


_TOKENS = re.compile(r"([A-Za-z_-]+):\s*(\S+)")


# seq_show() in fs/proc/fd.c: "pos:\t%lli\nflags:\t0%o\nmnt_id:\t%i\nino:\t%lu\n"
_FDINFO_HEAD = re.compile(r"pos:\t(-?\d+)\nflags:\t([0-7]+)\nmnt_id:\t(\d+)\n(?:ino:\t(\d+)\n)?")


def parse_fdinfo(data: bytes | str) -> FdInfo:
    text = _text(data)
    head = _FDINFO_HEAD.match(text)
    # The fixed head is matched at once; only the type-specific tail goes through the
    # loop (or everything, if the head has another order or format).
    body = text[head.end():] if head else text
    extra: dict[str, str] = {}
    epoll: list[dict[str, int]] = []
    inotify: list[dict[str, str]] = []
    for line in body.splitlines():
        if line[:4] == "tfd:":
            # ep_show_fdinfo() in fs/eventpoll.c:
            # "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x"
            t = dict(_TOKENS.findall(line))
            epoll.append({"tfd": int(t["tfd"]), "events": int(t["events"], 16),
                          "data": int(t["data"], 16)})
        elif line.startswith(("inotify ", "fanotify ")):
            # inotify_fdinfo() in fs/notify/fdinfo.c: "inotify wd:%x ino:%lx sdev:%x mask:%x ..."
            inotify.append(dict(_TOKENS.findall(line)))
        elif line.strip():
            key, sep, value = line.partition(":")
            if not sep:
                raise ProcParseError(f"fdinfo: unexpected line {line[:60]!r}")
            extra[key] = value.strip()
    try:
        if head:
            return FdInfo(int(head[1]), int(head[2], 8), int(head[3]),
                          int(head[4]) if head[4] is not None else None, extra, epoll, inotify)
        return FdInfo(
            pos=int(extra.pop("pos")),
            flags=int(extra.pop("flags"), 8),
            mnt_id=int(extra.pop("mnt_id")),
            ino=int(extra.pop("ino")) if "ino" in extra else None,  # since 5.14
            fields=extra,
            epoll_targets=epoll,
            inotify_watches=inotify,
        )
    except (KeyError, ValueError) as exc:
        raise ProcParseError(f"fdinfo: bad or missing pos/flags/mnt_id ({exc})") from None


def fdinfo_details(kind: str, info: FdInfo) -> dict:
    """The type-specific part of an fdinfo, converted (units in the names)."""
    f = info.fields
    try:
        if kind == "eventfd" and "eventfd-count" in f:
            # eventfd_show_fdinfo() in fs/eventfd.c prints the count with %16llx (hex).
            return {"count": int(f["eventfd-count"], 16),
                    "semaphore": f.get("eventfd-semaphore") == "1"}
        if kind == "epoll":
            return {"targets": info.epoll_targets}
        if kind == "timerfd" and "clockid" in f:
            # timerfd_show() in fs/timerfd.c: it_value: (%llu, %llu) = (s, ns)
            def ts(v):
                sec, ns = v.strip("()").split(",")
                return int(sec) * 1_000_000_000 + int(ns)
            return {"clockid": int(f["clockid"]), "ticks": int(f["ticks"]),
                    "it_value_ns": ts(f["it_value"]), "it_interval_ns": ts(f["it_interval"])}
        if kind == "signalfd" and "sigmask" in f:
            # signalfd_show_fdinfo() in fs/signalfd.c: render_sigset_t, hex, bit n-1 = signal n
            mask = int(f["sigmask"], 16)
            return {"signals": [n + 1 for n in range(64) if mask >> n & 1]}
        if kind == "pidfd" and "Pid" in f:
            return {"pid": int(f["Pid"])}  # pidfd_show_fdinfo(): -1 once the process is reaped
        if kind in ("inotify", "fanotify"):
            return {"watches": len(info.inotify_watches)}
    except (KeyError, ValueError) as exc:
        raise ProcParseError(f"fdinfo ({kind}): {exc}") from None
    return {}


# open(2) flags as the kernel prints them in fdinfo: include/uapi/asm-generic/fcntl.h,
# with the values arm64 overrides (arch/arm64/include/uapi/asm/fcntl.h). The kernel
# always adds O_LARGEFILE on 64-bit, which Python's os.O_LARGEFILE (0) does not show.
_OPEN_FLAGS_GENERIC = {
    "O_CREAT": 0o100, "O_EXCL": 0o200, "O_NOCTTY": 0o400, "O_TRUNC": 0o1000,
    "O_APPEND": 0o2000, "O_NONBLOCK": 0o4000, "O_DSYNC": 0o10000, "O_ASYNC": 0o20000,
    "O_DIRECT": 0o40000, "O_LARGEFILE": 0o100000, "O_DIRECTORY": 0o200000,
    "O_NOFOLLOW": 0o400000, "O_NOATIME": 0o1000000, "O_CLOEXEC": 0o2000000,
    "O_SYNC": 0o4000000, "O_PATH": 0o10000000, "O_TMPFILE": 0o20000000,
}
_OPEN_FLAGS_ARM64 = {**_OPEN_FLAGS_GENERIC, "O_DIRECTORY": 0o40000, "O_NOFOLLOW": 0o100000,
                     "O_DIRECT": 0o200000, "O_LARGEFILE": 0o400000}


@functools.lru_cache(maxsize=256)
def open_flag_names(flags: int, machine: str = "x86_64") -> tuple[str, ...]:
    table = _OPEN_FLAGS_ARM64 if machine in ("aarch64", "arm64") else _OPEN_FLAGS_GENERIC
    names = [("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")[flags & 3]]
    for name, bit in table.items():
        if name == "O_SYNC":  # O_SYNC = __O_SYNC | O_DSYNC
            if flags & bit:
                names.append(name)
                names = [n for n in names if n != "O_DSYNC"]
            continue
        if name == "O_TMPFILE":  # O_TMPFILE = __O_TMPFILE | O_DIRECTORY
            if flags & bit:
                names.append(name)
            continue
        if flags & bit:
            names.append(name)
    return tuple(names)


# ---- fd/N link targets --------------------------------------------------------------

# Names the kernel gives anonymous-inode files (anon_inode_getfile() callers) and
# pseudo-filesystem files; readlink() of /proc/PID/fd/N shows them (proc(5)).
_ANON_KINDS = {
    "[eventfd]": "eventfd",
    "[eventpoll]": "epoll",
    "[signalfd]": "signalfd",
    "[timerfd]": "timerfd",
    "inotify": "inotify",
    "[fanotify]": "fanotify",
    "[pidfd]": "pidfd",
    "[io_uring]": "io_uring",
    "[userfaultfd]": "userfaultfd",
    "[perf_event]": "perf_event",
}
_PSEUDO = re.compile(r"^([a-z_]+):\[(\d+)\]$")
NAMESPACE_TYPES = {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"}


class FdTarget(NamedTuple):
    kind: str  # "path" (refine with stat), "pipe", "socket", "eventfd", ... or "anon_inode"
    name: str  # the path, or the anon inode's name
    inode: int | None


def parse_fd_target(link: str) -> FdTarget:
    """Classify a /proc/PID/fd/N link target: '/path', 'pipe:[INO]', 'socket:[INO]',
    'anon_inode:NAME', 'net:[INO]' (an nsfs file), 'pidfd:[INO]' (pidfs, newer kernels)."""
    if link.startswith("/"):
        return FdTarget("path", link, None)
    if link.startswith("anon_inode:"):
        name = link[len("anon_inode:"):]
        return FdTarget(_ANON_KINDS.get(name, "anon_inode"), name, None)
    m = _PSEUDO.match(link)
    if m:
        fs, ino = m[1], int(m[2])
        if fs in ("pipe", "socket"):
            return FdTarget(fs, link, ino)
        if fs == "pidfd":
            return FdTarget("pidfd", link, ino)
        if fs in NAMESPACE_TYPES:
            return FdTarget("namespace", link, ino)
        return FdTarget("pseudo", link, ino)
    return FdTarget("unknown", link, None)


# ---- /proc/PID/cgroup, ns/* ---------------------------------------------------------

class CgroupLine(NamedTuple):
    hierarchy_id: int
    controllers: list[str]
    path: str


def parse_cgroup(data: bytes | str) -> list[CgroupLine]:
    """'hierarchy-ID:controller-list:cgroup-path' per line (cgroups(7)); '0::/path'
    is the cgroup v2 line. The path may itself contain ':'."""
    out = []
    for line in _text(data).splitlines():
        if not line:
            continue
        parts = line.split(":", 2)
        if len(parts) != 3:
            raise ProcParseError(f"cgroup: unexpected line {line[:60]!r}")
        out.append(CgroupLine(int(parts[0]), [c for c in parts[1].split(",") if c], parts[2]))
    return out


def parse_ns_link(link: str) -> tuple[str, int]:
    """'net:[4026531840]' -> ('net', 4026531840) (namespaces(7))."""
    m = _PSEUDO.match(link)
    if not m:
        raise ProcParseError(f"ns link: unexpected {link!r}")
    return m[1], int(m[2])


# ---- /proc/PID/net/* (socket inodes) ------------------------------------------------

_TCP_STATES = {  # include/net/tcp_states.h
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}
_UNIX_TYPES = {1: "stream", 2: "dgram", 5: "seqpacket"}  # SOCK_* in linux/net.h


def _inet_addr(hexaddr: str) -> str:
    # tcp4_seq_show(): "%08X:%04X" of the __be32 read as a host (little-endian) int;
    # IPv6 is four such words (tcp6_seq_show()).
    addr, port = hexaddr.split(":")
    raw = bytes.fromhex(addr)
    words = [raw[i:i + 4][::-1] for i in range(0, len(raw), 4)]
    b = b"".join(words)
    if len(b) == 4:
        return f"{'.'.join(str(x) for x in b)}:{int(port, 16)}"
    return f"[{ipaddress.IPv6Address(b)}]:{int(port, 16)}"


def parse_net_sockets(proto: str, data: bytes | str) -> dict[int, dict]:
    """inode -> socket details for one /proc/PID/net/<proto> file (proc(5)); proto is
    tcp, tcp6, udp, udp6, raw, raw6, unix, netlink or packet."""
    lines = _text(data).splitlines()[1:]
    out: dict[int, dict] = {}
    for line in lines:
        f = line.split()
        if not f:
            continue
        try:
            if proto in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6", "udplite", "udplite6"):
                info = {"protocol": proto, "local": _inet_addr(f[1]), "remote": _inet_addr(f[2])}
                if proto.startswith("tcp"):
                    info["state"] = _TCP_STATES.get(int(f[3], 16), f[3])
                out[int(f[9])] = info
            elif proto == "unix":
                info = {"protocol": "unix", "type": _UNIX_TYPES.get(int(f[4], 16), f[4])}
                if len(f) > 7:
                    info["path"] = " ".join(f[7:])
                out[int(f[6])] = info
            elif proto == "netlink":
                out[int(f[9])] = {"protocol": "netlink", "family": int(f[1])}
            elif proto == "packet":
                out[int(f[8])] = {"protocol": "packet"}
            else:
                raise ProcParseError(f"net: unknown protocol file {proto!r}")
        except (IndexError, ValueError) as exc:
            raise ProcParseError(f"net/{proto}: unexpected line {line[:60]!r} ({exc})") from None
    return out


NET_PROTOCOL_FILES = ("unix", "tcp", "tcp6", "udp", "udp6", "raw", "raw6", "netlink", "packet")
