"""Pre-registration of claim files: the first run of a claim registers it.

Every verdict of a claim file carries its definition and that definition's hash
(``evidence.facts.definition`` and ``definition_hash``, userclaims/build.py), stored
with the date of its run. The first stored verdict of a claim id is its registration:
the rule, thresholds and commands its author committed to before seeing any result. A
later verdict under another hash measured or decided something else: history numbers
the versions in order of their first run, says what changed, and marks every verdict
of a later version "claim changed since its first run on DATE: verdicts are not
comparable" (CLAIMS.md: thresholds are fixed before the first live run).

Pure functions over the store's records, so a database copied from another machine
tells the same story.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from perflab.userclaims.definition import changes

Record = tuple[str, str, Mapping[str, Any]]  # (run id, the run's start, record): Store.records


@dataclass
class Version:
    number: int  # 1 = the registered definition
    definition_hash: str
    first_run: str  # the start of the first run that measured it (ISO 8601, UTC)
    first_run_id: str
    definition: dict[str, Any]
    verdicts: int = 0
    changes: list[str] = field(default_factory=list)  # from the version before, in words

    def to_json(self) -> dict[str, Any]:
        return {"version": self.number, "definition_hash": self.definition_hash, "first_run": self.first_run,
                "first_run_id": self.first_run_id, "verdicts": self.verdicts, "changes": self.changes,
                "definition": self.definition}


def facts(record: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((record.get("evidence") or {}).get("facts") or {}) if isinstance(record, Mapping) else {}


def definition_hash(record: Mapping[str, Any]) -> str | None:
    """The claim-file definition a record was measured under; None for other claims."""
    h = facts(record).get("definition_hash")
    return h if isinstance(h, str) else None


def versions(records: Iterable[Record]) -> list[Version]:
    """The claim's definitions in order of their first run (records oldest first)."""
    out: dict[str, Version] = {}
    for run_id, started, rec in records:
        h = definition_hash(rec)
        if h is None:
            continue
        if h not in out:
            definition = dict(facts(rec).get("definition") or {})
            before = list(out.values())[-1].definition if out else None
            out[h] = Version(len(out) + 1, h, started, run_id, definition,
                             changes=changes(before, definition) if before is not None else [])
        out[h].verdicts += 1
    return list(out.values())


def not_comparable(first: Version) -> str:
    return f"claim changed since its first run on {first.first_run}: verdicts are not comparable"


def note(records: Iterable[Record], current_hash: str) -> str | None:
    """What to say of a claim whose definition now hashes to ``current_hash``: None while
    it is the registered one (or nothing is stored yet)."""
    vs = versions(records)
    if not vs or vs[0].definition_hash == current_hash:
        return None
    return not_comparable(vs[0])
