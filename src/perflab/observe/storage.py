"""Where the cache.* test files live, and what device is behind them.

The scratch directory is $PERFLAB_SCRATCH_DIR, else $XDG_CACHE_HOME/perflab, else
~/.cache/perflab: the same rule as ``find_scratch()`` in kernels/pagecache.c, which
creates it, refuses tmpfs/ramfs (statfs(2)) and exits 77 with the reason. This module
only describes it for the evidence: which block device backs it (sysfs), and whether
that device is virtual, so that a "device" read may really be served from the host's
page cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SYS_DEV_BLOCK = Path("/sys/dev/block")

# Signs of a virtual disk in its sysfs path or its model string.
VIRTUAL_PATH = {"virtio": "virtio", "/xen": "Xen", "vbd-": "Xen", "vmbus": "Hyper-V"}
VIRTUAL_MODEL = ("QEMU", "VBOX", "VMware", "Virtual disk", "Amazon Elastic Block Store",
                 "PersistentDisk", "Google", "Microsoft Virtual")


def scratch_dir() -> tuple[Path, str]:
    env = os.environ.get("PERFLAB_SCRATCH_DIR", "")
    if env:
        return Path(env), "PERFLAB_SCRATCH_DIR"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg.startswith("/"):
        return Path(xdg) / "perflab", "XDG_CACHE_HOME"
    return Path.home() / ".cache" / "perflab", "default (~/.cache/perflab)"


def _read(p: Path) -> str | None:
    try:
        return p.read_text().strip()
    except OSError:
        return None


def classify(sysfs_path: str, model: str | None) -> str | None:
    """The kind of virtual disk the sysfs path or model names, or None (pure)."""
    for needle, kind in VIRTUAL_PATH.items():
        if needle in sysfs_path.lower():
            return kind
    for needle in VIRTUAL_MODEL:
        if model and needle.lower() in model.lower():
            return model
    return None


def backing_device(path: Path, sys_dev_block: Path = SYS_DEV_BLOCK) -> dict[str, Any]:
    """The block device under ``path`` (st_dev -> /sys/dev/block/MAJ:MIN), whole disk
    rather than partition, with its sysfs path, rotational flag and model."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return {"device": None, "reason": f"stat {path}: {exc.strerror}"}
    majmin = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    link = sys_dev_block / majmin
    if not link.exists():
        return {"device": None, "dev": majmin,
                "reason": "no block device behind it (a network, overlay or anonymous filesystem)"}
    real = link.resolve()
    if (real / "partition").exists():  # a partition's parent directory is its disk
        real = real.parent
    name = real.name
    model = _read(real / "device" / "model") or _read(real / "device" / "vendor")
    slaves = sorted(p.name for p in (real / "slaves").glob("*")) if (real / "slaves").is_dir() else []
    out: dict[str, Any] = {
        "device": name,
        "dev": majmin,
        "sysfs": str(real),
        "model": model,
        "rotational": _read(real / "queue" / "rotational") == "1",
    }
    if slaves:
        out["stacked_on"] = slaves  # device-mapper, md: the disks are below
    if name.startswith("loop"):
        out["virtual"] = "loop device (a file on another filesystem)"
    else:
        out["virtual"] = classify(str(real), model)
    return out


def hypervisor() -> bool:
    """The CPU runs under a hypervisor (the 'hypervisor' flag of /proc/cpuinfo)."""
    info = _read(Path("/proc/cpuinfo")) or ""
    return any(line.startswith("flags") and " hypervisor" in line for line in info.splitlines())


def describe() -> dict[str, Any]:
    """Evidence: the scratch directory and the device its reads go to."""
    d, source = scratch_dir()
    dev = backing_device(d) if d.exists() else {"device": None, "reason": f"{d} does not exist yet"}
    hv = hypervisor()
    out: dict[str, Any] = {"scratch_dir": str(d), "chosen_by": source, **dev, "hypervisor": hv}
    if dev.get("virtual") or hv:
        what = f"{dev.get('device') or 'the device'} is virtual ({dev.get('virtual') or 'under a hypervisor'})"
        out["note"] = (f"{what}: a read that leaves this kernel may be served from the host's page cache, "
                       "so 'device' latency here can be far below a real disk's")
    return out
