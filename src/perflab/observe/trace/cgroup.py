"""A fresh cgroup-v2 directory per traced command: the BPF mechanism's filter key.

The tracer moves the held command into it before execve; every thread and child the
command creates is born in it (cgroups(7)), so ``bpf_get_current_cgroup_id()`` tells
the command's calls from everyone else's. The directory is created next to perflab's
own cgroup-v2 (``0::PATH`` in /proc/self/cgroup), under the cgroup2 mount found in
/proc/self/mountinfo (``/sys/fs/cgroup`` on pure v2 hosts, ``/sys/fs/cgroup/unified``
in a hybrid layout). On the way out whatever is left in it is killed (cgroup.kill,
Linux 5.14) and the directory removed, also after an interrupt; directories left by a
perflab that was SIGKILLed are removed the next time (their pid is gone).
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from perflab.observe.trace.errors import MechanismRefused
from perflab.observe.trace.mounts import mount_points

PREFIX = "perflab-trace-"
_serial = itertools.count()


def own_v2_path(proc_cgroup: str | None = None) -> str:
    """This process's cgroup-v2 path ("0::/a/b" -> "/a/b")."""
    text = proc_cgroup if proc_cgroup is not None else Path("/proc/self/cgroup").read_text()
    for line in text.splitlines():
        if line.startswith("0::"):
            return line[3:]
    raise MechanismRefused("this process has no cgroup-v2 membership (/proc/self/cgroup has no 0:: line)")


def parent_dir() -> Path:
    mounts = mount_points("cgroup2")
    if not mounts:
        raise MechanismRefused("no cgroup-v2 hierarchy is mounted (the BPF filter needs one)")
    return mounts[0] / own_v2_path().lstrip("/")


def _remove(path: Path, wait_s: float = 5.0) -> None:
    """Kill what is left in the cgroup, wait until it is empty, remove it."""
    try:
        if (path / "cgroup.procs").read_text().strip():
            (path / "cgroup.kill").write_text("1")
    except FileNotFoundError:
        return
    deadline = time.monotonic() + wait_s
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:  # EBUSY while killed tasks are still exiting
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise MechanismRefused(f"cannot remove cgroup {path}: {exc.strerror}") from None
            time.sleep(0.005)


def _sweep_stale(parent: Path) -> None:
    """Remove the cgroups of perflab processes that no longer exist."""
    try:
        entries = list(parent.glob(PREFIX + "*"))
    except OSError:
        return
    for entry in entries:
        m = re.fullmatch(PREFIX + r"(\d+)-\d+", entry.name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            try:
                _remove(entry, wait_s=1.0)
            except MechanismRefused:
                pass  # someone else's problem now; ours is made under a fresh name


@contextmanager
def fresh_cgroup() -> Iterator[Path]:
    parent = parent_dir()
    _sweep_stale(parent)
    path = parent / f"{PREFIX}{os.getpid()}-{next(_serial)}"
    try:
        path.mkdir()
    except OSError as exc:
        raise MechanismRefused(f"cannot create a cgroup in {parent}: {exc.strerror}") from None
    try:
        yield path
    finally:
        _remove(path)
