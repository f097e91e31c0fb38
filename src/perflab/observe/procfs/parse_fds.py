"""Pure parsers of what a process has open: /proc/PID/fdinfo/FD, the fd/N link targets,
/proc/PID/cgroup and ns/*, and the socket tables of /proc/PID/net/* (proc(5))."""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from perflab.observe.procfs.parse import ProcParseError, text_of

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
    text = text_of(data)
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
    for line in text_of(data).splitlines():
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
    import ipaddress  # here: only IPv6 sockets need it, and it costs every inspect ~2 ms

    return f"[{ipaddress.IPv6Address(b)}]:{int(port, 16)}"


def parse_net_sockets(proto: str, data: bytes | str) -> dict[int, dict]:
    """inode -> socket details for one /proc/PID/net/<proto> file (proc(5)); proto is
    tcp, tcp6, udp, udp6, raw, raw6, unix, netlink or packet."""
    lines = text_of(data).splitlines()[1:]
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
