"""Physical pages behind virtual addresses: /proc/PID/pagemap, /proc/kpagecount,
/proc/kpageflags (Documentation/admin-guide/mm/pagemap.rst).

Each virtual page has a 64-bit pagemap entry at offset (vaddr / PAGE_SIZE) * 8:
  bits 0-54  page frame number (PFN) if present (swap type/offset if swapped);
             zero without CAP_SYS_ADMIN since Linux 4.2 (a Rowhammer mitigation)
  bit  55    soft-dirty (Documentation/admin-guide/mm/soft-dirty.rst)
  bit  56    page exclusively mapped (since 4.2)
  bit  57    write-protected by userfaultfd (since 5.13)
  bit  61    file-backed page or shared anonymous page (since 3.5)
  bit  62    swapped
  bit  63    present
/proc/kpagecount holds one 64-bit map count per PFN, /proc/kpageflags one flags word
(both root only). shared_frames() tells whether two processes map the same physical
page at given addresses: the evidence for fork's copy-on-write.
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
from typing import Iterable, NamedTuple

from perflab.core.errors import AccessDenied, EnvironmentRefused, NoSuchProcess
from perflab.observe.procfs.read import DEFAULT_PROC_ROOT, ProcDir

PAGE_SIZE = mmap.PAGESIZE
PFN_MASK = (1 << 55) - 1
SOFT_DIRTY, EXCLUSIVE, UFFD_WP, FILE_SHARED, SWAPPED, PRESENT = 55, 56, 57, 61, 62, 63

# include/uapi/linux/kernel-page-flags.h
KPAGEFLAGS = (
    "LOCKED", "ERROR", "REFERENCED", "UPTODATE", "DIRTY", "LRU", "ACTIVE", "SLAB",
    "WRITEBACK", "RECLAIM", "BUDDY", "MMAP", "ANON", "SWAPCACHE", "SWAPBACKED",
    "COMPOUND_HEAD", "COMPOUND_TAIL", "HUGE", "UNEVICTABLE", "HWPOISON", "NOPAGE", "KSM",
    "THP", "OFFLINE", "ZERO_PAGE", "IDLE", "PGTABLE",
)


class PageEntry(NamedTuple):
    vaddr: int
    present: bool
    swapped: bool
    file_or_shared_anon: bool
    exclusive: bool
    soft_dirty: bool
    pfn: int | None  # None if not present; 0 if present but hidden (no CAP_SYS_ADMIN)


def parse_pagemap(data: bytes, vaddr: int, page_size: int = PAGE_SIZE) -> list[PageEntry]:
    """Decode consecutive 8-byte entries; the first describes the page at `vaddr`."""
    if len(data) % 8:
        raise ValueError(f"pagemap: {len(data)} bytes is not a whole number of entries")
    base = vaddr - vaddr % page_size
    out = []
    for i, (e,) in enumerate(struct.iter_unpack("=Q", data)):  # native-endian u64
        present = bool(e >> PRESENT & 1)
        out.append(PageEntry(
            vaddr=base + i * page_size,
            present=present,
            swapped=bool(e >> SWAPPED & 1),
            file_or_shared_anon=bool(e >> FILE_SHARED & 1),
            exclusive=bool(e >> EXCLUSIVE & 1),
            soft_dirty=bool(e >> SOFT_DIRTY & 1),
            pfn=(e & PFN_MASK) if present else None,
        ))
    return out


def read_pagemap(pid: int, vaddr: int, npages: int = 1, proc_root: str = DEFAULT_PROC_ROOT) -> list[PageEntry]:
    """Entries for `npages` pages from `vaddr` (needs ptrace read access to `pid`)."""
    with ProcDir(pid, proc_root) as pd:
        try:
            fd = os.open("pagemap", os.O_RDONLY | os.O_CLOEXEC, dir_fd=pd.fd)
        except OSError as exc:
            raise pd.error(exc, "pagemap") from None
        try:
            data = os.pread(fd, 8 * npages, (vaddr // PAGE_SIZE) * 8)
        except OSError as exc:
            raise pd.error(exc, "pagemap") from None
        finally:
            os.close(fd)
    if len(data) != 8 * npages:
        raise NoSuchProcess(f"pagemap of {pid}: short read ({len(data)} bytes)", pid)
    return parse_pagemap(data, vaddr)


def _read_words(path: str, pfns: Iterable[int]) -> dict[int, int]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise AccessDenied(f"permission denied: {path} is readable by root only (CAP_SYS_ADMIN)") from None
        raise EnvironmentRefused(f"cannot read {path}: {exc.strerror} (CONFIG_PROC_PAGE_MONITOR=n?)") from None
    try:
        return {pfn: struct.unpack("=Q", os.pread(fd, 8, pfn * 8))[0] for pfn in pfns}
    finally:
        os.close(fd)


def kpagecount(pfns: Iterable[int], proc_root: str = DEFAULT_PROC_ROOT) -> dict[int, int]:
    """How many times each physical page is mapped."""
    return _read_words(f"{proc_root}/kpagecount", pfns)


def kpageflags(pfns: Iterable[int], proc_root: str = DEFAULT_PROC_ROOT) -> dict[int, list[str]]:
    words = _read_words(f"{proc_root}/kpageflags", pfns)
    return {pfn: [n for b, n in enumerate(KPAGEFLAGS) if w >> b & 1] for pfn, w in words.items()}


class FrameShare(NamedTuple):
    vaddr: int
    pfn_a: int | None  # None: not present in a
    pfn_b: int | None
    shared: bool  # both present on one physical page
    exclusive_a: bool
    exclusive_b: bool
    mapcount: int | None  # kpagecount of the shared page (None if not shared)


def shared_frames(pid_a: int, pid_b: int, addresses: Iterable[int],
                  proc_root: str = DEFAULT_PROC_ROOT) -> list[FrameShare]:
    """Per address: do pid_a and pid_b map the same physical page there?

    Needs PFNs, hence CAP_SYS_ADMIN: without it the kernel zeroes them and this raises
    AccessDenied rather than answering "not shared" (a hidden PFN is not evidence)."""
    addrs = list(addresses)
    out = []
    for vaddr in addrs:
        a = read_pagemap(pid_a, vaddr, 1, proc_root)[0]
        b = read_pagemap(pid_b, vaddr, 1, proc_root)[0]
        for e, pid in ((a, pid_a), (b, pid_b)):
            if e.present and e.pfn == 0:
                raise AccessDenied(
                    f"permission denied: pagemap of pid {pid} hides page frame numbers without "
                    "CAP_SYS_ADMIN (Documentation/admin-guide/mm/pagemap.rst): run as root", pid)
        shared = a.present and b.present and a.pfn == b.pfn
        out.append(FrameShare(vaddr, a.pfn, b.pfn, shared, a.exclusive, b.exclusive, None))
    shared_pfns = {f.pfn_a for f in out if f.shared}
    if shared_pfns:
        try:
            counts = kpagecount(shared_pfns, proc_root)
        except AccessDenied:
            counts = {}
        out = [f._replace(mapcount=counts.get(f.pfn_a)) if f.shared else f for f in out]
    return out
