"""perflab: pre-registered, measured experiments on beliefs about the Linux kernel."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("perflab")
except PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
