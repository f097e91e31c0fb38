"""Optional components: what a run uses where the host has it and skips (with the install
line) where it has not. ``PERFLAB_WITHOUT`` names some to treat as absent even when
installed (space- or comma-separated: ``go``, ``jemalloc``, ``tcmalloc``, ``mimalloc``, or
``all``), so that the path a fresh machine takes can be run on a machine that has them:
``.ci/run`` runs the live tests that way once (with go, perf and strace also off PATH)."""

from __future__ import annotations

import os
import re

KNOWN = ("go", "jemalloc", "tcmalloc", "mimalloc")


def without() -> frozenset[str]:
    """The components PERFLAB_WITHOUT hides (unknown names are ignored: a missing thing
    cannot be hidden less)."""
    names = {n for n in re.split(r"[\s,]+", os.environ.get("PERFLAB_WITHOUT", "").strip().lower()) if n}
    return frozenset(KNOWN) if "all" in names else frozenset(names & set(KNOWN))


def hidden(name: str) -> bool:
    return name in without()
