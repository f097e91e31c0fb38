"""source_hash covers every file whose change can change a claim's result."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from perflab.engine.registry import all_claims
from perflab.engine import provenance, registry

PACKAGE = provenance.PACKAGE


def claim(cid: str):
    return next(c for c in all_claims() if c.id == cid)  # as registered: with its source file


def package_files() -> set[Path]:
    out = set()
    for p in PACKAGE.rglob("*"):
        rel = p.relative_to(PACKAGE).as_posix()
        if p.is_file() and not rel.startswith("_kernels/") and "__pycache__" not in rel and p.suffix != ".pyc":
            out.add(p)
    return out


def no_effect(path: Path) -> bool:
    rel = path.relative_to(PACKAGE).as_posix()
    return any(rel == n or (n.endswith("/") and rel.startswith(n)) for n in provenance.NO_EFFECT)


def claim_files():
    """Claims read from files (userclaims/) count as claims: the known-truth ones the tests run."""
    from perflab.userclaims import files

    return [c for cs in files.load([str(Path(__file__).parent / "fixtures" / "claims")]).values() for c in cs]


def test_every_file_is_an_input_of_a_claim_or_declared_without_effect():
    covered = set()
    for c in [*registry.all_claims(), *claim_files()]:
        covered.update(provenance.inputs(c))
    missing = sorted(p.relative_to(PACKAGE).as_posix() for p in package_files() - covered if not no_effect(p))
    assert not missing, f"in no claim's hash inputs and not in provenance.NO_EFFECT: {missing}"


def test_no_effect_lists_only_files_that_exist_and_no_claim_input():
    covered = {p for c in [*registry.all_claims(), *claim_files()] for p in provenance.inputs(c)}
    for entry in provenance.NO_EFFECT:
        hits = [p for p in package_files() if no_effect(p) and p.relative_to(PACKAGE).as_posix().startswith(entry)]
        assert hits, f"NO_EFFECT names {entry}, which is not there"
        assert not set(hits) & covered, f"{entry} is declared without effect but a claim imports it"


@pytest.mark.parametrize("cid,needed", [
    ("io.select-linear", ["claims/io.py", "kernels/iomux.c", "engine/runner.py", "decide/stats.py",
                          "observe/host.py", "core/rule.py"]),
    ("clone.fork-is-clone", ["kernels/task.c", "observe/trace/mechanisms.py", "kernels/trace_control.c"]),
    ("green.asyncio-cheaper", ["subjects/pyswitch.py", "subjects/green.go", "kernels/switch.c", "kernels/launch.c"]),
    ("cache.page-cache", ["observe/storage.py", "kernels/pagecache.c"]),
    ("space.kthread-no-user", ["observe/procfs/tasks.py", "observe/procfs/parse.py"]),
])
def test_a_claims_inputs_include_what_defines_it(cid, needed):
    rels = {p.relative_to(PACKAGE).as_posix() for p in provenance.inputs(claim(cid))}
    for n in needed:
        assert n in rels, (cid, n)
    shared = [r for r in rels if r.startswith("kernels/lib/")]
    tracer = [r for r in rels if r.startswith("kernels/tracer")]
    assert shared or any(r.endswith(".h") for r in rels), "the kernels' shared code is an input"
    if cid.startswith("clone."):
        assert tracer, "the tracer's sources are an input of a traced claim"


def test_the_hash_changes_with_any_input_and_with_the_rule(monkeypatch):
    c = claim("io.select-linear")
    before = provenance.source_hash(c)
    assert provenance.source_hash(c) == before  # stable
    bumped = dataclasses.replace(c, rule=dataclasses.replace(c.rule, version=c.rule.version + 1))
    assert provenance.source_hash(bumped) != before
    for victim in provenance.inputs(c)[::7]:
        real = Path.read_bytes

        def read_bytes(self, victim=victim, real=real):
            data = real(self)
            return data + b"\n# changed" if self == victim else data

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
        assert provenance.source_hash(c) != before, victim
        monkeypatch.setattr(Path, "read_bytes", real)
