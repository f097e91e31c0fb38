"""perflab: pre-registered, measured experiments on beliefs about the Linux kernel.

    import perflab
    verdicts = perflab.run(["io.epoll-flat"], budget="quick")
    runs = perflab.store.open().runs()

Names are loaded on first use, so ``import perflab`` stays cheap for the command line.
"""

from importlib import import_module

_LAZY = {
    "run": ("perflab.api", "run"),
    "Run": ("perflab.api", "Run"),
    "store": ("perflab.results.store", None),
    "Verdict": ("perflab.core.record", "Verdict"),
    "Outcome": ("perflab.core.record", "Outcome"),
    "Reason": ("perflab.core.record", "Reason"),
    "claims": ("perflab.engine.registry", "all_claims"),
}

__all__ = ["__version__", *_LAZY]


def _version() -> str:
    # importlib.metadata costs ~50 ms to import: read only by --version and stored runs
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("perflab")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "0.0.0+unknown"


def __getattr__(name: str):
    if name == "__version__":
        global __version__
        __version__ = _version()
        return __version__
    if name not in _LAZY:
        raise AttributeError(f"module 'perflab' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = import_module(module)
    return getattr(value, attr) if attr else value
