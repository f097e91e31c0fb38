"""Subjects that are not C kernels: a Python script run with this interpreter, and a Go
program built with the user's own Go toolchain.

Both ship as package data in ``perflab/subjects/`` and speak the kernel protocol
(docs/kernels.md): argv in, one JSON line out, exit 77 when something cannot run here.

The Go subject is the one thing perflab compiles at run time, because what it measures
is that runtime (the scheduler of the Go the user has). The binary is cached under
``$XDG_CACHE_HOME/perflab/go/<hash>/green`` (``~/.cache`` when XDG_CACHE_HOME is unset),
keyed by the source and the toolchain's ``go version``, so it is built once per
toolchain. Without a toolchain the Go parts are not run and say why.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from perflab.observe.optional import hidden

# the subject files this module runs (engine/provenance.py hashes them into every claim
# that imports it)
PROVENANCE = ("subjects/pyswitch.py", "subjects/green.go")

SUBJECTS = Path(__file__).resolve().parent.parent / "subjects"
PY_SUBJECT = SUBJECTS / "pyswitch.py"
GO_SOURCE = SUBJECTS / "green.go"
NO_GO = "no Go toolchain ('go' is not on PATH): apt install golang-go"
BUILD_TIMEOUT_S = 600.0


def python_subject(variant: str, *args: str) -> list[str]:
    """argv of the Python subject, run by the interpreter perflab runs under; isolated
    (-I: no PYTHON* variables, no user site) and without site-packages (-S): it needs
    the standard library only."""
    return [sys.executable, "-I", "-S", str(PY_SUBJECT), f"--variant={variant}", *args]


def cache_root() -> Path:
    """$XDG_CACHE_HOME/perflab, else ~/.cache/perflab (XDG Base Directory spec)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg.startswith("/") else Path.home() / ".cache"
    return base / "perflab"


@dataclass(frozen=True)
class GoBuild:
    """The built Go subject, or why there is none. ``missing`` (no toolchain) means
    "not evaluated here"; ``log`` set (the toolchain failed) is an error."""

    path: Path | None
    reason: str = ""
    version: str = ""
    log: str = ""

    @property
    def missing(self) -> bool:
        return self.path is None and not self.log


def go_tool() -> str | None:
    return None if hidden("go") else shutil.which("go")


def unavailable() -> str | None:
    """Why the Go subject cannot be built here (no toolchain), or None."""
    return None if go_tool() else NO_GO


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Build with nothing but the local toolchain and the standard library: no module
    # downloads (GOPROXY=off), no toolchain switch (GOTOOLCHAIN=local, Go >= 1.21), no C
    # compiler (CGO_ENABLED=0).
    env.update({"GOPROXY": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"})
    # Go's own default is os.UserCacheDir(): $XDG_CACHE_HOME, which it refuses when
    # relative (as the XDG Base Directory spec says to ignore it), else $HOME/.cache
    if not env.get("GOCACHE") and not env.get("HOME") and not env.get("XDG_CACHE_HOME", "").startswith("/"):
        env["GOCACHE"] = str(cache / "go-build")
    return env


@lru_cache(maxsize=None)
def go_subject() -> GoBuild:
    """Build (once per source and toolchain) and return the Go subject."""
    go = go_tool()
    if not go:
        return GoBuild(None, NO_GO)
    root = cache_root() / "go"
    env = _env(root)
    try:
        version = subprocess.run([go, "version"], capture_output=True, text=True, env=env, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return GoBuild(None, f"'{go} version' failed: {exc}", log=str(exc))
    source = GO_SOURCE.read_bytes()
    key = hashlib.sha256(source + b"\0" + version.encode()).hexdigest()[:16]
    exe = root / key / "green"
    if os.access(exe, os.X_OK):
        return GoBuild(exe, version=version)
    # Build in a fresh directory with its own go.mod (a module of one file, standard
    # library only), then rename into place: concurrent runs never see half a binary.
    try:
        (root / key).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root, prefix="build-") as tmp:
            (Path(tmp) / "green.go").write_bytes(source)
            (Path(tmp) / "go.mod").write_text("module perflab.subject/green\n\ngo 1.16\n")
            p = subprocess.run([go, "build", "-trimpath", "-o", "green", "green.go"], cwd=tmp, env=env,
                               capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
            if p.returncode != 0:
                return GoBuild(None, f"go build failed ({version})", version=version, log=p.stdout + p.stderr)
            os.replace(Path(tmp) / "green", exe)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return GoBuild(None, f"cannot build the Go subject under {root}: {exc}", version=version, log=str(exc))
    return GoBuild(exe, version=version)


def go_facts(build: GoBuild) -> dict[str, object]:
    """What a plan found about the Go subject, as JSON for ``Plan.facts``: built (with
    the toolchain's version), or why not (no toolchain: the fix; a failed build: where its
    log is reported)."""
    if build.path is not None:
        return {"built": True, "version": build.version}
    why = build.reason if build.missing else (
        f"the Go subject could not be built ({build.reason}; green.not-tasks reports the build error)")
    return {"built": False, "version": build.version, "why": why}


def go_argv(build: GoBuild, variant: str, *args: str) -> list[str]:
    assert build.path is not None
    return [str(build.path), f"--variant={variant}", *args]
