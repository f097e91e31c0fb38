"""The fd table of a snapshot, read in Python: fd/N (readlink: what it is), fdinfo/N
(pos, flags, type-specific lines) and, for a path, stat(2) of the open file. The whole
table on the Python path (snapshot.py), single rows that the procsnap reader leaves to
Python (procfs/native.py: an IPv6 socket, an fdinfo it does not model)."""

from __future__ import annotations

import os
import stat as stat_mod

from perflab.core.errors import NoSuchProcess
from perflab.observe.procfs import parse_fds
from perflab.observe.procfs.read import ProcDir

_MACHINE = os.uname().machine
_MODE_KINDS = (
    (stat_mod.S_ISREG, "regular"), (stat_mod.S_ISDIR, "directory"), (stat_mod.S_ISCHR, "char_device"),
    (stat_mod.S_ISBLK, "block_device"), (stat_mod.S_ISFIFO, "fifo"), (stat_mod.S_ISSOCK, "socket"),
    (stat_mod.S_ISLNK, "symlink"),
)


class Sockets:
    """inode -> protocol details from the process's network namespace (/proc/PID/net),
    read at the first socket that needs it."""

    def __init__(self, pd: ProcDir):
        self.pd = pd
        self._table: dict[int, dict] | None = None

    def get(self, inode: int | None) -> dict:
        if self._table is None:
            self._table = {}
            for proto in parse_fds.NET_PROTOCOL_FILES:
                try:
                    data = self.pd.read(f"net/{proto}")
                except NoSuchProcess:
                    continue  # protocol not built in (e.g. no IPv6): no such file
                self._table.update(parse_fds.parse_net_sockets(proto, data))
        return self._table.get(inode, {"protocol": None})


def read_fds(pd: ProcDir) -> dict:
    """The whole table."""
    nums = sorted(int(n) for n in pd.listdir("fd"))
    rows, closed = [], 0
    sockets = Sockets(pd)
    for n in nums:
        row = fd_row(pd, n, sockets)
        if row is None:
            closed += 1  # closed between listing and reading: a normal race
        else:
            rows.append(row)
    return table(rows, [r["type"] for r in rows], closed)


def table(rows, types: list[str], closed: int) -> dict:
    counts: dict[str, int] = {}
    for t in types:
        counts[t] = counts.get(t, 0) + 1
    return {"available": True, "count": len(types), "by_type": counts, "closed_while_read": closed,
            "table": rows}


def fd_row(pd: ProcDir, n: int, sockets: Sockets) -> dict | None:
    """One fd's row, or None if it was closed while being read. Raises NoSuchProcess if
    the process itself is gone."""
    fd_dir = pd.subdir("fd")
    info_dir = pd.subdir("fdinfo")
    name = str(n)
    try:
        link = pd.readlink(name, fd_dir, "fd")
        info = parse_fds.parse_fdinfo(pd.read(name, info_dir, "fdinfo", 4096))
    except NoSuchProcess:
        if not pd.alive():
            raise
        return None
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
                return None
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
        details = sockets.get(target.inode)
    elif kind == "anon_inode":
        details = {"anon_inode": target.name}
    if details:
        row["details"] = details
    return row
