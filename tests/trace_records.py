"""Tracer kernel records for unit tests (docs/kernels.md, "tracer"), shaped like real
ones: a good trace of the control workload by default; keywords break one thing."""

from __future__ import annotations

import json

THREAD = 0x3D0F00  # glibc 2.36 pthread_create's clone3 flags (CLONE_VM|...|CHILD_CLEARTID)
FORK = 0x1200011  # glibc fork: CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD
WORKLOAD_STDOUT = json.dumps({"kernel": "trace_control", "variant": "control", "getppid_total": 29}) + "\n"


def clone(syscall: str, flags: int, sig: int, readable: bool = True, in_region: bool = True) -> dict:
    return {"syscall": syscall, "flags": flags, "exit_signal": sig, "count": 1,
            "in_region": in_region, "readable": readable}


def record(mechanism: str = "bpf", total: int = 29, region: int = 23, markers: int = 2,
           clones=None, exit_status: int = 0, lost: int = 0) -> dict:
    if clones is None:
        clones = [clone("clone3", THREAD, 0), clone("clone", FORK, FORK & 0xFF)]
    counter = {"value": 1, "source": "perf"}
    return {
        "kernel": "tracer", "mechanism": mechanism, "path": "/x/trace_control",
        "argv": ["/x/trace_control", "--variant=control"], "exec_error": None,
        "exit_status": exit_status, "exit_signal": None, "elapsed_ns": 1000,
        "syscalls": {"execve": 1, "getppid": total, "getpgrp": markers, "clone3": 1, "clone": 1},
        "other_abi": 0, "lost_samples": lost,
        "region": {"marker": "getpgrp", "markers": markers, "syscalls": {"getppid": region}},
        "clone_calls": clones, "clone_kinds_lost": 0,
        "counters": {k: counter for k in ("faults_min", "faults_maj", "context_switches",
                                           "cpu_migrations", "task_clock_ns")},
        "counters_note": None,
    }
