"""perflab fleet on a real Dask cluster on loopback: a scheduler and workers started as
separate processes (``dask scheduler`` / ``dask worker`` on 127.0.0.1), distinct
``--name``s standing for hosts. Two quick claims on two hosts come home under one fleet
id; a host whose worker is SIGKILLed mid-claim is reported lost while the other
completes; Ctrl-C and --host-timeout leave no perflab process behind; a host with
another perflab is refused and the others go on. Every process the tests start is a
process group ended by a finalizer (tests/loopback.py), whatever the outcome."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import jsonschema
import pytest

from conftest import cli
from loopback import Cluster, foreign_sockets, perflab_runs
from perflab.core.schema import SCHEMA
from perflab.results.store import Store

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two workers, hostA and hostB, torn down whole at the end."""
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        c.scheduler()
        c.worker("hostA")
        c.worker("hostB")
        c.wait_for(["hostA", "hostB"])
        yield c
    finally:
        c.stop()


def fleet(*args: str, db, cluster: Cluster, timeout: float = 180) -> subprocess.CompletedProcess:
    return cli("fleet", "run", *args, "--scheduler", cluster.address, "--db", str(db), timeout=timeout)


def start(*args: str, db, cluster: Cluster, tmp_path) -> tuple[subprocess.Popen, object]:
    """``perflab fleet run`` in the background: stderr piped (read for its progress),
    stdout to a file (a full pipe could block it)."""
    out = open(tmp_path / "stdout.jsonl", "w+")
    p = subprocess.Popen([sys.executable, "-m", "perflab", "fleet", "run", *args, "--scheduler", cluster.address,
                          "--db", str(db)], stdout=out, stderr=subprocess.PIPE, text=True, start_new_session=True)
    return p, out


