"""The fleet's client: one task per host, the records stored as they arrive, every host ended.

``Fleet`` is one ``perflab fleet run``. It submits one task per host (fleet/task.py) with
the placement Dask documents for pinning work to a worker (distributed.dask.org,
"Data Locality" and "Worker Resources"): ``workers=[host]`` with
``allow_other_workers=False`` and ``resources={'bench': 1}``, ``pure=False`` and
``retries=0``. It reads the tasks' messages from the fleet's Queue, stores each record
under the host's run as it comes (store/fleets.py) and hands it to ``on_verdict``.

Every host ends one way, and none is ever run twice:
- ``complete``: its ``perflab run`` ended; every record is home;
- ``lost``: its worker died or left the scheduler (a KilledWorker error, the scheduler's
  allowed-failures being 0: fleet/probe.py; or the client seeing the worker gone). Its
  claims that did not come back become error records, "host lost" (fleet/lost.py);
- ``timeout``: past ``--host-timeout`` (the task kills its process group; the client gives
  up on it a grace period later); claims not back: error, "host timed out";
- ``failed``: its ``perflab run`` exited with an error, or the task raised; claims not back:
  error, "host failed";
- ``interrupted``: Ctrl-C (or SIGTERM...) of this client: ``stop`` sets the fleet's stop
  Event, waits for each running task to say it killed its process group, then cancels
  every future;
- ``refused``: the host cannot run these claims (fleet/hosts.py); nothing was sent to it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from perflab import __version__
from perflab.api import now
from perflab.core.claim import Claim
from perflab.core.record import Host, RecordError, Verdict
from perflab.fleet import lost, task
from perflab.fleet.hosts import RESOURCE, Worker
from perflab.results.store import Store, fleets, importing

POLL_S = 0.05  # the client's loop: messages, finished futures (a queue look-up, ~1 ms, each)
MEMBERS_EVERY_S = 1.0  # how often the workers still at the scheduler are listed
TIMEOUT_GRACE_S = 30.0  # past --host-timeout, how long the task has to say it timed out
STOP_WAIT_S = 10.0  # on Ctrl-C, how long each running task has to say its processes are gone


def _utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class HostRun:
    """The client's view of one host."""

    worker: Worker
    status: str = "waiting"  # waiting | running | complete | lost | timeout | failed | interrupted | refused
    reason: str | None = None
    future: Any = None
    t_submit: float = 0.0
    t_start: float | None = None
    source_run: str = ""
    run_id: str | None = None  # its run in this database, once anything of it is stored
    arrived: dict[str, Verdict] = field(default_factory=dict)
    stopped: bool = False  # its task said it killed its process group

    @property
    def name(self) -> str:
        return self.worker.name

    @property
    def active(self) -> bool:
        return self.status in ("waiting", "running")

    def elapsed(self) -> float:
        return time.monotonic() - (self.t_start or self.t_submit or time.monotonic())


