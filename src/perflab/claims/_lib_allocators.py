"""lib.allocator-scaling's pieces apart from the claim: which allocators this host has
(read by the plan, with ldconfig, and recorded as facts), the thread counts swept, and
the scaling ratio, round by round (pure)."""

from __future__ import annotations

import math
import os
import re
import subprocess
from typing import Sequence

from perflab.decide import blocked
from perflab.observe.optional import hidden

ALLOCATORS = {  # name -> (sonames to look for, Debian package that brings it)
    "jemalloc": (("libjemalloc.so.2", "libjemalloc.so"), "libjemalloc2"),
    "tcmalloc": (("libtcmalloc_minimal.so.4", "libtcmalloc.so.4", "libtcmalloc_minimal.so"), "libtcmalloc-minimal4"),
    "mimalloc": (("libmimalloc.so.2", "libmimalloc.so.2.0", "libmimalloc.so"), "libmimalloc2.0"),
}
LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib",
            "/lib64", "/lib")


def _ldconfig() -> dict[str, str]:
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[str, str] = {}
    # "libjemalloc.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/libjemalloc.so.2": 64-bit
    # entries first (a 32-bit library would not load, and dladdr would show it)
    lines = sorted(out.splitlines(), key=lambda ln: "64" not in ln.split("=>")[0])
    for line in lines:
        m = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
        if m:
            found.setdefault(m.group(1), m.group(3))
    return found


def find_allocators() -> tuple[dict[str, str], dict[str, str]]:
    """({name: library path} found on this host, {name: apt package} for the others).
    Host I/O (ldconfig, the library directories): for the plan only."""
    cache = _ldconfig()
    found, missing = {}, {}
    for name, (sonames, package) in ALLOCATORS.items():
        if hidden(name):  # PERFLAB_WITHOUT: as on a host without it
            missing[name] = package
            continue
        path = next((cache[s] for s in sonames if s in cache), None)
        if path is None:
            path = next((os.path.join(d, s) for s in sonames for d in LIB_DIRS if os.path.exists(os.path.join(d, s))), None)
        if path:
            found[name] = os.path.realpath(path)
        else:
            missing[name] = package
    return found, missing


def thread_counts(cores: int) -> tuple[int, ...]:
    """1, 2, 4, ... up to 2 x cores, with the core count itself included."""
    xs, t = {1, cores, 2 * cores}, 2
    while t < 2 * cores:
        xs.add(t)
        t *= 2
    return tuple(sorted(xs))


def same_lib(got: str, want: str | None) -> bool:
    """malloc resolved (dladdr, in the measured process) into the library meant to serve
    it. Read from each kernel record as it is taken, not by the rule."""
    if want is None:  # glibc: malloc must resolve into libc itself
        return bool(re.search(r"/libc(-[0-9.]+)?\.so", got))
    return os.path.realpath(got) == want or os.path.basename(os.path.realpath(got)) == os.path.basename(want)


def scaling_estimate(one: Sequence[float], many: Sequence[float], g_one: Sequence[float],
                     g_many: Sequence[float], conf: float) -> tuple[float, float, float]:
    """(value, lo, hi) of [many / one] / [glibc's many / one], round by round (the four
    points of a round measured within seconds of each other), across rounds
    (decide/blocked.py): a slow stretch that hits a round hits all four alike."""
    own = dict(zip(*_round_logs(many, one)))
    base = dict(zip(*_round_logs(g_many, g_one)))
    per_round = [own[r] - base[r] for r in own.keys() & base.keys()]
    est = blocked.exp_estimate(blocked.location_ci(per_round, conf))
    return est.value, est.lo, est.hi


def _round_logs(num: Sequence[float], den: Sequence[float]) -> tuple[list, list[float]]:
    """Per round present on both sides: (rounds, ln(geometric mean num / geometric mean den))."""
    a, b = blocked.by_round(num), blocked.by_round(den)
    rounds = sorted(a.keys() & b.keys(), key=str)
    return rounds, [math.fsum(map(math.log, a[r])) / len(a[r]) - math.fsum(map(math.log, b[r])) / len(b[r])
                    for r in rounds]
