"""Provenance: which files define a claim's result, and their hash.

A verdict is stamped with ``source_hash``: a hash of the claim's rule (as data, its
version included) and of the text of every file whose change could change the result
(asv's benchmark version; DESIGN.md, "Version the stored format"). Results of different
definitions are then never compared silently. The files are found, not listed by hand:

* the claim's module and every perflab module it imports, transitively (read from the
  source, so a lazy import inside a function counts too), with their packages'
  ``__init__``; the same for the runner (sampling, deciding) and the host facts;
* every kernel those modules name: a module that starts kernels or reads files at run
  time declares them in a module-level ``PROVENANCE`` tuple (kernel names, or paths
  relative to the package: ``("tracer", "subjects/pyswitch.py")``), and the claim's own
  ``kernel`` and ``sources`` count the same way;
* a kernel is ``kernels/<name>.c`` or the directory ``kernels/<name>/`` with every kernel's
  shared code (``kernels/lib/``) and headers (docs/kernels.md, "Layout");
* a claim read from a file that is not Python (a TOML claim file, userclaims/): that
  file's text, and the module whose plan and decision interpret it with its imports.

``tests/test_provenance.py`` fails when a file under ``src/perflab/`` is in no claim's
inputs and not in ``NO_EFFECT``, the files that cannot change a result (views, storage,
the command line).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import re
from functools import lru_cache
from pathlib import Path

from perflab.core.claim import Claim

PACKAGE = Path(__file__).resolve().parent.parent
KERNELS = PACKAGE / "kernels"
# modules whose results every claim depends on: measuring, deciding, the host facts plans read
BASE_MODULES = ("perflab.engine.runner", "perflab.observe.host")
# files that cannot change a result: what shows, stores or exports verdicts, the command
# line (its parsing of --param is core/params.py, which is an input), the public API's
# re-exports, the record's JSON Schema, and the tree's packaging
NO_EFFECT = (
    "__init__.py", "__main__.py", "api.py",
    "cli/", "results/", "core/schema.py", "engine/registry.py",
    "engine/rejudge.py",  # decides stored records again; a run never imports it
    "decide/ranks.py",  # the rank test of perflab compare (results/compare.py); no claim's decide uses it
    "userclaims/files.py", "userclaims/registration.py",  # which claim files are named; their history
    "subjects/__init__.py",
    "fleet/",  # sends `perflab run` to other hosts and brings its records home; a run never imports it
)
ROOT_INIT = PACKAGE / "__init__.py"  # runs on every import, but only names the public API (lazily)


def _module_file(name: str) -> Path | None:
    """The file of a perflab module by dotted name (package: its __init__.py), if any."""
    if name != "perflab" and not name.startswith("perflab."):
        return None
    parts = name.split(".")[1:]
    if not parts:
        return PACKAGE / "__init__.py"
    rel = Path(*parts)
    for candidate in (PACKAGE / rel.with_suffix(".py"), PACKAGE / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> tuple[set[str], tuple[str, ...]]:
    """perflab modules a file imports (anywhere in it) and its PROVENANCE declaration."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: set[str] = set()
    declared: tuple[str, ...] = ()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)  # submodules imported by name
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "PROVENANCE"
                                                  for t in node.targets):
            declared = tuple(ast.literal_eval(node.value))
    return {n for n in names if _module_file(n) is not None}, declared


@lru_cache(maxsize=None)
def _closure(path: Path) -> tuple[frozenset[Path], tuple[str, ...]]:
    """Every perflab file reached from ``path`` by imports (itself and the packages'
    __init__ files included) and every PROVENANCE entry they declare."""
    files: set[Path] = set()
    declared: list[str] = []
    todo = [path]
    while todo:
        f = todo.pop()
        if f in files:
            continue
        files.add(f)
        names, decl = _imports(f)
        declared += decl
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
                mf = _module_file(".".join(parts[:i]))
                if mf is not None and mf not in files and mf != ROOT_INIT:
                    todo.append(mf)
    return frozenset(files), tuple(declared)


INCLUDED_SOURCE = re.compile(rb'^\s*#\s*include\s+"([^"]+\.c)"', re.M)


def kernel_files(name: str) -> list[Path]:
    """The sources of kernel ``name`` (docs/kernels.md, "Layout"), shared code included,
    and any .c file a source includes (heapexec_static.c is heapexec.c built -static)."""
    own = KERNELS / name
    files = sorted(own.rglob("*.[ch]")) if own.is_dir() else [own.with_suffix(".c")]
    for f in list(files):
        if f.suffix == ".c" and f.is_file():
            files += [f.parent / inc.decode() for inc in INCLUDED_SOURCE.findall(f.read_bytes())]
    shared = sorted((KERNELS / "lib").rglob("*.[ch]")) if (KERNELS / "lib").is_dir() else []
    shared += sorted(KERNELS.glob("*.h"))  # headers beside the kernels, where there are any
    return [f for f in files + shared if f.is_file()]


def _entry_files(entry: str) -> list[Path]:
    """A PROVENANCE or ``sources`` entry: a kernel name, or a path relative to the package."""
    if "/" not in entry and "." not in entry:
        return kernel_files(entry)
    path = PACKAGE / entry
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    if path.suffix == ".c" and path.parent == KERNELS:  # a kernel named by its source
        return kernel_files(path.stem)
    return [path]


def inputs(claim: Claim) -> list[Path]:
    """Every file whose text can change this claim's result, sorted."""
    files: set[Path] = set()
    declared: list[str] = [claim.kernel, *claim.sources]
    roots = [Path(claim.source)] if claim.source.endswith(".py") else []
    if claim.source and not claim.source.endswith(".py"):  # a claim file (TOML): its text, and the
        files.add(Path(claim.source))  # module whose plan and decision read it (userclaims/build.py)
        roots.append(Path(inspect.getsourcefile(claim.plan or claim.observe)))
    roots += [f for f in (_module_file(m) for m in BASE_MODULES) if f is not None]
    for root in roots:
        found, decl = _closure(root.resolve())
        files |= found
        declared += decl
    for entry in declared:
        if entry and entry != "none":
            files.update(_entry_files(entry))
    return sorted(f for f in files if f.is_file())


def source_hash(claim: Claim) -> str:
    """Hash of the claim's rule and of every input file: results of different
    definitions are never compared silently."""
    digest = hashlib.sha256(claim.id.encode())
    digest.update(json.dumps(claim.rule.describe(), sort_keys=True, default=str).encode())
    for path in inputs(claim):
        try:
            rel = str(path.relative_to(PACKAGE))
        except ValueError:
            rel = path.name
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
