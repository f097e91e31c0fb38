"""perflab fleet: the same claims put to the test on many hosts, the verdicts brought home.

perflab builds no scheduler: it uses Dask's ``distributed`` (the optional extra
``perflab[fleet]``), which people already run by hand, over SSH and on batch systems.
Each host runs one Dask worker offering one ``bench`` resource, so two experiments never
share a machine (README, "Fleet"). The modules:

- ``probe``: what a worker says of itself (perflab version, record schema, host facts),
  sent to it by value so that a worker without perflab can say so;
- ``task``: what runs on a worker: ``perflab run --json --samples`` in a fresh process
  group, its progress and records streamed home through a Dask Queue;
- ``hosts``: the workers, chosen and checked against this perflab;
- ``lost``: the error records of claims a host never sent back (lost, timed out);
- ``dispatch``: the client: submits one task per host, stores each record as it
  arrives under one fleet id, and ends every host (Ctrl-C included) without a re-run.
"""

from __future__ import annotations

from types import ModuleType

from perflab.core.errors import EnvironmentRefused

INSTALL = "pip install 'perflab[fleet]'"


def require() -> ModuleType:
    """dask's distributed, or one line saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise EnvironmentRefused(f"perflab fleet needs dask's distributed ({exc}): {INSTALL}") from None
    return distributed
