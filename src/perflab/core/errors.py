"""Typed errors, raised by library code and caught once by the CLI (as asv's UserError).

Exit codes follow the CLI convention: 1 = could not run (the environment said no),
2 = usage error (argparse's convention for a bad flag, claim or parameter).
"""

from __future__ import annotations


class PerflabError(Exception):
    """An error meant for the user: one clear line, no traceback."""

    exit_code = 1


class UsageError(PerflabError):
    """The user asked for something that does not exist or is out of range."""

    exit_code = 2


class EnvironmentRefused(PerflabError):
    """The environment said no: unwritable database, newer schema, missing PID..."""

    exit_code = 1


class KernelUnsupported(PerflabError):
    """A kernel exited 77: the measurement cannot run here (reason in the message)."""


class KernelFailed(PerflabError):
    """A kernel crashed, hung or printed something that is not its JSON record."""

    def __init__(self, message: str, stderr: str = "", returncode: int | None = None):
        super().__init__(message)
        self.stderr = stderr
        self.returncode = returncode


class ClaimSkipped(PerflabError):
    """A structural claim's check found nothing it can run here (reason in the message,
    with what would fix it: "needs root", "apt install golang-go")."""


class NoSuchProcess(EnvironmentRefused):
    """The process does not exist, or exited while being read (a normal race).

    Named after psutil's exception of the same meaning. ``pid`` is the process asked for.
    """

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid

    def __reduce__(self):  # keep pid through pickling (procfs/forked.py)
        return type(self), (str(self), self.pid)


class AccessDenied(EnvironmentRefused):
    """The kernel refused to show a process's /proc entry (another user's process, or
    one that is not dumpable): ptrace access mode checks, see proc(5) and ptrace(2)."""

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid

    def __reduce__(self):
        return type(self), (str(self), self.pid)


class BadInput(PerflabError):
    """A file given to read is not what it must be: not JSON, not a perflab record, a
    record of a newer schema version, no record at all (report, compare, export, import)."""

    exit_code = 1
