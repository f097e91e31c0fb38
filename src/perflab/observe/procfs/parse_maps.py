"""Pure parsers of /proc/PID/maps and smaps (proc(5)): one Mapping per line, with RSS and
PSS where smaps gives them."""

from __future__ import annotations

import re
from typing import NamedTuple

from perflab.observe.procfs.parse import ProcParseError, text_of

# ---- /proc/PID/maps and smaps -------------------------------------------------------

class Mapping(NamedTuple):
    """One line of /proc/PID/maps (proc(5)); rss/pss in bytes when read from smaps."""

    start: int
    end: int
    perms: str
    offset: int
    dev: str  # "major:minor", hex
    inode: int
    path: str  # "" for anonymous; "[heap]", "[stack]", "[vdso]"... for special ones
    rss_bytes: int | None = None
    pss_bytes: int | None = None

    @property
    def size_bytes(self) -> int:
        return self.end - self.start


# show_map_vma() in fs/proc/task_mmu.c: "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu "
# then padding and the path (newlines in paths are escaped as \012 by seq_file_path).
_MAP_LINE = re.compile(
    r"^([0-9a-f]+)-([0-9a-f]+) ([-rwxsp]{4}) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+) ?\s*(.*)$"
)


def _mapping(m: re.Match, rss_kib: int | None = None, pss_kib: int | None = None) -> Mapping:
    return Mapping(
        int(m[1], 16), int(m[2], 16), m[3], int(m[4], 16), m[5], int(m[6]), m[7],
        None if rss_kib is None else rss_kib * 1024,
        None if pss_kib is None else pss_kib * 1024,
    )


def parse_maps(data: bytes | str) -> list[Mapping]:
    out = []
    for line in text_of(data).splitlines():
        m = _MAP_LINE.match(line)
        if not m:
            raise ProcParseError(f"maps: unexpected line {line[:80]!r}")
        out.append(_mapping(m))
    return out


# The smaps header is a maps line; show_smap() then prints Size, KernelPageSize,
# MMUPageSize, and __show_smap() starts with Rss and Pss, always in this order. This
# fast path matches all of it in one pass of the C regex engine (a 10,000-thread
# process has a 14 MB smaps); the generic parser below is its fallback and reference.
_SMAPS_FAST = re.compile(
    rb"^([0-9a-f]+)-([0-9a-f]+) ([-rwxsp]{4}) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+) ?[ \t]*(.*)\n"
    rb"Size: .*\nKernelPageSize: .*\nMMUPageSize: .*\nRss: +(\d+) kB\nPss: +(\d+) kB$",
    re.M,
)


def parse_smaps(data: bytes | str) -> list[Mapping]:
    """/proc/PID/smaps (proc(5), Documentation/filesystems/proc.rst): every mapping
    with its Rss and Pss in bytes."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
    found = _SMAPS_FAST.findall(raw)
    if len(found) == raw.count(b"\nRss:"):
        dec = text_of
        return [
            Mapping(int(a, 16), int(b, 16), p.decode(), int(o, 16), d.decode(), int(i),
                    dec(path), int(rss) * 1024, int(pss) * 1024)
            for a, b, p, o, d, i, path, rss, pss in found
        ]
    return parse_smaps_generic(raw)


def parse_smaps_generic(data: bytes | str) -> list[Mapping]:
    """Line by line: a header line starts with a lower-case hex address, a field line
    with a capitalised 'Name:'."""
    out: list[Mapping] = []
    header = None
    fields: dict[str, int] = {}

    def flush():
        if header is not None:
            if "Rss" not in fields or "Pss" not in fields:
                raise ProcParseError(f"smaps: mapping {header[0]}-{header[1]} has no Rss/Pss")
            out.append(_mapping(header, fields["Rss"], fields["Pss"]))

    for line in text_of(data).splitlines():
        m = _MAP_LINE.match(line)
        if m:
            flush()
            header, fields = m, {}
            continue
        key, sep, value = line.partition(":")
        if not sep or header is None:
            raise ProcParseError(f"smaps: unexpected line {line[:80]!r}")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[key] = int(parts[0])
    flush()
    return out
