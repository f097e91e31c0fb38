"""Live subjects for structural claims: a kernel started as a process to be looked at
(it prints one JSON line describing itself, then blocks until stdin reaches EOF), and
the wait until every task it has is where the claim expects it.

Used by space.user-layout, task.thread-is-task and task.threads-share. The subject
is an engine.process.Child: its own process group, a parent-death signal, a timeout;
leaving ``subject`` closes its stdin (it exits) and kills the group if it does not exit,
so nothing outlives the claim.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from perflab.core.errors import KernelFailed
from perflab.engine.process import Child

START_TIMEOUT_S = 30.0
LIFE_TIMEOUT_S = 300.0  # a subject is looked at for seconds: past this its group is killed


@contextmanager
def subject(argv: list[str], timeout_s: float = START_TIMEOUT_S) -> Iterator[tuple[Child, dict[str, Any]]]:
    """Start a subject kernel (a bare name is a perflab kernel) and yield (child, its JSON
    line); on exit close its stdin and reap it (the group is killed if it hangs)."""
    with Child(argv, timeout_s=LIFE_TIMEOUT_S, interactive=True) as child:
        line = child.readline(timeout_s)
        if not line:
            try:
                child.wait(timeout_s)
            except subprocess.TimeoutExpired:  # still running and silent: failure() says so
                pass
            raise child.failure("printed nothing")
        try:
            info = json.loads(line)
        except ValueError:
            raise KernelFailed(f"{argv[0]} printed no JSON: {line[:200]!r}") from None
        yield child, info


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
