"""The one process runner: every kernel, subject and traced command perflab starts.

Each process is started by ``Child``:
* as the leader of its own session and process group (setsid), so that on timeout,
  interrupt or any exit path the whole group is killed with SIGKILL: helpers a kernel
  forked (ping-pong partners, grandchildren) cannot outlive it;
* with a parent-death signal (prctl(2) PR_SET_PDEATHSIG = SIGKILL), so that nothing
  survives perflab itself being killed: perflab's C kernels set it themselves first
  thing (kernel_init(), docs/kernels.md); any other program (the Python and Go subjects)
  is started through the ``launch`` kernel, which sets it and execs the program, because
  a Python preexec_fn would make every spawn a full fork() of this interpreter;
* with a timeout (the group is killed when it passes) and its stderr kept: a pipe read
  to the end for a one-shot run, a temporary file (unlinked at once) for a long-lived
  subject, so a chatty child can never block on a full pipe;
* with its CPU placement recorded: the CPU the kernel protocol's ``--cpu=N`` pins it to.

``run_kernel`` adds the kernel protocol: exit 77 is "not supported here" (reason on
stderr), any other failure keeps stderr, and the last stdout line is the JSON record.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from perflab.core.errors import EnvironmentRefused, KernelFailed, KernelUnsupported

EXIT_UNSUPPORTED = 77  # automake's "skipped" convention, used by every kernel
DEFAULT_TIMEOUT_S = 60.0
LAUNCH = "launch"  # kernels/launch.c: PR_SET_PDEATHSIG, then execvp
PROVENANCE = ("launch",)  # the launch kernel starts every program that is not a kernel


def kernel_dir() -> Path:
    override = os.environ.get("PERFLAB_KERNEL_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "_kernels"


def kernel_path(name: str) -> Path:
    path = kernel_dir() / name
    if not os.access(path, os.X_OK):
        raise EnvironmentRefused(
            f"native kernel '{name}' is not built ({path}): reinstall perflab with "
            "'pip install .', or in a checkout run 'python setup.py build_kernels --inplace'"
        )
    return path


def is_kernel(argv: list[str]) -> bool:
    """A bare name, or a path into the kernel directory, is a perflab kernel; anything
    else is another program."""
    head = argv[0]
    return "/" not in head or Path(head).parent == kernel_dir()


def resolve(argv: list[str]) -> list[str]:
    """The command to exec: a perflab kernel by its path; another program through the
    launch kernel (which gives it the parent-death signal the kernels set themselves)."""
    if "/" not in argv[0]:
        return [str(kernel_path(argv[0])), *argv[1:]]
    if is_kernel(argv):
        return list(argv)
    return [str(kernel_path(LAUNCH)), *argv]


def pinned_cpu(argv: list[str]) -> int | None:
    """The CPU the kernel protocol's --cpu=N pins this command to; None when unpinned (no
    option, or -1)."""
    for arg in argv[1:]:
        if arg.startswith("--cpu="):
            try:
                cpu = int(arg[len("--cpu="):])
            except ValueError:
                return None
            return cpu if cpu >= 0 else None
    return None


def _signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:  # real-time signals have no enum member
        return f"{num}"


def describe_exit(returncode: int) -> str:
    return f"killed by signal {_signame(-returncode)}" if returncode < 0 else f"exited {returncode}"


@dataclass
class Finished:
    """A child that ran to the end (or was killed at its timeout)."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu: int | None  # placement: the CPU it was pinned to, None if unpinned


