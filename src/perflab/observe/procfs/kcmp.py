"""kcmp(2): which kernel objects two tasks share, and groups of tasks sharing each.

kcmp(pid1, pid2, type, idx1, idx2) returns 0 (equal), 1 (less) or 2 (greater): an
ordering of the two kernel pointers after obfuscation with a per-boot, per-type
random cookie (kernel/kcmp.c kcmp_ptr()). Only equality means anything to a reader,
but the ordering is a consistent total order, so tasks are grouped by sorting them
with kcmp as the comparator (functools.cmp_to_key) and splitting the sorted list into
runs of equal ones: O(N log N) calls instead of N^2 / 2. The tasks equal to the first
one are split off first in a plain loop, so the usual case (threads that share
everything) costs N - 1 calls and no sort at all.

Caveat (kcmp(2), kernel/kcmp.c): kcmp compares the raw pointers, so two tasks that
both have NO object compare equal. The I/O context (KCMP_IO) and the SysV semaphore
undo list (KCMP_SYSVSEM) are allocated lazily (block/blk-ioc.c, ipc/sem.c), so
"equal" may mean "neither has one". NullProbe settles it; see its docstring.

Access: both tasks need ptrace read access (PTRACE_MODE_READ_REALCREDS): the same user
and dumpable, or CAP_SYS_PTRACE (kernel/ptrace.c __ptrace_may_access).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import struct
from typing import Iterable, NamedTuple

from perflab.core.errors import AccessDenied, EnvironmentRefused

# include/uapi/linux/kcmp.h
KCMP_FILE, KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_IO, KCMP_SYSVSEM, KCMP_EPOLL_TFD = range(8)

RESOURCES = {  # name -> (kcmp type, what the kernel object is)
    "vm": (KCMP_VM, "address space (mm_struct)"),
    "files": (KCMP_FILES, "file descriptor table (files_struct)"),
    "fs": (KCMP_FS, "root, cwd and umask (fs_struct)"),
    "sighand": (KCMP_SIGHAND, "signal handlers (sighand_struct)"),
    "io": (KCMP_IO, "I/O context (io_context)"),
    "sysvsem": (KCMP_SYSVSEM, "SysV semaphore undo list (sem_undo_list)"),
}
LAZY = ("io", "sysvsem")  # NULL until first needed: equality may mean "neither has one"; a
# tuple, not a set: NullProbe.valid is filled in this order, and a set's order changes from
# one process to the next (str hashes are randomised), so the JSON of inspect did too

# __NR_kcmp: arch/x86/entry/syscalls/syscall_64.tbl (312); include/uapi/asm-generic/
# unistd.h (272) for arm64 and riscv64. Other architectures: reported unavailable.
_SYSCALL_NR = {("x86_64", 8): 312, ("aarch64", 8): 272, ("arm64", 8): 272, ("riscv64", 8): 272}


class KcmpUnavailable(EnvironmentRefused):
    """kcmp cannot run here (architecture, CONFIG_KCMP=n, seccomp...)."""


class TaskGone(Exception):
    """A task compared by kcmp has exited (ESRCH): the caller drops it and retries."""

    def __init__(self, tid: int):
        super().__init__(tid)
        self.tid = tid


class _Unordered(Exception):
    """kcmp answered 3 ("not equal, no ordering", kcmp(2)): sorting is impossible."""


def syscall_number() -> int | None:
    return _SYSCALL_NR.get((os.uname().machine, struct.calcsize("P")))  # platform.machine()'s source


class Kcmp:
    """The system call, through libc's syscall(3) with ctypes (no glibc wrapper exists)."""

    def __init__(self):
        nr = syscall_number()
        if nr is None:
            raise KcmpUnavailable(
                f"kcmp: no system call number known for {os.uname().machine} "
                f"({struct.calcsize('P') * 8}-bit): sharing not shown")
        self.nr = nr
        # No argtypes: every argument is a Python int that fits a C int or long, and
        # ctypes' default conversion costs ~0.7 us less per call than declared argtypes
        # (it matters at 60,000 calls). restype stays int: kcmp returns 0..3 or -1.
        self._syscall = ctypes.CDLL(None, use_errno=True).syscall
        self.calls = 0
        # kind -> (pivot, others, results): the first loop of _sorted_runs, made by the
        # procsnap reader in C while it read the tasks (procfs/native.py)
        self.presets: dict[int, tuple[int, list[int], str]] = {}
        # Comparing this process with itself needs no privilege: if even that fails,
        # kcmp is compiled out (ENOSYS) or filtered (a container's seccomp profile).
        me = os.getpid()
        if self._syscall(self.nr, me, me, KCMP_VM, 0, 0) < 0:
            e = ctypes.get_errno()
            raise KcmpUnavailable(f"kcmp is refused even for this process itself ({os.strerror(e)}): "
                                  "CONFIG_KCMP=n or a seccomp filter; sharing not shown")

    def raw(self, pid1: int, pid2: int, kind: int, idx1: int = 0, idx2: int = 0) -> int:
        """0 equal, 1 less, 2 greater; raises TaskGone, AccessDenied, KcmpUnavailable."""
        self.calls += 1
        r = self._syscall(self.nr, pid1, pid2, kind, idx1, idx2)
        if r >= 0:
            return r
        self.fail(pid1, pid2, kind, idx1, idx2)

    def fail(self, pid1: int, pid2: int, kind: int, idx1: int = 0, idx2: int = 0):
        """Raise the typed error for the kcmp call that just returned -1."""
        e = ctypes.get_errno()
        if e == errno.ESRCH:
            raise TaskGone(pid1 if not self._exists(pid1) else pid2)
        if e in (errno.EPERM, errno.EACCES):
            raise AccessDenied(f"kcmp({pid1}, {pid2}): permission denied (needs ptrace read access to both)")
        if e == errno.ENOSYS:
            raise KcmpUnavailable("kcmp: not implemented by this kernel (CONFIG_KCMP=n)")
        if e == errno.EBADF and kind in (KCMP_FILE, KCMP_EPOLL_TFD):
            raise EnvironmentRefused(f"kcmp: bad file descriptor ({idx1} of {pid1} or {idx2} of {pid2})")
        raise OSError(e, f"kcmp({pid1}, {pid2}, {kind}): {os.strerror(e)}")

    def _exists(self, tid: int) -> bool:
        # A task compared with itself: ESRCH once it has exited.
        return self._syscall(self.nr, tid, tid, KCMP_VM, 0, 0) >= 0 or ctypes.get_errno() != errno.ESRCH

    def same(self, pid1: int, pid2: int, kind: int) -> bool:
        return self.raw(pid1, pid2, kind) == 0

    def same_file(self, pid1: int, fd1: int, pid2: int, fd2: int) -> bool:
        """Do fd1 of pid1 and fd2 of pid2 refer to one open file description?"""
        return self.raw(pid1, pid2, KCMP_FILE, fd1, fd2) == 0


