"""lib.allocator-scaling's pieces apart from the claim: which allocators this host has
(read by the plan, with ldconfig, and recorded as facts), the thread counts swept, and
the scaling ratio's bootstrap (pure)."""

from __future__ import annotations

import math
import os
import random
import re
import subprocess
from statistics import median

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


def scaling_estimate(one: list[float], many: list[float], g_one: list[float], g_many: list[float],
                     conf: float, rng: random.Random, n_boot: int) -> tuple[float, float, float]:
    """(value, lo, hi): [median(many)/median(one)] / [glibc's same], percentile bootstrap
    resampling the four sets of per-process throughputs independently."""
    def stat(a, b, c, d):
        return (median(b) / median(a)) / (median(d) / median(c))

    value = stat(one, many, g_one, g_many)
    reps = []
    for _ in range(n_boot):
        reps.append(stat(*[[rng.choice(s) for _ in s] for s in (one, many, g_one, g_many)]))
    reps.sort()
    alpha = (1 - conf) / 2
    lo = reps[max(0, int(math.floor(alpha * (n_boot - 1))))]
    hi = reps[min(n_boot - 1, int(math.ceil((1 - alpha) * (n_boot - 1))))]
    return value, lo, hi
