"""Where perflab's output goes: files written the safe way, streams that may be full or
closed. Used by `trace -o` (and meant for `report -o`).

An output file named by the user is written whole or not at all, and never through
something planted at its name:

- the target must be a regular file or not exist. Anything else is refused (a symlink,
  even to a regular file; a directory; a block device; a socket) except a FIFO or a
  character device named as such (``-o /dev/null``, ``-o /dev/ttyS0``, ``-o ./pipe``):
  the user asked to write through it, so it is opened for writing (O_WRONLY|O_NOFOLLOW|
  O_NOCTTY, no O_CREAT, no O_TRUNC: open(2)), checked with fstat to be the very object
  seen before, and written; it is never truncated, replaced or created. A FIFO with no
  reader blocks until one comes, as a shell's ``> FIFO`` does.
- otherwise the text goes to a temporary file in the target's own directory (so that
  rename(2) is atomic), created with O_CREAT|O_EXCL|O_NOFOLLOW under an unpredictable
  name (64 random bits, os.urandom): a symlink or file planted at any name there is never opened.
  It is written, fsync(2)ed, given the permission bits of the file it replaces (a new
  one: 0666 less the umask, as open(2) creates), renamed over the target, and the
  directory fsync(2)ed. rename(2) replaces the name, never what a symlink planted at the
  name between the check and the rename would point to. On any failure the temporary
  file is removed and the target is as it was.

A stream (stdout, stderr) that fails (``> /dev/full``: ENOSPC) ends the command with one
line and exit 1 (EnvironmentRefused), not a traceback; a closed pipe (BrokenPipeError) is
left to the CLI's own message. Started with fd 0, 1 or 2 closed (``2>&-``), perflab
opens /dev/null there first (standard_fds).
"""

from __future__ import annotations

import io
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from perflab.core.errors import EnvironmentRefused, UsageError
from perflab.core.safe import safe

# what may be written through, by lstat(2) type: the user named the object itself
_THROUGH = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device"}
_REFUSED = {
    stat.S_IFLNK: "it is a symbolic link (name the file it points to, if that is meant)",
    stat.S_IFDIR: "it is a directory",
    stat.S_IFBLK: "it is a block device",
    stat.S_IFSOCK: "it is a socket",
}


def _refuse(path: str, why: str) -> EnvironmentRefused:
    return EnvironmentRefused(f"cannot write the report to {safe(path)}: {why}")


def check_target(path: str) -> str:
    """Whether `path` may be written, without touching it: "new", "regular" or "through"
    (a FIFO or character device). Raises UsageError (empty name) or EnvironmentRefused
    (the reason). Call it before the work whose result goes there; write_file checks
    again, safely, when it writes."""
    if not path:
        raise UsageError("the output file name is empty (-o needs a file name)")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _refuse(path, exc.strerror or str(exc)) from None
    if st is not None:
        kind = stat.S_IFMT(st.st_mode)
        if kind in _THROUGH:
            if not os.access(path, os.W_OK):
                raise _refuse(path, f"{_THROUGH[kind]} this user may not write")
            return "through"
        if kind != stat.S_IFREG:
            raise _refuse(path, _REFUSED.get(kind, f"it is not a regular file (mode {st.st_mode:o})"))
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise _refuse(path, f"no directory {safe(folder)}")
    if not os.access(folder, os.W_OK | os.X_OK):  # access(2): EROFS on a read-only mount too
        raise _refuse(path, f"the directory {safe(folder)} is not writable")
    return "new" if st is None else "regular"


def write_file(path: str, text: str | bytes) -> None:
    """Write `text` to `path` whole, the safe way (module docstring). Raises
    EnvironmentRefused with the reason, leaving the target as it was."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    if check_target(path) == "through":
        _write_through(path, data)
    else:
        _replace(path, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write_through(path: str, data: bytes) -> None:
    before = os.lstat(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:  # ELOOP: a symlink was put there since the check
        raise _refuse(path, exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino) or stat.S_IFMT(st.st_mode) not in _THROUGH:
            raise _refuse(path, "it was replaced while being opened")
        _write_all(fd, data)
    except OSError as exc:
        raise _refuse(path, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def _replace(path: str, data: bytes) -> None:
    folder = os.path.dirname(path) or "."
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):  # a name taken by chance (or by someone guessing): draw again
        # 64 bits from getrandom(2): what secrets.token_hex(8) draws (os.urandom)
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.urandom(8).hex()}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # 0666 less the umask, as open(2) creates
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise _refuse(path, exc.strerror or str(exc)) from None
    else:
        raise _refuse(path, f"no free temporary name in {safe(folder)}")
    try:
        try:
            old = os.lstat(path)
            if stat.S_ISREG(old.st_mode):  # keep a private report private
                os.fchmod(fd, stat.S_IMODE(old.st_mode) & 0o777)
        except FileNotFoundError:
            pass
        _write_all(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.rename(tmp, path)  # rename(2): atomic; replaces the name, follows no link
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise _refuse(path, exc.strerror or str(exc)) from None
    try:  # the rename itself durable (fsync(2): "also ... the directory")
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass  # written and renamed; only its durability across a crash is unconfirmed


@contextmanager
def writing(stream: TextIO | None = None, name: str = "stdout") -> Iterator[TextIO]:
    """Print to `stream` (default sys.stdout) inside this block, flushed at its end. A
    write that fails (ENOSPC on /dev/full, EIO) becomes one EnvironmentRefused line;
    what is still buffered is dropped (the stream is pointed at /dev/null) so that
    Python's flush at exit does not fail a second time. BrokenPipeError passes through
    to the CLI, which says "output closed"."""
    stream = sys.stdout if stream is None else stream
    try:
        yield stream
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        _drop(stream)
        raise EnvironmentRefused(f"cannot write to {name}: {exc.strerror or exc}") from None


def _drop(stream: TextIO) -> None:
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def standard_fds() -> None:
    """Open /dev/null on whichever of fds 0, 1, 2 perflab was started without (``2>&-``),
    and give Python a stream for it. Otherwise the next file perflab opens would get that
    number and whatever is meant for stderr would be written into it (glibc does the
    same for set-user-ID programs: csu/check_fds.c, __libc_check_standard_fds)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    for attr, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        if getattr(sys, attr) is None:  # Python found the fd closed at start-up
            setattr(sys, attr, open(fd, mode, closefd=False, errors="backslashreplace"))