class Grouping(NamedTuple):
    groups: list[list[int]]  # tasks sharing one object; singletons share nothing
    vanished: list[int]  # tasks that exited while being compared
    calls: int  # kcmp calls made


def group(kc: Kcmp, tasks: Iterable[int], kind: int, max_retries: int = 50) -> Grouping:
    """Partition `tasks` into groups sharing the `kind` object, sorting with kcmp."""
    alive = list(dict.fromkeys(tasks))
    vanished: list[int] = []
    start_calls = kc.calls
    for _ in range(max_retries):
        try:
            return Grouping(_sorted_runs(kc, alive, kind), vanished, kc.calls - start_calls)
        except TaskGone as gone:
            if gone.tid not in alive:
                raise
            alive.remove(gone.tid)
            vanished.append(gone.tid)
        except _Unordered:
            return Grouping(_by_representative(kc, alive, kind), vanished, kc.calls - start_calls)
    raise EnvironmentRefused(f"kcmp: tasks kept exiting while being compared ({len(vanished)} gone)")


def _sorted_runs(kc: Kcmp, tasks: list[int], kind: int) -> list[list[int]]:
    if not tasks:
        return []
    syscall, nr = kc._syscall, kc.nr  # the hot loops: no attribute lookups per call
    # First split off the tasks equal to the first one, in a plain loop: threads
    # usually share everything, and this makes that case N - 1 calls with no sorting.
    pivot, same, rest = tasks[0], [tasks[0]], []
    others = tasks[1:]
    done = _preset(kc, kind, pivot, others)
    if done is not None:
        for t, raw in zip(others, done):
            (same if raw == "0" else rest).append(t)
    else:
        for t in others:
            raw = syscall(nr, pivot, t, kind, 0, 0)
            if raw < 0:
                kc.fail(pivot, t, kind)
            (same if raw == 0 else rest).append(t)
    kc.calls += len(tasks) - 1
    return _sort_groups([same] + _sorted_runs_sort(kc, rest, kind))


