"""The per-task and per-fd loops of a snapshot, in C: the procsnap reader
(kernels/procsnap/, docs/kernels.md "procsnap").

A process of 10,000 threads and 19,000 fds is ~40,000 small /proc files: in Python each
costs an open, a read, a close, a parse and a dict, ~1.2 s in all on this project's
machine, and json.dumps of the 13 MB answer another 0.2 s. procsnap reads the same
files with one worker thread per CPU, classifies the mappings and writes every row as
the JSON text json.dumps would write for the row the Python path builds (snapshot.py
with parse.py, parse_maps.py, parse_fds.py and classify.py, which stay the reference:
tests/test_procsnap.py holds the two equal). Rows stay text until someone needs them as
dicts: `perflab inspect --json` splices them into its output, the terminal view decodes
only the rows it shows.

What procsnap does not model it hands back: one fd ("P FD", e.g. an IPv6 socket, whose
address Python's ipaddress writes) is done by the Python code, and anything else it
does not know ("X REASON": a format it does not parse, a label in smaps) sends the whole
process to the Python path. A failed read ("E ERRNO WHAT") is raised as the Python
reader would raise it (read.py ProcDir.error). If procsnap is not built (a checkout
without `setup.py build_kernels`), or dies, the Python path reads the process.
"""

from __future__ import annotations

import mmap
import os
import signal
from typing import NamedTuple

from perflab.observe.procfs.read import ProcDir

PROVENANCE = ("procsnap",)
READER = "procsnap"


class Deferred(Exception):
    """procsnap handed the whole process back ("X REASON")."""


class Rows(NamedTuple):
    """One list of the snapshot as procsnap wrote it: the JSON array's text, and the
    offsets just past each of its first rows (as many as were asked with --rows)."""

    text: memoryview
    ends: list[int]

    def first(self, n: int) -> bytes:
        """The JSON array of its first n rows."""
        if n > len(self.ends):
            return bytes(self.text)  # fewer rows than that, or their ends were not asked for
        return bytes(self.text[:self.ends[n - 1]]) + b"]" if n > 0 else b"[]"


class Native(NamedTuple):
    tids: list[int]
    states: str  # one state letter per TID
    vanished: list[int]
    threads: Rows
    mappings: Rows
    space_rest: bytes  # {"by_kind":...,"libraries":...,"totals":...}
    fd_types: list[str]  # per fd row; "?" where Python classifies the link
    fds: Rows  # with the placeholder "P" for a row left to Python
    fd_python: list[tuple[int, int, int, int]]  # those rows: (fd, start, end of "P" in fds.text, row)
    fds_closed: int
    kcmp: dict[int, tuple[int, list[int], str]]  # resource index -> (pivot, others, results)


def reader_path() -> str | None:
    """The built reader, or None (then the Python path reads)."""
    from perflab.engine.process import kernel_dir

    path = os.path.join(kernel_dir(), READER)
    return path if os.access(path, os.X_OK) else None


def start(pd: ProcDir, ppid: int, kcmp: bool, rows: int = 0) -> Job | None:
    """Start procsnap on the process of `pd` (with the end offsets of the first `rows`
    rows of each list), to run while the caller does its own reads; None if it is not
    built or cannot be started (the caller reads in Python)."""
    path = reader_path()
    if path is None:
        return None
    argv = [path, f"--pid={pd.pid}", f"--proc-root={pd.proc_root}", f"--parent={ppid}",
            f"--kcmp={int(kcmp)}", f"--rows={rows}"]
    try:
        return Job(path, argv, pd)
    except OSError:
        return None


def read(pd: ProcDir, ppid: int, kcmp: bool, rows: int = 0) -> Native | None:
    """start() and result() in one."""
    job = start(pd, ppid, kcmp, rows)
    if job is None:
        return None
    try:
        return job.result()
    finally:
        job.cancel()


