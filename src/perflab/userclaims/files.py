"""Claim files and directories of them, as claims: what ``perflab run path/to/claim.toml``,
``perflab run DIR`` and ``perflab list --claims-dir DIR`` select.

A selector is a path when it names a ``.toml`` file or holds a ``/`` (``./mine`` names a
directory even where a topic ``mine`` exists); a bare word that is not a claim id or a
topic is a path when such a directory exists. A directory contributes its ``*.toml``
files (not its subdirectories), sorted by name. Every file is read and checked before
anything runs; every problem of every file is reported at once (ClaimFileError, exit 2).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from perflab.core.claim import Claim
from perflab.core.errors import EnvironmentRefused, KernelFailed, UsageError
from perflab.core.safe import safe
from perflab.engine import process
from perflab.userclaims.build import KERNEL, claim
from perflab.userclaims.definition import Definition
from perflab.userclaims.validate import ClaimFileError, read


def looks_like_path(selector: str) -> bool:
    return selector.endswith(".toml") or os.sep in selector or (os.altsep or os.sep) in selector


def check_regex(pattern: str) -> str | None:
    """None if the kernel that will apply it (cmdtime: POSIX regcomp(3), REG_EXTENDED)
    compiles the pattern, else its reason: validated by the very code that applies it."""
    try:
        fin = process.run([KERNEL, f"--check-regex={pattern}"], timeout_s=10.0)
    except KernelFailed as exc:
        raise EnvironmentRefused(f"cannot check a regular expression with the {KERNEL} kernel: {exc}") from None
    if fin.returncode == 0:
        return None
    lines = fin.stderr.strip().splitlines()
    return lines[-1].rsplit(": ", 1)[-1] if lines else f"{KERNEL} exited {fin.returncode}"


def files_of(selector: str) -> list[Path]:
    path = Path(selector)
    if path.is_dir():
        found = sorted(p for p in path.glob("*.toml") if p.is_file())
        if not found:
            raise UsageError(f"no claim files (*.toml) in {safe(selector)}")
        return found
    if path.is_file():
        return [path]
    raise UsageError(f"no such claim file or directory: {safe(selector)}")


def definitions(selectors: Iterable[str]) -> dict[str, list[Definition]]:
    """Every file's Definition by the selector that named it, each file once; every
    problem of every file at once."""
    problems: list[str] = []
    out: dict[str, list[Definition]] = {}
    seen: set[Path] = set()
    for sel in selectors:
        out.setdefault(sel, [])
        for f in files_of(sel):
            if f.resolve() in seen:
                continue
            seen.add(f.resolve())
            try:
                out[sel].append(read(f, check_regex))
            except ClaimFileError as exc:
                problems += exc.problems
    by_id: dict[str, Definition] = {}
    for d in (d for defs in out.values() for d in defs):
        if d.id in by_id:
            problems.append(f"{d.path}: id: {d.id!r} is also the id of {by_id[d.id].path}: each claim needs its own")
        by_id.setdefault(d.id, d)
    if problems:
        raise ClaimFileError(problems)
    return out


def load(selectors: Iterable[str], taken: Iterable[str] = ()) -> dict[str, list[Claim]]:
    """The claims of these files and directories, by selector. ``taken``: ids that are
    already claims (perflab's own, a plug-in's): a file may not reuse one."""
    defs = definitions(selectors)
    taken = set(taken)
    clash = [f"{d.path}: id: {d.id!r} is already a claim (perflab's own or a plug-in's): choose another"
             for ds in defs.values() for d in ds if d.id in taken]
    if clash:
        raise ClaimFileError(clash)
    return {sel: [claim(d) for d in ds] for sel, ds in defs.items()}
