"""Is the process that ran a run still there? (for runs left 'running' by kill -9)

A process is named by its PID, its start time (field 22 of /proc/PID/stat, in clock
ticks since boot: a reused PID has another) and the boot it ran in
(/proc/sys/kernel/random/boot_id changes at every boot). proc(5).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

PROC = "/proc"


@dataclass(frozen=True)
class ProcessId:
    pid: int
    start: int | None
    boot_id: str | None
    hostname: str


def start_time(pid: int, proc: str = PROC) -> int | None:
    """Field 22 (starttime) of /proc/PID/stat; None if the process is not there. The
    fields after comm are counted from its closing parenthesis (comm may hold spaces)."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    try:
        return int(text.rsplit(b")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def boot_id(proc: str = PROC) -> str | None:
    try:
        with open(f"{proc}/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None


def this_process() -> ProcessId:
    pid = os.getpid()
    return ProcessId(pid, start_time(pid), boot_id(), socket.gethostname())


def gone(pid: int | None, start: int | None, boot: str | None, hostname: str | None, here: ProcessId,
         proc: str = PROC) -> bool:
    """True when the run's process is certainly gone. A run recorded on another machine
    (an imported or shared database), or before runs recorded their process, is never
    declared gone: nothing here can tell."""
    if pid is None or start is None or (hostname is not None and hostname != here.hostname):
        return False
    if boot is not None and here.boot_id is not None and boot != here.boot_id:
        return True  # the machine rebooted since
    return start_time(pid, proc) != start