class Job:
    """A running procsnap. Its output (~13 MB for 10,000 threads) goes to a memfd
    (memfd_create(2)), mapped here once it has exited, not through a pipe (200 wake-ups
    and two copies); through a pipe where there is no memfd."""

    def __init__(self, path: str, argv: list[str], pd: ProcDir):
        self.pd = pd
        try:
            self.out_fd, self.pipe = os.memfd_create("procsnap", os.MFD_CLOEXEC), None
        except (AttributeError, OSError):
            self.pipe = os.pipe()
            self.out_fd = self.pipe[1]
        try:
            # posix_spawn: no fork of this interpreter, and only fds 0-2 are inherited
            # (Python opens every other fd close-on-exec, PEP 446)
            self.pid = os.posix_spawn(path, argv, os.environ, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, self.out_fd, 1),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
        except OSError:
            self._close()
            raise
        if self.pipe:
            os.close(self.pipe[1])

    def result(self) -> Native | None:
        """Wait for it; its snapshot, or None if it died (a bug, a signal, no memory:
        the Python path does it all). Raises Deferred, or the reader's typed error."""
        out = None
        if self.pipe:
            chunks = []
            while b := os.read(self.pipe[0], 1 << 20):
                chunks.append(b)
            out = b"".join(chunks)
        if self._reap() != 0:
            return None
        if not self.pipe:
            size = os.fstat(self.out_fd).st_size
            out = mmap.mmap(self.out_fd, size, access=mmap.ACCESS_READ) if size else None
        self._close()
        return None if out is None else parse(out, self.pd)

    def cancel(self) -> None:
        """Kill and reap it (an error or an interrupt here); nothing once result() ran."""
        if self.pid > 0:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap()
        self._close()

    def _reap(self) -> int:
        pid, self.pid = self.pid, -1
        try:
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        except ChildProcessError:  # SIGCHLD ignored: reaped already; the output says
            return 0

    def _close(self) -> None:
        for fd in (self.out_fd, *(self.pipe or ())):
            try:
                os.close(fd)
            except OSError:
                pass
        self.out_fd, self.pipe = -1, None


class _Cursor:
    def __init__(self, data):
        self.data, self.at, self.view = data, 0, memoryview(data)

    def line(self) -> bytes:
        end = self.data.find(b"\n", self.at)
        line, self.at = self.data[self.at:end], end + 1
        return line

    def rows(self, head: bytes) -> Rows:
        """'NAME BYTES END...' and the array after it."""
        n, *ends = map(int, head.split()[1:])
        text, self.at = self.view[self.at:self.at + n], self.at + n + 1
        return Rows(text, ends)


def parse(out, pd: ProcDir) -> Native | None:
    """procsnap's output (docs/kernels.md, "procsnap")."""
    first = out[:out.find(b"\n")]
    if first.startswith(b"E "):
        _, err, what = first.decode("utf-8", "surrogateescape").split(" ", 2)
        raise pd.error(OSError(int(err), os.strerror(int(err))), what)
    if first.startswith(b"X "):
        raise Deferred(first[2:].decode("utf-8", "replace"))
    if first != b"procsnap 1" or out[-4:] != b"end\n":
        return None  # another protocol, or cut short
    c = _Cursor(out)
    c.line()
    kcmp = {}
    line = c.line()
    while line.startswith(b"kcmp "):
        _, res, pivot, ppid, results = line.split(b" ", 4)
        kcmp[int(res)] = (int(pivot), int(ppid), results.decode("ascii"))
        line = c.line()
    ntasks = int(line.split()[1])
    tids = [int(t) for t in c.line().split()]
    states = c.line().decode("ascii")
    vanished = [int(t) for t in c.line().split()[1:]]
    threads = c.rows(c.line())
    mappings = c.rows(c.line())
    space_rest = c.line()
    _, nfds, closed = c.line().split()
    fd_types = c.line().decode("ascii").split()
    fd_python = [tuple(map(int, item.split(b":"))) for item in c.line().split()[1:]]
    fds = c.rows(c.line())
    if c.line() != b"end" or len(tids) != ntasks or len(states) != ntasks or len(fd_types) != int(nfds):
        return None  # not the protocol: read in Python
    all_tids = sorted(tids + vanished)
    presets = {res: (pivot, all_tids[1:] + ([ppid] if ppid else []), results)
               for res, (pivot, ppid, results) in kcmp.items() if all_tids and pivot == all_tids[0]}
    return Native(tids, states, vanished, threads, mappings, space_rest, fd_types, fds, fd_python,
                  int(closed), presets)