def until(p: subprocess.Popen, text: str, seen: list[str], timeout: float = 90) -> None:
    """Read the client's stderr until a line holds ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            raise AssertionError(f"the client ended before {text!r}: {''.join(seen)}")
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"no {text!r} within {timeout} s: {''.join(seen)}")


def finish(p: subprocess.Popen, seen: list[str], timeout: float = 120) -> int:
    try:
        _, rest = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise
    seen.append(rest)
    return p.returncode


def gone(marker: str, timeout: float = 10) -> list[int]:
    """The perflab processes of this marker (a seed) still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    while perflab_runs(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return perflab_runs(marker)


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def background(request):
    """Clients started in the background are killed (their group) if a test fails."""
    procs: list[subprocess.Popen] = []

    def stop():
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    request.addfinalizer(stop)
    return procs


def test_two_hosts_home_under_one_fleet_then_one_host_lost(cluster, tmp_path, background):
    db = tmp_path / "fleet.db"
    claims = ["space.syscall-in-context", "clone.thread-flags"]
    p = fleet(*claims, "--quick", "--seed", "1301", "--json", db=db, cluster=cluster)
    assert p.returncode == 0, p.stderr
    got = records(p.stdout)
    assert sorted((r["fleet"]["host"], r["claim"]) for r in got) == sorted(
        (h, c) for h in ("hostA", "hostB") for c in claims)
    assert len({r["fleet"]["id"] for r in got}) == 1
    fleet_id = got[0]["fleet"]["id"]
    for r in got:
        jsonschema.validate(r, SCHEMA)
    # progress per host on stderr: host, claim i/N, elapsed
    assert any(line.startswith("perflab: hostB [2/2] clone.thread-flags") and line.endswith(" s)")
               for line in p.stderr.splitlines()), p.stderr
    with Store(db, readonly=True) as store:
        info = store.fleet(store.resolve_fleet(fleet_id))
        assert [(h.name, h.status) for h in info.hosts] == [("hostA", "complete"), ("hostB", "complete")]
        for h in info.hosts:
            run = store.run_info(h.run_id)
            assert run.status == "fleet" and run.argv[:5] == ["fleet", "run", fleet_id, "--host", h.name]
            assert sorted(v.claim for v in store.verdicts(h.run_id)) == sorted(claims)
        assert store.resolve_run(f"{fleet_id}@hostB") == info.hosts[1].run_id
    assert foreign_sockets(cluster.pids()) == []

    # a longer claim; hostB's worker (nanny and worker process) is SIGKILLed once it has begun
    proc, out = start("io.select-linear", "--quick", "--seed", "1302", "--hosts", "hostA,hostB", "--json", db=db,
                      cluster=cluster, tmp_path=tmp_path)
    background.append(proc)
    seen: list[str] = []
    until(proc, "hostB [1/1] io.select-linear ...", seen)
    cluster.kill("hostB")
    assert finish(proc, seen) == 0, "".join(seen)
    assert gone("1302") == [], "a perflab process of the fleet outlived it"
    err = "".join(seen)
    assert "hostB: LOST" in err and "hostA: complete" in err, err
    out.seek(0)
    by_host = {r["fleet"]["host"]: r for r in records(out.read())}
    assert by_host["hostB"]["outcome"] == "error" and "host lost" in by_host["hostB"]["summary"]
    assert by_host["hostA"]["outcome"] != "error", by_host["hostA"]["summary"]
    jsonschema.validate(by_host["hostB"], SCHEMA)
    with Store(db, readonly=True) as store:
        info = store.fleet(store.resolve_fleet("fleet-last"))
        assert {h.name: h.status for h in info.hosts} == {"hostA": "complete", "hostB": "lost"}
        lost = store.verdicts(info.host("hostB").run_id)
        assert [(v.claim, v.outcome.value) for v in lost] == [("io.select-linear", "error")]
        assert lost[0].evidence["fleet"]["why"] == "host lost"
    shown = cli("show", info.id, "--db", str(db))
    assert shown.returncode == 0 and "error (host lost)" in shown.stdout, shown.stderr


def test_ctrl_c_stops_every_task_and_leaves_no_perflab_process(cluster, tmp_path, background):
    db = tmp_path / "fleet.db"
    proc, _ = start("io.select-linear", "--seed", "1303", "--hosts", "hostA", db=db, cluster=cluster,
                    tmp_path=tmp_path)
    background.append(proc)
    seen: list[str] = []
    until(proc, "hostA [1/1] io.select-linear ...", seen)
    assert perflab_runs("1303"), "the claim is not running on hostA"
    proc.send_signal(signal.SIGINT)
    assert finish(proc, seen, timeout=60) == 130, "".join(seen)
    assert gone("1303", timeout=2) == [], "Ctrl-C left a perflab process on the worker"
    with Store(db, readonly=True) as store:
        info = store.fleet(store.resolve_fleet("fleet-last"))
    assert info.status == "interrupted" and info.hosts[0].status == "interrupted"
    assert "its task did not confirm" not in (info.hosts[0].reason or "")


def test_host_timeout_kills_the_run_and_records_its_claims(cluster, tmp_path):
    db = tmp_path / "fleet.db"
    p = fleet("io.select-linear", "io.poll-linear", "--seed", "1304", "--hosts", "hostA", "--host-timeout", "1",
              "--json", db=db, cluster=cluster)
    assert p.returncode == 0, p.stderr
    assert gone("1304") == []
    assert "hostA: TIMEOUT (timed out after 1 s" in p.stderr, p.stderr
    got = records(p.stdout)
    assert [r["claim"] for r in got] == ["io.select-linear", "io.poll-linear"]
    assert all(r["outcome"] == "error" and "host timed out" in r["summary"] for r in got)


def test_a_host_with_another_perflab_is_refused_and_the_others_go_on(cluster, tmp_path):
    old = tmp_path / "old" / "perflab"
    old.mkdir(parents=True)
    (old / "__init__.py").write_text('__version__ = "0.0.1"\n')
    cluster.worker("hostOld", env={"PYTHONPATH": str(old.parent)})
    try:
        cluster.wait_for(["hostOld"])
        status = cli("fleet", "status", "--scheduler", cluster.address, "--json")
        assert status.returncode == 0, status.stderr
        rows = {r["host"]: r for r in records(status.stdout)}
        assert rows["hostA"]["ready"] and rows["hostA"]["kernel"] and rows["hostA"]["cores_online"]
        assert not rows["hostOld"]["ready"] and "perflab 0.0.1 there" in rows["hostOld"]["why"]
        db = tmp_path / "fleet.db"
        p = fleet("clone.thread-flags", "--quick", "--seed", "1305", "--hosts", "hostOld,hostA", "--json", db=db,
                  cluster=cluster)
        assert p.returncode == 0, p.stderr
        assert "hostOld: refused: perflab 0.0.1 there" in p.stderr
        assert [(r["fleet"]["host"], r["claim"]) for r in records(p.stdout)] == [("hostA", "clone.thread-flags")]
        with Store(db, readonly=True) as store:
            info = store.fleet(store.resolve_fleet("fleet-last"))
        assert [(h.name, h.status, h.run_id is None) for h in info.hosts] == [("hostOld", "refused", True),
                                                                            ("hostA", "complete", False)]
        unknown = fleet("clone.thread-flags", "--hosts", "nosuch", db=db, cluster=cluster)
        assert unknown.returncode == 2 and len(unknown.stderr.splitlines()) == 1
        assert "no worker named 'nosuch'" in unknown.stderr and "hostA" in unknown.stderr
    finally:
        cluster.kill("hostOld", signal.SIGTERM)
