"""tracefs for the perf mechanism: the raw_syscalls:sys_enter id and record format.

Used where it is mounted (/proc/self/mountinfo). Otherwise it is mounted at
/sys/kernel/tracing for the duration of one trace (mount(2), needs CAP_SYS_ADMIN) and
unmounted afterwards (umount2(2) with MNT_DETACH, so a concurrent reader cannot make
the unmount fail): we leave the machine's mounts as we found them.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from perflab.observe.trace.errors import MechanismRefused
from perflab.observe.trace.mounts import mount_points

DEFAULT = Path("/sys/kernel/tracing")
MNT_DETACH = 2  # include/linux/fs.h (umount2(2))

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def find() -> Path | None:
    mounts = mount_points("tracefs")
    if DEFAULT in mounts:
        return DEFAULT
    return mounts[0] if mounts else None


@contextmanager
def mounted() -> Iterator[Path]:
    found = find()
    if found is not None:
        yield found
        return
    if _libc.mount(b"nodev", bytes(DEFAULT), b"tracefs", 0, None) != 0:
        err = ctypes.get_errno()
        raise MechanismRefused(
            f"tracefs is not mounted, and mounting it at {DEFAULT} failed: {os.strerror(err)}"
            + (" (needs CAP_SYS_ADMIN)" if err == 1 else "")
        )
    try:
        yield DEFAULT
    finally:
        _libc.umount2(bytes(DEFAULT), MNT_DETACH)
