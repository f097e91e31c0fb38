"""Where the views (report, compare, export) and import read records from: a run in the
database (``last``, an id or a unique prefix of one) or a JSON Lines file of records
(``perflab run --json [--samples]``, ``perflab show --json``, ``perflab export --format
jsonl``; ``-`` is standard input). A file may hold several runs: each is a source of its
own. Version-1 lines are upgraded as they are read; anything else that is not a record
of this perflab's schema or an older one is refused with its file and line
(core/record.py, ``read_lines``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Iterable

from perflab.core.errors import BadInput, EnvironmentRefused, UsageError
from perflab.core.record import Host, RecordError, Verdict, read_lines
from perflab.core.safe import safe
from perflab.results.store import RunInfo, Store


@dataclass
class Source:
    """One run's records, from the database or from a file."""

    run_id: str
    verdicts: list[Verdict]
    info: RunInfo | None = None  # the run as the database keeps it; None for a file
    path: str | None = None  # the file it was read from; None for the database

    @property
    def host(self) -> Host:
        if self.info is not None:
            return self.info.host
        return self.verdicts[0].host if self.verdicts else Host()

    @property
    def label(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}run {self.run_id or '(no id)'}"

    @property
    def origin(self) -> str:
        """The id of the run where it was measured: an imported run's source run
        (its argv is ``import FILE --run ID``, store/importing.py) or a fleet host's
        (``fleet run FLEET --host NAME --run ID``, store/fleets.py), else its own."""
        argv = self.info.argv if self.info is not None else []
        if self.info is not None and self.info.status in ("imported", "fleet") and argv[-2:-1] == ["--run"]:
            return str(argv[-1])
        return self.run_id

    @property
    def key(self) -> tuple[str, str]:
        """What makes two sources the same run: where it was measured, and its host."""
        return self.origin, self.host.fingerprint()


def is_file(ref: str) -> bool:
    """A file name rather than a run reference: ``-``, an existing path, or a name with a
    slash or a .json/.jsonl ending (run ids have neither)."""
    return ref == "-" or "/" in ref or ref.endswith((".json", ".jsonl")) or os.path.isfile(ref)


def read_records(ref: str) -> list[Verdict]:
    """Every record of a JSON Lines file (``-``: standard input)."""
    name = "standard input" if ref == "-" else safe(ref)
    try:
        if ref == "-":
            return read_lines(sys.stdin, name)
        with open(ref, encoding="utf-8", errors="strict") as f:
            return read_lines(f, name)
    except RecordError as exc:
        raise BadInput(f"not perflab JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"not perflab JSON: {name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(f"no file {name} (and not a run id)") from None
    except IsADirectoryError:
        raise UsageError(f"{name} is a directory, not a file of records") from None
    except OSError as exc:
        raise EnvironmentRefused(f"cannot read {name}: {exc.strerror or exc}") from None


def by_run(verdicts: Iterable[Verdict]) -> dict[str, list[Verdict]]:
    """Records grouped by their run id, in the order the runs first appear."""
    out: dict[str, list[Verdict]] = {}
    for v in verdicts:
        out.setdefault(v.run_id, []).append(v)
    return out


def from_file(ref: str) -> list[Source]:
    records = read_records(ref)
    if not records:
        raise BadInput(f"not perflab JSON: {'standard input' if ref == '-' else safe(ref)} holds no record")
    return [Source(run_id, group, path=ref) for run_id, group in by_run(records).items()]


def from_store(store: Store, ref: str, samples: bool = False) -> Source:
    run_id = store.resolve_run(ref)
    return Source(run_id, store.verdicts(run_id, samples=samples), info=store.run_info(run_id))


def load(refs: list[str], db: str | os.PathLike | None = None, samples: bool = False) -> list[Source]:
    """The sources the references name, in order (a file of several runs gives each).
    The database is opened read-only, and only when a reference names a run in it."""
    out: list[Source] = []
    store: Store | None = None
    try:
        for ref in refs:
            if is_file(ref):
                out += from_file(ref)
                continue
            if store is None:
                store = Store(db, readonly=True)
            out.append(from_store(store, ref, samples))
    finally:
        if store is not None:
            store.close()
    return out


def describe(src: Source) -> str:
    """One line about a source: where it is from, when, on which machine."""
    h = src.host
    when = f", {src.info.started_at}, {src.info.status}, budget {src.info.budget}" if src.info else ""
    return safe(f"{src.label}{when}: {len(src.verdicts)} claim(s) on {h.hostname or '?'} ({h.cpu_model or '?'})")

