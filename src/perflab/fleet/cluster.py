"""What the client asks of the Dask cluster before anything runs: a connection, the workers
at the scheduler with what each says of itself, and the scheduler's allowed-failures.

Security: with ``--tls-ca-file``, ``--tls-cert`` and ``--tls-key`` the client builds a
distributed.Security that requires encryption (distributed.dask.org, "TLS/SSL"), the
same three files ``dask scheduler`` and ``dask worker`` take; without them it uses
whatever the Dask configuration says (``distributed.comm.tls.*``, e.g. in
``~/.config/dask/distributed.yaml``), as any Dask client does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perflab.core.errors import EnvironmentRefused, UsageError
from perflab.core.safe import safe
from perflab.fleet import hosts, probe

CONNECT_TIMEOUT_S = 10.0


@dataclass
class Tls:
    ca_file: str | None = None
    cert: str | None = None
    key: str | None = None

    @property
    def given(self) -> bool:
        return any((self.ca_file, self.cert, self.key))


def connect(address: str | None, scheduler_file: str | None, tls: Tls) -> Any:
    """A distributed.Client to the scheduler, or one line saying why there is none."""
    from distributed import Client

    if not address and not scheduler_file:
        raise UsageError("say which scheduler: --scheduler tcp://HOST:8786 (or --scheduler-file FILE)")
    kwargs: dict[str, Any] = {"timeout": CONNECT_TIMEOUT_S, "set_as_default": False}
    if tls.given:
        if not all((tls.ca_file, tls.cert, tls.key)):
            raise UsageError("TLS needs all three of --tls-ca-file, --tls-cert and --tls-key")
        from distributed.security import Security

        kwargs["security"] = Security(tls_ca_file=tls.ca_file, tls_client_cert=tls.cert, tls_client_key=tls.key,
                                      require_encryption=True)
    where = address or f"the scheduler of {scheduler_file}"
    try:
        if address:
            return Client(address, **kwargs)
        return Client(scheduler_file=scheduler_file, **kwargs)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise EnvironmentRefused(safe(f"cannot reach {where}: {exc}")) from None


def address(client: Any) -> str:
    return str(client.scheduler.address)


def survey(client: Any, names: list[str] | None) -> list[hosts.Worker]:
    """The workers asked for (all when ``names`` is None), each with what it says of
    itself (fleet/probe.py, run on every chosen worker at once) and, when it cannot run
    this client's claims, why."""
    workers = hosts.from_scheduler(client.scheduler_info())
    if not workers:
        raise EnvironmentRefused(f"no worker is connected to {address(client)}: start one per host with "
                                 f"'dask worker {address(client)} --nworkers 1 --nthreads 1 "
                                 f"--resources {hosts.RESOURCE}=1 --name HOSTNAME'")
    chosen = hosts.choose(workers, names)
    probe.by_value()
    answers = client.run(probe.describe, workers=[w.address for w in chosen], on_error="return")
    for w in chosen:
        got = answers.get(w.address)
        if isinstance(got, dict):
            w.probe = got
        else:  # an exception, returned (on_error="return"), or no answer: the worker left meanwhile
            w.probe = {"error": f"the worker did not answer perflab's probe ({type(got).__name__}: {got})"}
        w.refused = hosts.refusal(w)
    return chosen


def no_reruns(client: Any) -> tuple[int | None, str | None]:
    """The scheduler's allowed-failures set to 0, so that a worker lost mid-task errs that
    task (KilledWorker) rather than running it again (fleet/probe.py: allowed_failures).
    Returns (the value before, None), or (None, why it could not be set: a scheduler that
    refuses functions from clients, distributed.scheduler.pickle false)."""
    probe.by_value()
    try:
        return client.run_on_scheduler(probe.allowed_failures, value=0), None
    except Exception as exc:  # noqa: BLE001 - any refusal is reported; the client's own checks still hold
        return None, f"{type(exc).__name__}: {exc}"