class Child:
    """A started process in its own process group. Use as a context manager: leaving it,
    by any path, kills what is left of the group and reaps the child.

    ``interactive``: stdin is a pipe (``send``, ``close_stdin``) and stdout is read line by
    line (``readline``); stderr then goes to an unlinked temporary file. Otherwise stdin
    is /dev/null and ``communicate`` reads both pipes to the end. ``timeout_s`` bounds the
    child's whole life: past it the group is killed (a watchdog thread), and ``timed_out``
    says so.
    """

    def __init__(self, argv: list[str], *, timeout_s: float | None = DEFAULT_TIMEOUT_S, interactive: bool = False,
                 pass_fds: tuple[int, ...] = (), env: Mapping[str, str] | None = None):
        self.argv = list(argv)
        self.cmd = resolve(self.argv)
        self.name = Path(self.argv[0]).name
        self.cpu = pinned_cpu(self.argv)
        self.timeout_s = timeout_s
        self.timed_out = False
        self._err_file = tempfile.TemporaryFile() if interactive else None
        self.t0 = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                self.cmd,
                stdin=subprocess.PIPE if interactive else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._err_file if interactive else subprocess.PIPE,
                start_new_session=True,
                pass_fds=pass_fds,
                env=None if env is None else dict(env),
            )
        except OSError as exc:
            if self._err_file:
                self._err_file.close()
            raise KernelFailed(f"cannot start {self.cmd[0]}: {exc.strerror}") from None
        self._watchdog = None
        if interactive and timeout_s is not None:
            self._watchdog = threading.Timer(timeout_s, self._expire)
            self._watchdog.daemon = True
            self._watchdog.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    # ---- the group --------------------------------------------------------------------

    def _expire(self) -> None:
        self.timed_out = True
        self.kill()

    def kill(self) -> None:
        """SIGKILL to the whole process group (the child leads it)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def end(self, grace_s: float = 2.0) -> int:
        """Stop an interactive child that has nothing more to say: EOF on its stdin, up to
        ``grace_s`` to exit on its own (so that what it was writing to stderr, and its exit
        status, are there to report), then SIGKILL to the group; its status. The pipes stay
        open for failure()."""
        if self.proc.stdin and not self.proc.stdin.closed:
            self.close_stdin()
        try:
            return self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait()

    def close(self, grace_s: float = 10.0) -> None:
        """Let an interactive child exit on EOF for ``grace_s``, then kill the group and
        reap; close every pipe. Safe to call twice."""
        if self._watchdog:
            self._watchdog.cancel()
        if self.proc.stdin and not self.proc.stdin.closed:
            self.close_stdin()
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # also on success: nothing of the group survives
        if self.proc.poll() is None:
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr, self._err_file):
            if f is not None and not f.closed:
                try:
                    f.close()
                except OSError:
                    pass

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- talking to it ----------------------------------------------------------------

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()  # EOF: a subject exits
        except OSError:
            pass

    def readline(self, timeout_s: float | None = None) -> str:
        """The next stdout line, or '' at EOF or when nothing came for timeout_s."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            return ""
        return self.proc.stdout.readline().decode(errors="replace")

    def stderr_text(self) -> str:
        if self._err_file is not None:
            self._err_file.seek(0)
            return self._err_file.read().decode(errors="replace")
        return ""

    def read_stdout(self, timeout_s: float | None = None) -> tuple[bytes, bool]:
        """What an interactive child's stdout holds now, waiting up to ``timeout_s`` for
        something, and whether it reached EOF: read(2) on the pipe itself, so no line can
        wait in a Python buffer that select(2) does not see. Not to be mixed with
        ``readline`` on the same child."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout_s)
        if not ready:
            return b"", False
        data = os.read(fd, 1 << 16)
        return data, not data

    def stderr_since(self, offset: int) -> tuple[bytes, int]:
        """An interactive child's stderr written since byte ``offset``, and the offset after
        it, while it runs (bytes: a read may end inside a character). pread(2) reads at an
        offset without moving the file position, which the child shares (one open file
        description) and writes at."""
        if self._err_file is None:
            return b"", offset
        chunks = []
        while True:
            data = os.pread(self._err_file.fileno(), 65536, offset)
            if not data:
                break
            chunks.append(data)
            offset += len(data)
        return b"".join(chunks), offset

    def wait(self, timeout_s: float | None = None) -> int:
        return self.proc.wait(timeout=timeout_s)

    def communicate(self) -> Finished:
        """Read stdout and stderr to the end (non-interactive children); past the timeout
        the group is killed and KernelFailed raised with the stderr so far."""
        try:
            out, err = self.proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            self.kill()
            out, err = self.proc.communicate()
            raise KernelFailed(f"{self.name} timed out after {self.timeout_s:g} s (process group killed)",
                               stderr=err.decode(errors="replace")) from None
        finally:
            self.close()
        return Finished(self.argv, self.proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                        time.monotonic() - self.t0, self.cpu)

    def failure(self, what: str) -> KernelFailed | KernelUnsupported:
        """The error for a child that ended without doing its part (exit 77: unsupported)."""
        rc = self.proc.returncode
        err = self.stderr_text() or (self.proc.stderr.read().decode(errors="replace")
                                     if self.proc.stderr and not self.proc.stderr.closed else "")
        if rc == EXIT_UNSUPPORTED:
            return KernelUnsupported(err.strip().splitlines()[-1] if err.strip() else f"{self.name}: not supported here")
        if self.timed_out:
            return KernelFailed(f"{self.name} timed out after {self.timeout_s:g} s (process group killed)", err, rc)
        how = describe_exit(rc) if rc is not None else "still running"
        return KernelFailed(f"{self.name} {what} ({how})", err, rc)


def run(argv: list[str], timeout_s: float | None = DEFAULT_TIMEOUT_S, pass_fds: tuple[int, ...] = (),
        env: Mapping[str, str] | None = None) -> Finished:
    """Run a command to its end in a fresh process group (see Child)."""
    return Child(argv, timeout_s=timeout_s, pass_fds=pass_fds, env=env).communicate()


def parse_record(fin: Finished) -> dict[str, Any]:
    """The kernel protocol on a finished process: its JSON record, or the error."""
    name = Path(fin.argv[0]).name
    if fin.returncode == EXIT_UNSUPPORTED:
        reason = fin.stderr.strip().splitlines()[-1] if fin.stderr.strip() else "not supported here"
        raise KernelUnsupported(reason)
    if fin.returncode != 0:
        raise KernelFailed(f"{name} {describe_exit(fin.returncode)}", stderr=fin.stderr, returncode=fin.returncode)
    lines = [ln for ln in fin.stdout.splitlines() if ln.strip()]
    try:
        record = json.loads(lines[-1])
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except (IndexError, ValueError) as exc:
        raise KernelFailed(f"{name} printed no JSON record ({exc})", stderr=fin.stderr) from None
    return record


def run_kernel(argv: list[str], timeout: float | None = DEFAULT_TIMEOUT_S, pass_fds: tuple[int, ...] = (),
               env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run one kernel in a fresh process group and return its JSON record.

    ``timeout=None`` waits as long as it takes (a traced user command). ``pass_fds`` stay
    open in the kernel under the same numbers (the tracer hands them to its command).
    Raises KernelUnsupported (exit 77, reason from stderr) or KernelFailed (crash,
    timeout, bad output; stderr kept).
    """
    return parse_record(run(argv, timeout, pass_fds, env))
