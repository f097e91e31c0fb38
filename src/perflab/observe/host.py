"""Machine facts recorded with every run (asv's machine.json, pyperf's metadata).

Every reader tolerates a missing file: a fact that cannot be read is recorded as None
("unavailable"), never as 0.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import platform
import resource
from pathlib import Path
from typing import Any

# Capability numbers from include/uapi/linux/capability.h (the ones perflab cares about).
_CAPS = {
    12: "CAP_NET_ADMIN",
    19: "CAP_SYS_PTRACE",
    21: "CAP_SYS_ADMIN",
    24: "CAP_SYS_RESOURCE",
    38: "CAP_PERFMON",
    39: "CAP_BPF",
}


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _selected(text: str | None) -> str | None:
    """'always [madvise] never' -> 'madvise' (sysfs multiple-choice files)."""
    if not text:
        return None
    for word in text.split():
        if word.startswith("["):
            return word.strip("[]")
    return text


def cpu_model(cpuinfo: str | None) -> str | None:
    for line in (cpuinfo or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def caches(sysfs_cpu: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> list[dict[str, Any]]:
    """Cache levels of CPU 0 from sysfs (Documentation/ABI/testing/sysfs-devices-system-cpu)."""
    out = []
    for index in sorted(sysfs_cpu.glob("index*")):
        level, ctype, size = (_read(index / f) for f in ("level", "type", "size"))
        if level and size:
            out.append({"level": int(level), "type": ctype, "size": size})
    return out


def parse_capeff(status: str | None) -> list[str] | None:
    for line in (status or "").splitlines():
        if line.startswith("CapEff:"):
            mask = int(line.split()[1], 16)
            return [name for bit, name in sorted(_CAPS.items()) if mask >> bit & 1]
    return None


def virtualization(cpuinfo: str | None) -> str | None:
    vendor = _read("/sys/class/dmi/id/sys_vendor")
    product = _read("/sys/class/dmi/id/product_name")
    hypervisor = " hypervisor" in (cpuinfo or "") or "hypervisor " in (cpuinfo or "")
    if vendor or product:
        label = " ".join(x for x in (vendor, product) if x)
        return f"vm ({label})" if hypervisor else label
    return "vm" if hypervisor else "none detected"


def collect() -> dict[str, Any]:
    cpuinfo = _read("/proc/cpuinfo")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    uname = os.uname()
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        glibc = None
    paranoid = _read("/proc/sys/kernel/perf_event_paranoid")
    facts: dict[str, Any] = {
        "hostname": uname.nodename,
        "cpu_model": cpu_model(cpuinfo),
        "cores_online": os.cpu_count(),
        "cpus_allowed": sorted(os.sched_getaffinity(0)),
        "caches": caches(),
        "kernel": f"{uname.sysname} {uname.release} {uname.machine}",
        "glibc": glibc,
        "python": platform.python_version(),
        "virtualization": virtualization(cpuinfo),
        "root": os.geteuid() == 0,
        "capabilities": parse_capeff(_read("/proc/self/status")),
        "perf_event_paranoid": int(paranoid) if paranoid and paranoid.lstrip("-").isdigit() else None,
        "thp": _selected(_read("/sys/kernel/mm/transparent_hugepage/enabled")),
        "clocksource": _read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        "rlimit_nofile": {"soft": soft, "hard": hard},
        "mem_available_bytes": mem_available(_read("/proc/meminfo")),
        # for perflab compare (results/compare.py): which machine, and its CPU mitigations
        "machine": machine_id(_read("/etc/machine-id")),
        "mitigations": mitigations(),
    }
    return facts


# a fixed, application-specific key for machine_id: 128 random bits chosen once for perflab
_MACHINE_APP_ID = bytes.fromhex("5c1e0d8f6b2a4f37a9e4d1b07c3f2e61")


def machine_id(text: str | None) -> str | None:
    """This machine, as an id that cannot be turned back into /etc/machine-id: machine-id(5)
    says to hash it with a keyed hash and an application-specific key rather than show it;
    this is sd_id128_get_machine_app_specific(3)'s HMAC-SHA256 (key: the machine id,
    message: the application id), its first 128 bits in hex. None without the file."""
    try:
        key = bytes.fromhex((text or "").strip())
    except ValueError:
        return None
    if len(key) != 16:
        return None
    return hmac.new(key, _MACHINE_APP_ID, hashlib.sha256).hexdigest()[:32]


def mitigations(root: Path = Path("/sys/devices/system/cpu/vulnerabilities")) -> dict[str, str] | None:
    """Each CPU vulnerability and the kernel's mitigation of it, as sysfs states them
    (Documentation/ABI/testing/sysfs-devices-system-cpu, "vulnerabilities"); None where
    the kernel has no such directory."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return None
    out = {}
    for name in names:
        text = _read(root / name)
        if text is not None:
            out[name] = text
    return out


def mem_available(meminfo: str | None) -> int | None:
    """MemAvailable of /proc/meminfo in bytes (proc(5): the kernel's estimate of memory
    available for starting new applications without swapping); None if absent."""
    for line in (meminfo or "").splitlines():
        if line.startswith("MemAvailable:"):
            parts = line.split()
            try:
                return int(parts[1]) * (1024 if len(parts) > 2 and parts[2] == "kB" else 1)
            except (IndexError, ValueError):
                return None
    return None
