"""Build step for perflab's native kernels.

Each ``src/perflab/kernels/<stem>.c`` is compiled into a standalone executable
``perflab/_kernels/<stem>`` of the built package, so ``pip install .`` needs a C compiler
and the installed package needs none. Developers rebuild in place with
``python setup.py build_kernels --inplace`` (see README, "Developing").
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
KERNEL_SRC = HERE / "src" / "perflab" / "kernels"
CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-D_GNU_SOURCE"]
LIBS = ["-pthread"]
# A kernel whose first line is "// perflab-build: FLAGS" gets FLAGS appended to its
# compile command (e.g. "-static" for heapexec_static.c); docs/kernels.md, "Building".
BUILD_LINE = "// perflab-build:"


def extra_flags(src: Path) -> list[str]:
    """The per-kernel flags named on the source's first line, or none."""
    with open(src, encoding="utf-8") as f:
        first = f.readline().strip()
    return shlex.split(first[len(BUILD_LINE):]) if first.startswith(BUILD_LINE) else []


def compile_kernels(out_dir: Path) -> list[Path]:
    """Compile every kernel source into ``out_dir``; raise on the first failure."""
    cc = shlex.split(os.environ.get("CC", "cc"))
    out_dir.mkdir(parents=True, exist_ok=True)
    built = []
    for src in sorted(KERNEL_SRC.glob("*.c")):
        exe = out_dir / src.stem
        flags = extra_flags(src)
        cmd = [*cc, *CFLAGS, "-o", str(exe), str(src), *LIBS, *flags]
        print("compiling kernel:", " ".join(cmd), file=sys.stderr)
        # a kernel with its own flags (e.g. -static without libc.a) is optional: the
        # claim that uses it reports that part as not evaluated; any other must build
        if subprocess.run(cmd, check=not flags).returncode != 0:
            print(f"warning: kernel {src.stem} not built (needs {' '.join(flags)})", file=sys.stderr)
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
