"""Writing a Markdown report and its folder of PNG plots whole or not at all.

``report.md`` gets its plots in ``report-plots/`` beside it. The PNGs are written into a
new temporary folder beside it (mkdtemp: a name nobody can plant, mode 0700, then 0755),
which is renamed into place (rename(2) of a directory is atomic on one file system); a
folder of an earlier report there (only ``*.png`` files in it) is moved aside first and
removed once the page is written, or put back if writing the page fails. A folder there
that holds anything else, or a symlink at its name, is refused before any work.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from perflab.core.errors import EnvironmentRefused
from perflab.core.safe import safe
from perflab.results.output import check_target, write_file


def plots_folder(out: str) -> Path:
    p = Path(out)
    return p.with_name(f"{p.stem}-plots")


def _refuse(folder: Path, why: str) -> EnvironmentRefused:
    return EnvironmentRefused(f"cannot write the report's plots to {safe(str(folder))}: {why}")


def check(out: str) -> Path:
    """Refuse, before any work, a page or plots folder that cannot be written."""
    if check_target(out) == "through":
        raise EnvironmentRefused(f"cannot write a Markdown report to {safe(out)}: its plots go in a folder beside "
                                 "it, so it must be a regular file")
    folder = plots_folder(out)
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return folder
    except OSError as exc:
        raise _refuse(folder, exc.strerror or str(exc)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(folder, "something that is not a directory is there (a symlink or a file)")
    strangers = [n for n in os.listdir(folder) if not n.endswith(".png") or not (folder / n).is_file()
                 or (folder / n).is_symlink()]
    if strangers:
        raise _refuse(folder, f"it holds files that are not a report's plots ({safe(strangers[0])}...)")
    return folder


def write_with_plots(out: str, text: str, folder: Path, pngs: dict[str, bytes]) -> None:
    check(out)
    parent = folder.parent
    try:
        fresh = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=parent))
    except OSError as exc:
        raise _refuse(folder, exc.strerror or str(exc)) from None
    old: Path | None = None
    try:
        for name, data in pngs.items():
            fd = os.open(fresh / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        os.chmod(fresh, 0o755)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=parent))
            os.rename(folder, old / "plots")
        os.rename(fresh, folder)
    except OSError as exc:
        shutil.rmtree(fresh, ignore_errors=True)
        if old is not None and (old / "plots").exists() and not folder.exists():
            os.rename(old / "plots", folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise _refuse(folder, exc.strerror or str(exc)) from None
    try:
        write_file(out, text)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        if old is not None:
            os.rename(old / "plots", folder)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
