"""Live readers of /proc, behind an overridable proc root.

A ProcDir holds an open file descriptor on /proc/PID and does every read relative to
it (openat(2)), so once opened it can only ever show that one process: if the process
exits and its PID is reused, reads fail with ESRCH instead of showing the new process.

Errors are translated once, here: ENOENT/ESRCH -> NoSuchProcess, EACCES/EPERM ->
AccessDenied (proc(5): most entries need ptrace read access, PTRACE_MODE_READ_FSCREDS,
i.e. the same user or CAP_SYS_PTRACE; 'syscall' needs PTRACE_MODE_ATTACH_FSCREDS).
"""

from __future__ import annotations

import errno
import os
import pwd

from perflab.core.errors import AccessDenied, EnvironmentRefused, NoSuchProcess

DEFAULT_PROC_ROOT = "/proc"
_GONE = (errno.ENOENT, errno.ESRCH)
_DENIED = (errno.EACCES, errno.EPERM)
_O_RDONLY = os.O_RDONLY | os.O_CLOEXEC


def user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def denied_message(what: str, pid: int, owner_uid: int | None) -> str:
    """One line saying what was refused and what would help."""
    owner = "" if owner_uid is None else f" (owned by uid {owner_uid}" + (
        f" ({user_name(owner_uid)}))" if user_name(owner_uid) else ")")
    me = os.geteuid()
    if me == 0 or me == owner_uid:
        # Same user or root and still refused: ptrace access checks beyond uids
        # (kernel/ptrace.c __ptrace_may_access, security/commoncap.c: the target's
        # permitted capabilities must be a subset of ours, or we need CAP_SYS_PTRACE;
        # a non-dumpable target; an LSM such as Yama, Landlock or SELinux).
        return (f"permission denied: cannot read {what} of pid {pid}{owner}, even as uid {me}: "
                "the kernel refused ptrace read access (the process has capabilities this one "
                "lacks, is not dumpable, or a security module forbids it)")
    return f"permission denied: cannot read {what} of pid {pid}{owner}: run as root or as that user"


class ProcDir:
    """An open /proc/PID (or /proc/PID/task/TID) directory."""

    def __init__(self, pid: int, proc_root: str = DEFAULT_PROC_ROOT):
        self.pid = pid
        self.proc_root = proc_root
        self.path = f"{proc_root}/{pid}"
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in _GONE:
                raise NoSuchProcess(f"no such process: {pid}", pid) from None
            if exc.errno in _DENIED:
                raise AccessDenied(f"permission denied: cannot open {self.path}", pid) from None
            if exc.errno == errno.ENOTDIR:  # /proc/self/.. or a file named like a PID
                raise NoSuchProcess(f"no such process: {pid}", pid) from None
            raise EnvironmentRefused(f"cannot open {self.path}: {exc.strerror}") from None
        self._subdirs: dict[str, int] = {}

    # -- lifecycle ---------------------------------------------------------------
    def close(self) -> None:
        for fd in self._subdirs.values():
            os.close(fd)
        self._subdirs.clear()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ProcDir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- errors ------------------------------------------------------------------
    def owner_uid(self) -> int | None:
        """The /proc/PID directory's owner: the process's effective uid when it is
        dumpable (proc(5), "/proc/pid")."""
        try:
            return os.fstat(self.fd).st_uid
        except OSError:
            return None

    def error(self, exc: OSError, what: str) -> EnvironmentRefused:
        """The typed error for an OSError met while reading `what` (relative path)."""
        if exc.errno in _GONE:
            return NoSuchProcess(f"process {self.pid} exited while being read ({self.path}/{what})", self.pid)
        if exc.errno in _DENIED:
            return AccessDenied(denied_message(f"{self.path}/{what}", self.pid, self.owner_uid()), self.pid)
        return EnvironmentRefused(f"cannot read {self.path}/{what}: {exc.strerror}")

    # -- reads -------------------------------------------------------------------
    def subdir(self, rel: str) -> int:
        """An fd on a subdirectory (task, fd, fdinfo), opened once and kept."""
        fd = self._subdirs.get(rel)
        if fd is None:
            try:
                fd = os.open(rel, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.fd)
            except OSError as exc:
                raise self.error(exc, rel) from None
            self._subdirs[rel] = fd
        return fd

    def read(self, rel: str, dir_fd: int | None = None, subdir: str | None = None,
             record_size: int = 0) -> bytes:
        """The whole file, read until EOF. `subdir` names the directory of `dir_fd` in
        error messages.

        record_size: the file is a single_open() seq_file (stat, status, syscall,
        fdinfo/N...: fs/proc/base.c proc_single_show, fs/proc/fd.c seq_show), whose
        show() produces the whole text at once, so a read of record_size bytes that
        comes back shorter has returned all of it: one read(2) instead of two. This
        matters at 30,000 files for a 10,000-thread process."""
        try:
            fd = os.open(rel, _O_RDONLY, dir_fd=self.fd if dir_fd is None else dir_fd)
        except OSError as exc:
            raise self.error(exc, f"{subdir}/{rel}" if subdir else rel) from None
        try:
            b = os.read(fd, record_size or 1 << 17)
            if len(b) < record_size:
                return b
            chunks = [b]
            while b:
                b = os.read(fd, 1 << 17)
                chunks.append(b)
            return b"".join(chunks)
        except OSError as exc:
            raise self.error(exc, f"{subdir}/{rel}" if subdir else rel) from None
        finally:
            os.close(fd)

    def read_in(self, subdir: str, rel: str) -> bytes:
        return self.read(rel, self.subdir(subdir), subdir)

    def readlink(self, rel: str, dir_fd: int | None = None, subdir: str | None = None) -> str:
        try:
            return os.readlink(rel, dir_fd=self.fd if dir_fd is None else dir_fd)
        except OSError as exc:
            raise self.error(exc, f"{subdir}/{rel}" if subdir else rel) from None

    def readlink_in(self, subdir: str, rel: str) -> str:
        return self.readlink(rel, self.subdir(subdir), subdir)

    def stat_in(self, subdir: str, rel: str) -> os.stat_result:
        """stat(2) through a magic link (fd/N, exe): the file it points to."""
        try:
            return os.stat(rel, dir_fd=self.subdir(subdir) if subdir else self.fd)
        except OSError as exc:
            raise self.error(exc, f"{subdir}/{rel}" if subdir else rel) from None

    def listdir(self, rel: str) -> list[str]:
        fd = self.subdir(rel)
        try:
            # os.listdir(fd) rewinds a dup of the fd, so a kept fd can be listed again.
            return os.listdir(fd)
        except OSError as exc:
            raise self.error(exc, rel) from None

    def alive(self) -> bool:
        """True while the process has not been reaped (a zombie is still 'alive' here)."""
        try:
            self.read("stat")
        except NoSuchProcess:
            return False
        return True