class Fleet:
    def __init__(self, client: Any, store: Store, claims: list[Claim], run_args: list[str], *, budget: str,
                 seed: int, host_timeout: float | None, scheduler: str, argv: list[str],
                 say: Callable[[str], None], on_verdict: Callable[[str, Verdict], None]):
        self.client = client
        self.store = store
        self.claims = claims
        self.run_args = run_args
        self.budget = budget
        self.seed = seed
        self.host_timeout = host_timeout
        self.scheduler = scheduler
        self.argv = argv
        self.say = say
        self.on_verdict = on_verdict
        self.id = fleets.PREFIX + importing.new_id(store, _utc(), [])
        self.hosts: list[HostRun] = []
        self.queue = None

    # ---- start -----------------------------------------------------------------------------

    def begin(self, workers: list[Worker]) -> None:
        """Record the fleet and its hosts (refused ones with why), then submit one task per
        host that can run the claims."""
        from distributed import Queue

        self.hosts = [HostRun(w, "refused" if w.refused else "waiting", w.refused) for w in workers]
        fleets.begin(self.store, self.id, now(), __version__, self.scheduler, self.budget, self.seed,
                     [c.id for c in self.claims], self.argv,
                     [(h.name, h.status, h.reason, h.worker.probe) for h in self.hosts])
        self.queue = Queue(task.queue_name(self.id), client=self.client)
        for h in self.hosts:
            if h.status == "refused":
                continue
            h.t_submit = time.monotonic()
            h.future = self.client.submit(
                task.run_host, self.id, h.name, self.run_args, self.host_timeout,
                key=f"perflab-{self.id}-{h.name}", workers=[h.name], allow_other_workers=False,
                resources={RESOURCE: 1}, pure=False, retries=0)

    # ---- the loop --------------------------------------------------------------------------

    def wait(self) -> None:
        """Until every host has ended."""
        members_at = 0.0
        while any(h.active for h in self.hosts):
            self.drain()
            for h in self.hosts:
                if h.active and h.future is not None and h.future.done():
                    self.settle(h)
            if time.monotonic() - members_at >= MEMBERS_EVERY_S:
                members_at = time.monotonic()
                self.check_members()
            self.check_timeouts()
            time.sleep(POLL_S)

    def drain(self) -> None:
        for msg in self.queue.get(batch=True):
            value = msg.get("value") if isinstance(msg, dict) and msg.get("type") == "msgpack" else msg
            if isinstance(value, dict):
                self.message(value)

    def _host(self, name: Any) -> HostRun | None:
        return next((h for h in self.hosts if h.name == name), None)

    def message(self, msg: dict[str, Any]) -> None:
        h = self._host(msg.get("host"))
        if h is None or not h.active and msg.get("k") != "stopped":
            return  # a host already ended (its late messages change nothing)
        kind = msg.get("k")
        if kind == "start":
            h.status, h.t_start = "running", time.monotonic()
            fleets.set_host(self.store, self.id, h.name, "running")
            self.say(f"{h.name}: started (worker pid {msg.get('pid')})")
        elif kind == "run":
            h.source_run = str(msg.get("run_id") or "")
        elif kind == "claim":
            self.say(f"{h.name} [{msg.get('i')}/{msg.get('n')}] {msg.get('claim')} ... ({h.elapsed():.1f} s)")
        elif kind == "record":
            self.record(h, str(msg.get("line") or ""))
        elif kind == "stopped":
            h.stopped = True

    def record(self, h: HostRun, line: str) -> None:
        """One record line of a host: stored (once) under its run, then shown."""
        try:
            v = Verdict.from_json(json.loads(line))
        except (ValueError, RecordError) as exc:
            self.say(f"{h.name}: a line that is not a perflab record was left out ({exc})")
            return
        if v.claim in h.arrived:
            return
        self._ensure_run(h, v.run_id, v.host, v.perflab_version)
        self.store.save_verdict(h.run_id, v)
        h.arrived[v.claim] = v
        self.say(f"{h.name} [{len(h.arrived)}/{len(self.claims)}] {v.claim}: {v.outcome.value}"
                 + (f" ({v.reason.value})" if v.reason else "") + f" ({h.elapsed():.1f} s)")
        self.on_verdict(h.name, v)

    def _ensure_run(self, h: HostRun, source_run: str, host: Host, version: str) -> None:
        if h.run_id is not None:
            return
        h.source_run = source_run or h.source_run
        h.run_id = importing.new_id(self.store, _utc(), [])
        fleets.begin_host_run(self.store, self.id, h.name, h.run_id, h.source_run,
                              importing.started_at(h.source_run) or now(), version or __version__, self.budget,
                              self.seed, host)

    # ---- how a host ends -------------------------------------------------------------------

    def settle(self, h: HostRun) -> None:
        """A host whose future is done: its last messages, then its end."""
        from distributed.scheduler import KilledWorker

        self.drain()
        if not h.active:
            return
        if h.future.status == "finished":
            result = h.future.result()
            for line in result.get("lines") or []:
                self.record(h, line)
            status, reason = result.get("status"), result.get("reason") or ""
            if status == "complete":
                self.end(h, "complete", None)
            elif status == "timeout":
                self.end(h, "timeout", reason, lost.TIMEOUT)
            elif status == "refused":
                self.end(h, "lost", reason, lost.LOST)
            elif status == "stopped":
                self.end(h, "interrupted", reason)
            else:
                self.end(h, "failed", reason or f"the task ended {status!r}", lost.FAILED,
                         stderr=result.get("stderr") or "")
            return
        if h.future.status == "cancelled":
            self.end(h, "lost", "its task was cancelled at the scheduler", lost.LOST)
            return
        exc = h.future.exception()
        if isinstance(exc, KilledWorker):
            self.end(h, "lost", "its worker died while running the claims (KilledWorker)", lost.LOST)
        else:
            self.end(h, "failed", f"the task raised {type(exc).__name__}: {exc}", lost.FAILED)

    def check_members(self) -> None:
        """A host whose worker is no longer at the scheduler is lost, whatever its task's
        state there (a worker that closed itself may leave its task waiting for it)."""
        names = {str(w.get("name")) for w in (self.client.scheduler_info().get("workers") or {}).values()}
        for h in self.hosts:
            if h.active and h.name not in names:
                self.drain()
                if h.active:
                    self.end(h, "lost", "its worker left the scheduler", lost.LOST)
                    self._give_up(h)

    def check_timeouts(self) -> None:
        if self.host_timeout is None:
            return
        for h in self.hosts:
            if h.active and time.monotonic() - h.t_submit > self.host_timeout + TIMEOUT_GRACE_S:
                self.end(h, "timeout", f"no end came back {self.host_timeout + TIMEOUT_GRACE_S:g} s after it was "
                         "sent", lost.TIMEOUT)
                self._give_up(h)

    def _give_up(self, h: HostRun) -> None:
        """Its task, if it still runs somewhere, stops; its future goes."""
        from distributed import Event

        Event(task.event_name(self.id, "stop", h.name), client=self.client).set()
        if h.future is not None:
            h.future.cancel()

    def end(self, h: HostRun, status: str, reason: str | None, why: str | None = None, stderr: str = "") -> None:
        """The host's end, stored; with ``why``, its claims not back become error records."""
        h.status, h.reason = status, reason
        made = []
        if why is not None:
            host = next(iter(h.arrived.values())).host if h.arrived else Host.from_json(h.worker.facts)
            made = lost.missing(self.claims, set(h.arrived), host, why=why, detail=reason or why, fleet_id=self.id,
                                host_name=h.name, run_id=h.source_run, budget=self.budget, seed=self.seed)
            if stderr and made:
                made[0].evidence["stderr"] = stderr
            if made:
                self._ensure_run(h, h.source_run, host, __version__)
            for v in made:
                self.store.save_verdict(h.run_id, v)
                h.arrived[v.claim] = v
                self.on_verdict(h.name, v)
        fleets.set_host(self.store, self.id, h.name, status, reason, now())
        tail = f": {len(made)} claim(s) recorded as error '{why}'" if made else ""
        self.say(f"{h.name}: {status.upper() if status != 'complete' else status}"
                 + (f" ({reason})" if reason else "") + f" after {h.elapsed():.1f} s{tail}")

    # ---- interrupt and finish ----------------------------------------------------------------

    def stop(self) -> None:
        """Ctrl-C: every task is told to stop and kill its process group; the running ones
        have STOP_WAIT_S to say they did; then every future is cancelled."""
        from distributed import Event

        Event(task.event_name(self.id, "stop"), client=self.client).set()
        running = [h for h in self.hosts if h.status == "running"]
        deadline = time.monotonic() + STOP_WAIT_S
        while any(not h.stopped and not (h.future and h.future.done()) for h in running) \
                and time.monotonic() < deadline:
            self.drain()
            time.sleep(POLL_S)
        for h in self.hosts:
            if h.future is not None:
                h.future.cancel()
            if h.active:
                unsure = h in running and not h.stopped and not (h.future and h.future.done())
                h.status, h.reason = "interrupted", "this client was interrupted" + (
                    f"; its task did not confirm within {STOP_WAIT_S:g} s that its processes are gone" if unsure else "")
                fleets.set_host(self.store, self.id, h.name, h.status, h.reason, now())

    def finish(self, status: str) -> None:
        """The fleet's end, stored; its Queue and Events are released at the scheduler (a
        set Event stays there until cleared: distributed/event.py, EventExtension)."""
        from distributed import Event

        fleets.finish(self.store, self.id, now(), status)
        if self.queue is None:
            return
        try:
            self.queue.close()
            names = [task.event_name(self.id, "stop")]
            names += [task.event_name(self.id, what, h.name) for h in self.hosts for what in ("stop", "started")]
            for name in names:
                Event(name, client=self.client).clear()
        except OSError as exc:  # the scheduler went away: nothing left there to release
            self.say(f"could not release the fleet's queue and events at the scheduler ({exc})")

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for h in self.hosts:
            out[h.status] = out.get(h.status, 0) + 1
        return out
