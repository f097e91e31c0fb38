"""Classify the mappings of a user address space (pure: parsed maps in, labels out).

Thread stacks are found from each thread's user stack pointer (the mapping that holds
it), never from sizes: glibc gives a thread whatever stack pthread_attr_setstacksize(3)
asked for. Where the kernel does not report a stack pointer (a running task), the
"[stack:TID]" labels of kernels before 4.5 are used if present, else the thread's stack
is reported as unknown.
"""

from __future__ import annotations

import bisect
import os
import re
from typing import Iterable, NamedTuple

from perflab.observe.procfs.parse_maps import Mapping

KINDS = (
    "executable", "library", "heap", "main_stack", "thread_stack", "stack_guard",
    "anonymous", "file", "vdso", "vvar", "vsyscall", "special",
)

# Names the kernel prints in place of a path (proc(5) /proc/PID/maps;
# fs/proc/task_mmu.c, arch vdso code): vvar_vclock is 6.13+.
_SPECIAL = {
    "[heap]": "heap",
    "[stack]": "main_stack",
    "[vdso]": "vdso",
    "[vvar]": "vvar",
    "[vvar_vclock]": "vvar",
    "[vsyscall]": "vsyscall",
}
_LEGACY_THREAD_STACK = re.compile(r"^\[stack:(\d+)\]$")  # Linux < 4.5
_SHARED_OBJECT = re.compile(r"\.so(\.[0-9][0-9.]*)?$")
DELETED = " (deleted)"


class Classified(NamedTuple):
    mapping: Mapping
    kind: str
    library: str | None = None  # the library's path, for kind == "library"
    tids: tuple[int, ...] = ()  # the threads whose stack this is (or guards)
    name: str | None = None  # [anon:NAME] (prctl PR_SET_VMA_ANON_NAME)
    deleted: bool = False


def strip_deleted(path: str) -> tuple[str, bool]:
    if path.endswith(DELETED):
        return path[: -len(DELETED)], True
    return path, False


def is_file_backed(m: Mapping) -> bool:
    return m.inode != 0 or (m.path.startswith("/") and not m.path.startswith("/["))


def library_paths(mappings: Iterable[Mapping], exe_path: str | None) -> set[str]:
    """Files mapped as shared objects: named like one (libc.so.6, x.cpython-311.so) or
    mapped executable (a dlopen()ed object with an odd name), other than the program."""
    libs = set()
    for m in mappings:
        if not is_file_backed(m):
            continue
        path, _ = strip_deleted(m.path)
        if path == exe_path:
            continue
        if _SHARED_OBJECT.search(os.path.basename(path)) or "x" in m.perms:
            libs.add(path)
    return libs


def find_stacks(mappings: list[Mapping], sps: dict[int, int | None]) -> dict[int, int | None]:
    """tid -> index of the mapping holding that thread's stack pointer (None if unknown
    or outside every mapping). `mappings` are sorted by address, as maps prints them."""
    starts = [m.start for m in mappings]
    out: dict[int, int | None] = {}
    for tid, sp in sps.items():
        out[tid] = None
        if sp is None:
            continue
        i = bisect.bisect_right(starts, sp) - 1
        if i >= 0 and mappings[i].start <= sp < mappings[i].end:
            out[tid] = i
    return out


