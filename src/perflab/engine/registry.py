"""Discovers claims: every module of ``perflab.claims`` plus the ``perflab.claims``
entry-point group. Importing this module has no side effects; discovery happens on call.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import pkgutil
from dataclasses import replace
from functools import lru_cache
from importlib.metadata import entry_points
from types import ModuleType
from typing import Sequence

from perflab.core.claim import Claim
from perflab.core.errors import PerflabError, UsageError
from perflab.core.safe import safe

ENTRY_POINT_GROUP = "perflab.claims"


def _claims_of(module: ModuleType) -> list[Claim]:
    found = getattr(module, "CLAIMS", [])
    source = inspect.getsourcefile(module) or ""
    out = []
    for claim in found:
        if not isinstance(claim, Claim):
            raise PerflabError(f"{module.__name__}.CLAIMS holds a {type(claim).__name__}, not a Claim")
        out.append(_with_source(claim, source))
    return out


def _with_source(claim: Claim, source: str) -> Claim:
    return replace(claim, source=source)


def _builtin_modules() -> list[ModuleType]:
    import perflab.claims as pkg

    return [
        importlib.import_module(f"{pkg.__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name)
        if not info.name.startswith("_")
    ]


def _plugin_modules() -> list[ModuleType]:
    modules = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken third-party plug-in must not hide the others
            raise PerflabError(f"claim plug-in {ep.name} ({ep.value}) failed to load: {exc}") from None
        if isinstance(obj, ModuleType):
            modules.append(obj)
        else:
            raise PerflabError(f"claim plug-in {ep.name} must name a module, got {type(obj).__name__}")
    return modules


@lru_cache(maxsize=1)
def all_claims() -> tuple[Claim, ...]:
    claims: dict[str, Claim] = {}
    for module in _builtin_modules() + _plugin_modules():
        for claim in _claims_of(module):
            if claim.id in claims:
                raise PerflabError(f"claim {claim.id} is defined twice ({claims[claim.id].source}, {claim.source})")
            claims[claim.id] = claim
    return tuple(claims.values())


def topics() -> list[str]:
    return sorted({c.topic for c in all_claims()})


def select(selectors: list[str], claims_dirs: Sequence[str] = ()) -> list[Claim]:
    """Topics, claim ids, and claim files or directories of them (userclaims/files.py), in
    the order given, duplicates removed; none = every claim. The claim files of
    ``claims_dirs`` join the claims that ids and topics select."""
    claims, files = _with_claim_files(selectors, claims_dirs)
    if not selectors:
        return list(claims)
    by_id = {c.id: c for c in claims}
    known_topics = sorted({c.topic for c in claims})
    chosen: dict[str, Claim] = {}
    for sel in selectors:
        if sel in by_id:
            chosen.setdefault(sel, by_id[sel])
        elif sel in known_topics:
            for c in claims:
                if c.topic == sel:
                    chosen.setdefault(c.id, c)
        elif sel in files:
            for c in files[sel]:
                chosen.setdefault(c.id, c)
        else:
            raise UsageError(f"unknown claim or topic: {safe(sel)}{_hint(sel, list(by_id), known_topics)}")
    return list(chosen.values())


def _with_claim_files(selectors: list[str], claims_dirs: Sequence[str]) -> tuple[list[Claim], dict[str, list[Claim]]]:
    """Every claim selectors may name (perflab's, the plug-ins', those of ``claims_dirs``)
    and the claims of each selector that is a claim file or directory, all read and
    checked at once before anything runs."""
    claims = list(all_claims())
    ids, names = {c.id for c in claims}, {c.id for c in claims} | {c.topic for c in claims}
    others = [s for s in selectors if s not in names]
    if not others and not claims_dirs:
        return claims, {}
    from perflab.userclaims import files as claim_files  # imported only when a claim file may be named

    paths = [s for s in others if claim_files.looks_like_path(s) or os.path.isdir(s)]
    if not paths and not claims_dirs:
        return claims, {}
    loaded = claim_files.load([*claims_dirs, *paths], taken=ids)
    claims += [c for d in claims_dirs for c in loaded[d]]
    return claims, {p: loaded[p] for p in paths}


def _hint(sel: str, ids: list[str], known_topics: list[str]) -> str:
    """A near match only when there is a real one: within a known topic ("io.nope") only
    that topic's claims, else ids, bare claim names and topics; no guess is better than a
    wrong one ("io.nope" is not "clone")."""
    topic, dot, name = sel.partition(".")
    if dot and topic in known_topics:
        names = {cid.partition(".")[2]: cid for cid in ids if cid.startswith(topic + ".")}
        fallback = f" (see 'perflab list {topic}')"
    else:
        names = {**{cid.partition(".")[2]: cid for cid in ids}, **{t: t for t in known_topics}, **{c: c for c in ids}}
        name, fallback = sel, " (see 'perflab list')"
    near = [n for n in names if name and n.startswith(name)]  # a unique prefix ("io.select")
    near = near if len(near) == 1 else difflib.get_close_matches(name, list(names), n=1, cutoff=0.75)
    return f" (did you mean {names[near[0]]}?)" if near else fallback
