"""Live subjects for structural claims: a kernel started as a process to be looked at
(it prints one JSON line describing itself, then blocks until stdin reaches EOF), and
the wait until every task it has is where the claim expects it.

Used by space.user-layout, task.thread-is-task and task.threads-share. The subject
runs in its own session; stop() closes its stdin (it exits), and kills its process group
if it does not exit within the timeout, so nothing outlives the claim.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from perflab.engine import process
from perflab.core.errors import KernelFailed, KernelUnsupported

START_TIMEOUT_S = 30.0


@contextmanager
def subject(argv: list[str], timeout_s: float = START_TIMEOUT_S) -> Iterator[tuple[subprocess.Popen, dict[str, Any]]]:
    """Start a subject kernel (a bare name is a perflab kernel) and yield (process,
    its JSON line); on exit close its stdin and reap it (the group is killed if it hangs)."""
    cmd = process.resolve(argv)
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as exc:
        raise KernelFailed(f"cannot start {cmd[0]}: {exc.strerror}") from None
    try:
        line = _readline(proc, timeout_s)
        if not line:
            proc.wait(timeout=timeout_s)
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            if proc.returncode == process.EXIT_UNSUPPORTED:
                raise KernelUnsupported(err.strip() or f"{argv[0]}: not supported here")
            raise KernelFailed(f"{argv[0]} printed nothing (exit {proc.returncode})", err, proc.returncode)
        try:
            info = json.loads(line)
        except ValueError:
            raise KernelFailed(f"{argv[0]} printed no JSON: {line[:200]!r}") from None
        yield proc, info
    finally:
        stop(proc)


def _readline(proc: subprocess.Popen, timeout_s: float) -> str:
    """The subject's first line, or '' if it exits or stays silent for timeout_s."""
    import select

    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    if not ready:
        return ""
    return proc.stdout.readline().decode(errors="replace")


def stop(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    try:
        if proc.stdin:
            proc.stdin.close()  # EOF: the subject exits
    except OSError:
        pass
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
    for f in (proc.stdout, proc.stderr):
        if f:
            f.close()


def syscall_state(pid: int, tid: int) -> str | None:
    """First word of /proc/PID/task/TID/syscall: 'running', or the number of the system
    call the task is blocked in (proc(5)); None if unreadable."""
    try:
        with open(f"/proc/{pid}/task/{tid}/syscall") as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return None


def wait_until(pid: int, ready: Callable[[dict[int, str | None]], bool], timeout_s: float = 5.0) -> bool:
    """Poll the tasks of pid until ready({tid: syscall state}) or the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            return False
        states = {t: syscall_state(pid, t) for t in tids}
        if ready(states):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)


def all_blocked(states: dict[int, str | None]) -> bool:
    return all(s is not None and s != "running" for s in states.values())