def classify(
    mappings: list[Mapping],
    exe_path: str | None,
    sps: dict[int, int | None],
    exe_id: tuple[str, int] | None = None,
) -> tuple[list[Classified], dict[int, int | None]]:
    """Label every mapping. `exe_path` is readlink(/proc/PID/exe) (without " (deleted)"),
    `exe_id` its ("major:minor" hex, inode) when known; `sps` maps each TID to its user
    stack pointer (None if the kernel did not report one).

    Returns the labels and tid -> index of its stack mapping (None if not found)."""
    exe_path = strip_deleted(exe_path)[0] if exe_path else None
    libs = library_paths(mappings, exe_path)
    stack_of = find_stacks(mappings, sps)
    holders: dict[int, list[int]] = {}
    for tid, i in stack_of.items():
        if i is not None:
            holders.setdefault(i, []).append(tid)
    out: list[Classified] = []
    for i, m in enumerate(mappings):
        path = m.path
        if not path:  # most mappings of a many-threaded process: stacks and guards
            tids = holders.get(i)
            out.append(Classified(m, "thread_stack", tids=tuple(sorted(tids))) if tids
                       else Classified(m, "anonymous"))
            continue
        path, deleted = strip_deleted(path)
        kind = _SPECIAL.get(path)
        name = None
        tids: tuple[int, ...] = ()
        library = None
        if kind is None:
            legacy = _LEGACY_THREAD_STACK.match(path)
            if legacy:
                kind, tids = "thread_stack", (int(legacy[1]),)
            elif path.startswith(("[anon:", "[anon_shmem:")):
                kind, name = "anonymous", path[path.index(":") + 1:-1]
            elif path.startswith("["):
                kind = "special"
            elif is_file_backed(m):
                if path == exe_path or (exe_id is not None and (m.dev, m.inode) == exe_id):
                    kind = "executable"
                elif path in libs:
                    kind, library = "library", path
                else:
                    kind = "file"
            else:
                kind = "anonymous"
        # The mapping holding a thread's stack pointer is its stack, if it is anonymous
        # memory (a pointer into the heap or a file is reported, not relabelled).
        held = holders.get(i)
        if held and kind in ("anonymous", "thread_stack", "main_stack"):
            tids = tuple(sorted(set(tids) | set(held)))
            if kind == "anonymous":
                kind = "thread_stack"
        out.append(Classified(m, kind, library, tids, name, deleted))

    # Legacy labels stand in for threads with no reported stack pointer.
    for i, c in enumerate(out):
        if c.kind == "thread_stack" and c.mapping.path:
            for tid in c.tids:
                if stack_of.get(tid) is None and tid in sps:
                    stack_of[tid] = i
    # glibc puts a thread's guard page(s) at the low end of its stack allocation and
    # mprotect()s them PROT_NONE (nptl/allocatestack.c), a separate VMA just below.
    for i in range(len(out) - 1):
        c, above = out[i], out[i + 1]
        if (c.kind == "anonymous" and c.name is None and c.mapping.perms.startswith("---")
                and above.kind == "thread_stack"
                and c.mapping.end == above.mapping.start):
            out[i] = Classified(c.mapping, "stack_guard", None, above.tids, None, c.deleted)
    return out, stack_of


def totals(classified: list[Classified]) -> dict[str, dict[str, int]]:
    """Per kind: mappings, size_bytes, rss_bytes, pss_bytes (rss/pss only from smaps)."""
    out = {k: {"mappings": 0, "size_bytes": 0, "rss_bytes": 0, "pss_bytes": 0} for k in KINDS}
    for c in classified:
        t = out[c.kind]
        t["mappings"] += 1
        t["size_bytes"] += c.mapping.size_bytes
        t["rss_bytes"] += c.mapping.rss_bytes or 0
        t["pss_bytes"] += c.mapping.pss_bytes or 0
    return {k: v for k, v in out.items() if v["mappings"]}


def libraries(classified: list[Classified]) -> list[dict]:
    """One row per shared library: its mappings' sizes, RSS and PSS summed."""
    rows: dict[str, dict] = {}
    for c in classified:
        if c.kind != "library":
            continue
        r = rows.setdefault(c.library, {
            "path": c.library, "name": os.path.basename(c.library), "mappings": 0,
            "size_bytes": 0, "rss_bytes": 0, "pss_bytes": 0, "deleted": c.deleted})
        r["mappings"] += 1
        r["size_bytes"] += c.mapping.size_bytes
        r["rss_bytes"] += c.mapping.rss_bytes or 0
        r["pss_bytes"] += c.mapping.pss_bytes or 0
    return sorted(rows.values(), key=lambda r: -r["pss_bytes"])
