"""A real Dask cluster on loopback for the fleet's tests: ``dask scheduler`` and ``dask
worker`` processes on 127.0.0.1, each the leader of its own process group, so that a
finalizer (or a test's SIGKILL, standing for a host that dies) ends each one whole. Each
is started through perflab's launch kernel (kernels/launch.c: a parent-death signal, then
SIGKILL to its whole group), so that even a test run killed outright leaves none behind.

Nothing here listens on or connects to an address outside 127.0.0.0/8: the scheduler and
every worker are given ``--host 127.0.0.1`` and ``--dashboard-address 127.0.0.1:0``, and
``foreign_sockets`` checks, from
/proc/net/{tcp,tcp6,udp,udp6} (proc(5)), every socket the cluster's processes hold.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DASK = str(Path(sys.executable).with_name("dask"))
START_TIMEOUT_S = 60.0


class Cluster:
    def __init__(self, workdir: Path, env: dict[str, str] | None = None):
        self.workdir = workdir
        self.env = {**os.environ, **(env or {})}
        self.procs: dict[str, subprocess.Popen] = {}
        self.address = ""

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        from perflab.engine.process import LAUNCH, kernel_path

        log = open(self.workdir / f"{name}.log", "w")
        try:
            p = subprocess.Popen([str(kernel_path(LAUNCH)), *argv], stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, env={**self.env, **(env or {})})
        finally:
            log.close()
        self.procs[name] = p
        return p

    def scheduler(self) -> str:
        sched_file = self.workdir / "scheduler.json"
        # the HTTP server (health, metrics) runs even with --no-dashboard, on all addresses
        # unless told: --dashboard-address keeps it on loopback too
        self._start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--dashboard-address", "127.0.0.1:0", "--no-show", "--scheduler-file",
                                  str(sched_file)])
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                self.address = json.loads(sched_file.read_text())["address"]
                return self.address
            except (FileNotFoundError, ValueError, KeyError):
                self._check_alive("scheduler")
                time.sleep(0.1)
        raise TimeoutError(f"the scheduler did not start: {self.log('scheduler')}")

    def worker(self, name: str, env: dict[str, str] | None = None, cpus: str | None = None) -> subprocess.Popen:
        """``dask worker`` as the README starts one per host, named ``name``; ``cpus``: the
        CPUs it may use (taskset(1)), so that hosts on one machine stand apart."""
        pin = ["taskset", "-c", cpus] if cpus is not None else []
        return self._start(name, [*pin, DASK, "worker", self.address, "--nworkers", "1", "--nthreads", "1",
                                  "--resources", "bench=1", "--name", name, "--host", "127.0.0.1",
                                  "--no-dashboard", "--dashboard-address", "127.0.0.1:0"], env)

    def wait_for(self, names: list[str]) -> None:
        """Until every named worker is at the scheduler."""
        from distributed import Client

        deadline = time.monotonic() + START_TIMEOUT_S
        with Client(self.address, timeout=START_TIMEOUT_S, set_as_default=False) as client:
            while time.monotonic() < deadline:
                there = {w["name"] for w in client.scheduler_info()["workers"].values()}
                if set(names) <= there:
                    return
                for n in names:
                    self._check_alive(n)
                time.sleep(0.2)
        raise TimeoutError(f"workers {names} did not arrive: " + " | ".join(self.log(n) for n in names))

    def _check_alive(self, name: str) -> None:
        if self.procs[name].poll() is not None:
            raise RuntimeError(f"{name} exited {self.procs[name].returncode}: {self.log(name)}")

    def log(self, name: str) -> str:
        try:
            return (self.workdir / f"{name}.log").read_text()[-3000:]
        except OSError:
            return ""

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """The process group of one of them (a worker: its nanny and worker process)."""
        try:
            os.killpg(self.procs[name].pid, sig)
        except ProcessLookupError:
            pass
        self.procs[name].wait(timeout=30)

    def pids(self) -> set[int]:
        """Every live process of the cluster's process groups."""
        groups = {p.pid for p in self.procs.values() if p.poll() is None}
        return {pid for pid in _all_pids() if _pgid(pid) in groups}

    def stop(self) -> None:
        """Every process group: SIGTERM (Dask closes itself), then SIGKILL what is left."""
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs.values():
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if p.poll() is None:
                p.wait(timeout=30)


def _all_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def perflab_runs(marker: str) -> list[int]:
    """Live processes whose command line holds ``perflab run`` and ``marker`` (the fleet's
    seed, unique to one test), zombies left out."""
    out = []
    for pid in _all_pids():
        args = cmdline(pid)
        text = " ".join(args)
        if "perflab" in text and " run " in f" {text} " and marker in args and _state(pid) not in ("Z", None):
            out.append(pid)
    return out


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _socket_inodes(pid: int) -> set[int]:
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                out.add(int(target[8:-1]))
    except OSError:
        pass
    return out


def _address(hex_addr: str) -> ipaddress._BaseAddress:
    """An address of /proc/net/tcp: hex, each 32-bit word in host byte order (little-endian here)."""
    raw = bytes.fromhex(hex_addr)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def _v4(addr: ipaddress._BaseAddress) -> ipaddress._BaseAddress:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def foreign_sockets(pids: set[int]) -> list[str]:
    """Sockets of these processes bound to an address outside loopback, or connected to
    one (an unconnected socket's remote, 0.0.0.0 or ::, reaches nothing)."""
    inodes = set().union(*(_socket_inodes(p) for p in pids)) if pids else set()
    bad = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[9]) not in inodes:
                continue
            local, remote = (_v4(_address(f.split(":")[0])) for f in fields[1:3])
            if not local.is_loopback or not (remote.is_loopback or remote.is_unspecified):
                bad.append(f"{table} {local} -> {remote}")
    return bad
