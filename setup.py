"""Build step for perflab's native kernels.

A kernel is ``src/perflab/kernels/<name>.c`` or a directory ``src/perflab/kernels/<name>/``
whose ``*.c`` files are compiled together; either becomes a standalone executable
``perflab/_kernels/<name>`` of the built package, linked with the shared code in
``kernels/lib/*.c`` (compiled once into objects in a temporary directory). So
``pip install .`` needs a C compiler and the installed package needs none. Developers
rebuild in place with ``python setup.py build_kernels --inplace`` (see README,
"Developing"); docs/kernels.md, "Building", states the rule.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
KERNEL_SRC = HERE / "src" / "perflab" / "kernels"
LIB_SRC = KERNEL_SRC / "lib"  # shared code, linked into every kernel; not a kernel itself
CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-D_GNU_SOURCE"]
# sources include "lib/common.h" (and a kernel directory its own headers by plain name)
INCLUDES = ["-I", str(KERNEL_SRC)]
# -pthread acts at compile and link time: the lib objects get it as the kernels do
LIBS = ["-pthread"]
# A kernel whose source's first line is "// perflab-build: FLAGS" gets FLAGS appended to
# its compile-and-link command (e.g. "-static" for heapexec_static.c); for a kernel
# directory, the flags on the first line of each of its .c files. docs/kernels.md,
# "Building". The lib objects are compiled once, without them.
BUILD_LINE = "// perflab-build:"


def extra_flags(src: Path) -> list[str]:
    """The per-kernel flags named on the source's first line, or none."""
    with open(src, encoding="utf-8") as f:
        first = f.readline().strip()
    return shlex.split(first[len(BUILD_LINE):]) if first.startswith(BUILD_LINE) else []


def find_kernels() -> dict[str, list[Path]]:
    """Each kernel's name and its C sources: kernels/<name>.c, or every *.c of
    kernels/<name>/ (kernels/lib/ excepted)."""
    found: dict[str, list[Path]] = {}
    for entry in sorted(KERNEL_SRC.iterdir()):
        if entry.is_file() and entry.suffix == ".c":
            name, sources = entry.stem, [entry]
        elif entry.is_dir() and entry != LIB_SRC and any(entry.glob("*.c")):
            name, sources = entry.name, sorted(entry.glob("*.c"))
        else:
            continue
        if name in found:
            raise SystemExit(f"kernel {name}: both kernels/{name}.c and kernels/{name}/ exist")
        found[name] = sources
    return found


def compile_kernels(out_dir: Path) -> list[Path]:
    """Compile kernels/lib/*.c once, then every kernel (linked with those objects) into
    ``out_dir``; raise on the first failure, except of a kernel with its own flags."""
    cc = shlex.split(os.environ.get("CC", "cc"))
    out_dir.mkdir(parents=True, exist_ok=True)
    built = []
    with tempfile.TemporaryDirectory(prefix="perflab-kernels-") as tmp:
        lib_objs = []
        for src in sorted(LIB_SRC.glob("*.c")):
            obj = Path(tmp) / f"{src.stem}.o"
            cmd = [*cc, *CFLAGS, *INCLUDES, "-c", "-o", str(obj), str(src), *LIBS]
            print("compiling kernel lib:", " ".join(cmd), file=sys.stderr)
            subprocess.run(cmd, check=True)
            lib_objs.append(str(obj))
        for name, sources in find_kernels().items():
            exe = out_dir / name
            flags = list(dict.fromkeys(f for src in sources for f in extra_flags(src)))
            cmd = [*cc, *CFLAGS, *INCLUDES, "-o", str(exe), *map(str, sources), *lib_objs,
                   *LIBS, *flags]
            print("compiling kernel:", " ".join(cmd), file=sys.stderr)
            # a kernel with its own flags (e.g. -static without libc.a) is optional: the
            # claim that uses it reports that part as not evaluated; any other must build
            if subprocess.run(cmd, check=not flags).returncode != 0:
                print(f"warning: kernel {name} not built (needs {' '.join(flags)})",
                      file=sys.stderr)
                exe.unlink(missing_ok=True)
                continue
            built.append(exe)
    return built


class BuildPyWithKernels(build_py):
    def run(self) -> None:
        super().run()
        if not self.dry_run:
            compile_kernels(Path(self.build_lib) / "perflab" / "_kernels")


class BuildKernels(Command):
    description = "compile the C kernels (use --inplace for a development checkout)"
    user_options = [("inplace", "i", "build into src/perflab/_kernels")]
    boolean_options = ["inplace"]

    def initialize_options(self) -> None:
        self.inplace = False

    def finalize_options(self) -> None:
        pass

    def run(self) -> None:
        out = HERE / "src" / "perflab" / "_kernels" if self.inplace else HERE / "build" / "kernels"
        compile_kernels(out)


class BinaryDistribution(Distribution):
    """The wheel carries native executables: tag it for this platform, not 'any'."""

    def has_ext_modules(self) -> bool:
        return True


setup(
    cmdclass={"build_py": BuildPyWithKernels, "build_kernels": BuildKernels},
    distclass=BinaryDistribution,
)