def _preset(kc: Kcmp, kind: int, pivot: int, others: list[int]) -> str | None:
    """The results procsnap got for exactly these calls (its task list may end with the
    parent, which these tasks leave out when it was not compared), or None."""
    p = kc.presets.get(kind)
    if p is None or p[0] != pivot or p[1][:len(others)] != others:
        return None
    results = p[2][:len(others)]
    return results if len(results) == len(others) and "-" not in results else None


def _sort_groups(groups: list[list[int]]) -> list[list[int]]:
    for g in groups:
        g.sort()
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups


def _sorted_runs_sort(kc: Kcmp, tasks: list[int], kind: int) -> list[list[int]]:
    """The rest: sorted with kcmp as the comparator, then split into runs of equals."""
    if not tasks:
        return []
    cache: dict[tuple[int, int], int] = {}
    order = (0, -1, 1)  # kcmp 0 equal, 1 less, 2 greater -> cmp's 0, -1, 1
    syscall, nr = kc._syscall, kc.nr
    calls = 0

    def cmp(a: int, b: int) -> int:
        nonlocal calls
        if a == b:
            return 0
        r = cache.get((a, b))
        if r is None:
            calls += 1
            raw = syscall(nr, a, b, kind, 0, 0)
            if raw < 0:
                kc.fail(a, b, kind)
            if raw > 2:
                raise _Unordered()
            r = order[raw]
            cache[(a, b)] = r
            cache[(b, a)] = -r
        return r

    try:
        ordered = sorted(tasks, key=functools.cmp_to_key(cmp))
        groups = [[ordered[0]]]
        for prev, cur in zip(ordered, ordered[1:]):
            if cmp(prev, cur) == 0:  # usually cached: Timsort compared neighbours already
                groups[-1].append(cur)
            else:
                groups.append([cur])
    finally:
        kc.calls += calls
    return groups


def _by_representative(kc: Kcmp, tasks: list[int], kind: int) -> list[list[int]]:
    """Fallback when kcmp gives no ordering: compare with one member of each group."""
    groups: list[list[int]] = []
    for t in tasks:
        for g in groups:
            if kc.same(t, g[0], kind):
                g.append(t)
                break
        else:
            groups.append([t])
    return _sort_groups(groups)


class NullProbe:
    """Two tasks known to have no io_context and no SysV semaphore undo list.

    perflab forks two children that only block on a pipe. A child gets no undo list
    unless cloned with CLONE_SYSVSEM (copy_semundo() in ipc/sem.c) and no io_context
    unless CLONE_IO or the parent had an explicit I/O priority (copy_io() in
    block/blk-ioc.c, e.g. perflab run under ionice(1)); blocking on a pipe allocates
    neither. The probe checks itself: if its two children compare equal they both hold
    NULL (unshared objects are never equal), and then a group of the inspected tasks
    that compares equal to a child holds NULL too: "not allocated". If they differ,
    equality stays "same or not allocated (kcmp cannot tell)" for that resource.
    """

    def __init__(self, kc: Kcmp):
        self.kc = kc
        self.pids: list[int] = []
        self._write_fd = -1
        self.valid: dict[str, bool] = {}
        self.reason: str | None = None

    def __enter__(self) -> NullProbe:
        r, w = os.pipe()
        try:
            for _ in range(2):
                pid = os.fork()
                if pid == 0:  # child: block until perflab closes the pipe, then leave
                    try:
                        os.close(w)
                        os.read(r, 1)
                    finally:
                        os._exit(0)
                self.pids.append(pid)
        except OSError as exc:
            self.reason = f"cannot fork the null probe: {exc.strerror}"
        finally:
            os.close(r)
        self._write_fd = w
        if len(self.pids) == 2:
            for name in LAZY:
                kind = RESOURCES[name][0]
                try:
                    self.valid[name] = self.kc.same(self.pids[0], self.pids[1], kind)
                except (TaskGone, AccessDenied, KcmpUnavailable) as exc:
                    self.valid[name] = False
                    self.reason = f"null probe failed: {exc}"
                if not self.valid[name] and self.reason is None:
                    self.reason = f"probe children differ on {name} (perflab runs with an explicit I/O priority?)"
        return self

    def is_null(self, tid: int, resource: str) -> bool | None:
        """True: the task has no such object; False: it has one; None: unknown."""
        if not self.valid.get(resource):
            return None
        return self.kc.same(tid, self.pids[0], RESOURCES[resource][0])

    def __exit__(self, *exc) -> None:
        if self._write_fd >= 0:
            os.close(self._write_fd)  # EOF: the children exit
            self._write_fd = -1
        for pid in self.pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:  # SIGCHLD ignored: the kernel reaped it already
                pass
        self.pids.clear()
