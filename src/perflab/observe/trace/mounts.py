"""Where a filesystem type is mounted, from /proc/self/mountinfo (a pure parser)."""

from __future__ import annotations

import re
from pathlib import Path


def mount_points(fstype: str, mountinfo: str | None = None) -> list[Path]:
    """Mount points of `fstype`, in mountinfo order. Lines are (proc(5)):
    ``id parent major:minor root mountpoint options [optional...] - fstype source opts``;
    the mount point escapes space, tab, newline and backslash in octal (``\\040``)."""
    text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
    points = []
    for line in text.splitlines():
        pre, sep, post = line.partition(" - ")
        if sep and post.split(" ", 1)[0] == fstype:
            raw = pre.split(" ")[4]
            points.append(Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), raw)))
    return points
