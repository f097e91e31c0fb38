"""The task a fleet runs on each host: ``perflab run --json --samples`` on that host's worker.

It runs in the worker's one thread (``--nthreads 1``) and starts perflab as a fresh
process there, the host's own perflab with the kernels built for it, through
engine/process.py like every process perflab starts: its own process group, the launch
kernel's parent-death signal (so nothing of it outlives the worker, even a worker killed
with SIGKILL), a timeout (``--host-timeout``) past which the group is killed, stderr in
a temporary file.

While it runs, the task sends home through a Dask Queue (distributed.Queue: items go
through the scheduler, first in first out, and leave it when the client takes them;
distributed.dask.org, API, "Queue") what ``perflab run`` says: its run id, each claim as
it starts (from the progress lines cli/run.py writes on stderr) and each record line as
it is printed. The task returns every record line too, with how the run ended.

A running Dask task cannot be interrupted from outside (the worker's thread runs it to
its end; a cancelled future only drops its result), so the task polls two Dask Events,
the fleet's stop and its host's stop (distributed.Event, "a distributed version of
asyncio.Event"), and kills the process group when either is set, then says so. A third
Event marks the task as started: a second start of the same task (a scheduler that
re-ran it after its worker was lost) refuses to run anything, so a fleet never re-runs
a host's claims silently.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from typing import Any, Callable

POLL_S = 0.25  # how long a read waits for a line before the task looks at its stop events
STOP_EVERY_S = 1.0  # how often the stop events are asked (one scheduler round trip each)
STDERR_KEEP = 4000  # characters of the run's stderr kept in the result
# cli/run.py's progress lines (stderr, not a terminal)
RUN_LINE = re.compile(r"^perflab: run (\S+), (\d+) claim\(s\)")
CLAIM_LINE = re.compile(r"^perflab: \[(\d+)/(\d+)\] (\S+) \.\.\.$")
DONE_LINE = re.compile(r"^perflab: \[(\d+)/(\d+)\] (\S+): \S")  # written just before the claim's record


def queue_name(fleet_id: str) -> str:
    return f"perflab-{fleet_id}"


def event_name(fleet_id: str, what: str, host: str | None = None) -> str:
    return f"perflab-{fleet_id}-{what}" + (f"-{host}" if host is not None else "")


def command(run_args: list[str], db: str) -> list[str]:
    """The host's perflab, run by the worker's own interpreter."""
    return [sys.executable, "-m", "perflab", "run", *run_args, "--json", "--samples", "--db", db]


class _Stderr:
    """Progress lines of the run's stderr, parsed as they are written."""

    def __init__(self) -> None:
        self.offset = 0
        self.partial = b""
        self.text: list[str] = []

    def lines(self, child) -> list[str]:
        data, self.offset = child.stderr_since(self.offset)
        if not data:
            return []
        *whole, self.partial = (self.partial + data).split(b"\n")
        out = [line.decode(errors="replace") for line in whole]
        self.text += out
        return out

    def tail(self) -> str:
        return "\n".join(self.text + ([self.partial.decode(errors="replace")] if self.partial else []))[-STDERR_KEEP:]


def messages(line: str, host: str) -> dict[str, Any] | None:
    """The message a progress line of ``perflab run`` makes, if any."""
    m = RUN_LINE.match(line)
    if m:
        return {"k": "run", "host": host, "run_id": m.group(1), "claims": int(m.group(2))}
    m = CLAIM_LINE.match(line)
    if m:
        return {"k": "claim", "host": host, "i": int(m.group(1)), "n": int(m.group(2)), "claim": m.group(3)}
    return None


