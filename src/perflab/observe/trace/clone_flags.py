"""Decode clone(2)/clone3(2) flags into names (pure functions).

Values from include/uapi/linux/sched.h. clone's first argument carries the exit signal
in its low byte (CSIGNAL); clone3 has a separate exit_signal field and uses that byte
for flags (CLONE_NEWTIME, 0x80, is valid only there and in unshare(2)).
"""

from __future__ import annotations

import signal

CSIGNAL = 0x000000FF

FLAGS: dict[str, int] = {
    "CLONE_NEWTIME": 0x00000080,  # clone3 only: shares the CSIGNAL byte
    "CLONE_VM": 0x00000100,
    "CLONE_FS": 0x00000200,
    "CLONE_FILES": 0x00000400,
    "CLONE_SIGHAND": 0x00000800,
    "CLONE_PIDFD": 0x00001000,
    "CLONE_PTRACE": 0x00002000,
    "CLONE_VFORK": 0x00004000,
    "CLONE_PARENT": 0x00008000,
    "CLONE_THREAD": 0x00010000,
    "CLONE_NEWNS": 0x00020000,
    "CLONE_SYSVSEM": 0x00040000,
    "CLONE_SETTLS": 0x00080000,
    "CLONE_PARENT_SETTID": 0x00100000,
    "CLONE_CHILD_CLEARTID": 0x00200000,
    "CLONE_DETACHED": 0x00400000,
    "CLONE_UNTRACED": 0x00800000,
    "CLONE_CHILD_SETTID": 0x01000000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
    "CLONE_IO": 0x80000000,
    "CLONE_CLEAR_SIGHAND": 0x100000000,  # clone3 only
    "CLONE_INTO_CGROUP": 0x200000000,  # clone3 only
}


def flag_names(flags: int, syscall: str) -> tuple[str, ...]:
    """Names of the flag bits set, in bit order; unknown bits as hex.

    For ``clone`` the CSIGNAL byte is the exit signal and is left out (see
    :func:`exit_signal_of`); for ``clone3`` every bit is a flag.
    """
    if syscall not in ("clone", "clone3"):
        raise ValueError(f"not a clone system call: {syscall!r}")
    rest = flags & ~CSIGNAL if syscall == "clone" else flags
    names = []
    for name, bit in FLAGS.items():
        if rest & bit:
            names.append(name)
            rest &= ~bit
    bit = 1
    while rest:
        if rest & bit:
            names.append(hex(bit))
            rest &= ~bit
        bit <<= 1
    return tuple(names)


def exit_signal_of(flags: int, syscall: str, exit_signal: int | None = None) -> int:
    """clone: the CSIGNAL byte of flags; clone3: the separate exit_signal field."""
    if syscall == "clone":
        return flags & CSIGNAL
    if exit_signal is None:
        raise ValueError("clone3 carries its exit signal in struct clone_args.exit_signal")
    return exit_signal


def signal_name(num: int) -> str | None:
    """'SIGCHLD' for 17; None for 0 (no signal: a thread); the number for others."""
    if num == 0:
        return None
    try:
        return signal.Signals(num).name
    except ValueError:
        return str(num)


def describe(flags: int, syscall: str, exit_signal: int | None = None) -> str:
    """'CLONE_VM|CLONE_FS|...|SIGCHLD', as strace writes them."""
    parts = list(flag_names(flags, syscall))
    sig = signal_name(exit_signal_of(flags, syscall, exit_signal))
    if sig:
        parts.append(sig)
    return "|".join(parts) or "0"
