"""Find and run native kernels: argv in, one JSON record out (docs/kernels.md).

Each kernel runs as the leader of its own process group (a new session). On timeout,
interrupt or any other exit path the whole group is killed with SIGKILL, so helpers a
kernel forked (ping-pong partners, grandchildren) cannot outlive it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from perflab.core.errors import EnvironmentRefused, KernelFailed, KernelUnsupported

EXIT_UNSUPPORTED = 77  # automake's "skipped" convention, used by every kernel
DEFAULT_TIMEOUT_S = 60.0


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


def resolve(argv: list[str]) -> list[str]:
    """A bare name is a perflab kernel; a path (tests, third-party claims) is used as is."""
    head = argv[0]
    if "/" in head:
        return list(argv)
    return [str(kernel_path(head)), *argv[1:]]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:  # real-time signals have no enum member
        return f"{num}"


def run_kernel(
    argv: list[str], timeout: float | None = DEFAULT_TIMEOUT_S, pass_fds: tuple[int, ...] = ()
) -> dict[str, Any]:
    """Run one kernel in a fresh process group and return its JSON record.

    ``timeout=None`` waits as long as it takes (a traced user command). ``pass_fds`` stay
    open in the kernel under the same numbers (the tracer hands them to its command).
    Raises KernelUnsupported (exit 77, reason from stderr) or KernelFailed (crash,
    timeout, bad output; stderr kept).
    """
    cmd = resolve(argv)
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            text=True,
            pass_fds=pass_fds,
        )
    except OSError as exc:
        raise KernelFailed(f"cannot start {cmd[0]}: {exc.strerror}") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        raise KernelFailed(
            f"{Path(cmd[0]).name} timed out after {timeout:g} s (process group killed)",
            stderr=err,
        ) from None
    finally:
        # Also on success, exceptions and KeyboardInterrupt: nothing of the group survives.
        _kill_group(proc)
        if proc.poll() is None:
            proc.wait()
    name = Path(cmd[0]).name
    if proc.returncode == EXIT_UNSUPPORTED:
        reason = err.strip().splitlines()[-1] if err.strip() else "not supported here"
        raise KernelUnsupported(reason)
    if proc.returncode != 0:
        how = f"killed by signal {_signame(-proc.returncode)}" if proc.returncode < 0 else f"exited {proc.returncode}"
        raise KernelFailed(f"{name} {how}", stderr=err, returncode=proc.returncode)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    try:
        record = json.loads(lines[-1])
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except (IndexError, ValueError) as exc:
        raise KernelFailed(f"{name} printed no JSON record ({exc})", stderr=err) from None
    return record