def run_host(fleet_id: str, host: str, run_args: list[str], timeout_s: float | None) -> dict[str, Any]:
    """The Dask task: run the claims on this worker's host; returns how it ended (status
    complete, failed, timeout, stopped or refused), its record lines and stderr's tail."""
    from distributed import Event, Queue

    started = Event(event_name(fleet_id, "started", host))
    stops = [Event(event_name(fleet_id, "stop")), Event(event_name(fleet_id, "stop", host))]
    t0 = time.monotonic()
    result: dict[str, Any] = {"host": host, "status": "", "reason": "", "returncode": None, "lines": [],
                              "stderr": "", "elapsed_s": 0.0, "pid": os.getpid()}
    if started.is_set():
        return {**result, "status": "refused",
                "reason": "this host's task was started once already and its worker lost: never run again"}
    started.set()
    if any(e.is_set() for e in stops):
        return {**result, "status": "stopped", "reason": "stopped before it started"}
    queue = Queue(queue_name(fleet_id))
    try:
        queue.put({"k": "start", "host": host, "pid": os.getpid()})
        with tempfile.TemporaryDirectory(prefix="perflab-fleet-") as tmp:
            out = _supervise(command(run_args, os.path.join(tmp, "fleet.db")), timeout_s, host,
                             lambda: any(e.is_set() for e in stops), queue.put)
        result.update(out, elapsed_s=round(time.monotonic() - t0, 3))
        if result["status"] == "stopped":
            queue.put({"k": "stopped", "host": host})
    finally:
        queue.close()  # this worker's hold on the queue (the scheduler counts its users)
    return result


def _supervise(argv: list[str], timeout_s: float | None, host: str, stop: Callable[[], bool],
               send: Callable[[dict], None]) -> dict[str, Any]:
    """Run ``argv`` to its end, a stop or its timeout, sending each record line and each
    progress message as it comes, in the order the run wrote them (_Ordered)."""
    from perflab.core.errors import KernelFailed
    from perflab.engine.process import Child, describe_exit

    err = _Stderr()
    order = _Ordered(host, send)
    partial = b""
    try:
        child = Child(argv, timeout_s=timeout_s, interactive=True)
    except KernelFailed as exc:
        return {"status": "failed", "reason": str(exc), "lines": []}
    stopped = False
    with child:  # leaving, by any path, kills what is left of the group
        child.close_stdin()
        asked = time.monotonic()
        eof = False
        while not eof:
            data, eof = child.read_stdout(POLL_S)
            got = data
            while data and not eof:  # everything the pipe holds now
                data, eof = child.read_stdout(0)
                got += data
            *whole, partial = (partial + got).split(b"\n")
            # stderr after stdout: it holds every progress line written before those records
            order.add(err.lines(child), [raw.decode(errors="replace") for raw in whole if raw.strip()])
            if not stopped and time.monotonic() - asked >= STOP_EVERY_S:
                asked = time.monotonic()
                if stop():
                    stopped = True
                    child.kill()
        rc = child.wait()
        last = [partial.decode(errors="replace")] if partial.strip() else []  # a last line without its newline
        order.add(err.lines(child), last)
        order.flush()
        timed_out = child.timed_out
    out: dict[str, Any] = {"returncode": rc, "lines": order.lines, "stderr": err.tail()}
    if stopped:
        return {**out, "status": "stopped", "reason": "stopped (the fleet was interrupted or gave up on this host)"}
    if timed_out:
        return {**out, "status": "timeout", "reason": f"timed out after {timeout_s:g} s (process group killed)"}
    if rc != 0:
        last_err = next((t for t in reversed(err.text) if t.strip()), "")
        return {**out, "status": "failed",
                "reason": f"perflab run {describe_exit(rc)}" + (f": {last_err}" if last_err else "")}
    return {**out, "status": "complete", "reason": ""}


class _Ordered:
    """Progress messages and records sent in the order the run wrote them, though they come
    from two pipes read in turn. cli/run.py announces each record on stderr (its line
    ``[i/N] CLAIM: OUTCOME``) just before printing it on stdout, and the next claim's start
    line comes after, so a message waits until every record announced before it has been
    sent; stderr is read after stdout, so a start line written before a record is in hand
    when that record is. (A claim measured again at the end, its A/A control having
    failed, announces nothing until then, and holds nothing up.)"""

    def __init__(self, host: str, send: Callable[[dict], None]):
        self.host = host
        self.send = send
        self.announced = 0
        self.held: list[tuple[int, dict[str, Any]]] = []  # (records it waits for, message)
        self.lines: list[str] = []

    def add(self, progress: list[str], records: list[str]) -> None:
        for text in progress:
            if DONE_LINE.match(text):
                self.announced += 1
                continue
            msg = messages(text, self.host)
            if msg:
                self.held.append((self.announced, msg))
        self._release()
        for line in records:
            self.lines.append(line)
            self.send({"k": "record", "host": self.host, "line": line})
            self._release()

    def _release(self) -> None:
        while self.held and self.held[0][0] <= len(self.lines):
            self.send(self.held.pop(0)[1])

    def flush(self) -> None:
        for _, msg in self.held:
            self.send(msg)
        self.held = []
