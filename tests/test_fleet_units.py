"""The fleet's parts without a cluster: which hosts may run the claims, the error records
of claims that never came back, the task's supervision of ``perflab run`` (order of its
messages, stop, timeout, failure), the probe sent by value, and the one-line errors."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import time

import jsonschema
import pytest

from conftest import cli, dies
from perflab import __version__
from perflab.core.errors import UsageError
from perflab.core.record import SCHEMA_VERSION, Host, Outcome
from perflab.core.schema import SCHEMA
from perflab.engine import registry
from perflab.fleet import hosts, lost, probe, task
from perflab.results import fleet_view

GOOD = {"perflab": __version__, "record_schema": SCHEMA_VERSION, "protocol": probe.PROTOCOL, "kernels_built": True,
        "facts": {"machine": "m1", "hostname": "a"}}


def worker(name="hostA", resources=None, **probed) -> hosts.Worker:
    return hosts.Worker(name, f"tcp://127.0.0.1:{len(name)}", {"bench": 1} if resources is None else resources, 1,
                        {**GOOD, **probed})


@pytest.mark.parametrize("w,why", [
    (worker(), None),
    (worker(resources={}), "offers no bench slot: start it with 'dask worker ... --resources bench=1'"),
    (hosts.Worker("h", "a", {"bench": 1}, 1, {"error": "perflab cannot be imported there (ImportError: x)"}),
     "perflab cannot be imported there (ImportError: x): install perflab"),
    (worker(perflab="0.0.1"), f"perflab 0.0.1 there, {__version__} here"),
    (worker(incomplete="ImportError: no perflab.core"), "cannot be loaded (ImportError: no perflab.core)"),
    (worker(record_schema=SCHEMA_VERSION + 1), f"records of version {SCHEMA_VERSION + 1}"),
    (worker(protocol=None), "speaks fleet protocol None"),
    (worker(kernels_built=False), "kernels are not built there"),
])
def test_which_hosts_may_run_the_claims(w, why):
    got = hosts.refusal(w)
    assert got is None if why is None else why in got


def test_hosts_are_chosen_by_name_and_an_unknown_one_is_a_usage_error():
    ws = [worker("hostA"), worker("hostB"), worker("hostC")]
    assert [w.name for w in hosts.choose(ws, None)] == ["hostA", "hostB", "hostC"]
    assert [w.name for w in hosts.choose(ws, ["hostC", "hostA", "hostC"])] == ["hostC", "hostA"]
    with pytest.raises(UsageError, match=r"no worker named 'x', 'y' at the scheduler \(workers: hostA, hostB, hostC\)"):
        hosts.choose(ws, ["x", "hostA", "y"])
    assert hosts.shared_machines([worker("a"), worker("b"), worker("c", facts={"machine": "m2"})]) == [["a", "b"]]


def test_the_claims_a_lost_host_never_sent_back_are_error_records():
    claims = registry.select(["space.syscall-in-context", "clone.thread-flags", "io.select-linear"])
    host = Host.from_json({"hostname": "b", "cpu_model": "X", "cores_online": 4})
    made = lost.missing(claims, {"clone.thread-flags"}, host, why=lost.LOST, detail="its worker died (KilledWorker)",
                        fleet_id="fleet-x", host_name="hostB", run_id="r1", budget="quick", seed=9)
    assert [v.claim for v in made] == ["space.syscall-in-context", "io.select-linear"]
    for v in made:
        rec = v.to_json()
        jsonschema.validate(rec, SCHEMA)
        assert rec["outcome"] == "error" and rec["reason"] is None
        assert rec["summary"].startswith("error: host lost: its worker died (KilledWorker); no verdict came back")
        assert rec["evidence"]["fleet"] == {"id": "fleet-x", "host": "hostB", "why": "host lost",
                                            "detail": "its worker died (KilledWorker)"}
        assert rec["rerun"] == f"perflab run {v.claim} --seed 9 --budget quick" and rec["source_hash"]
        assert v.host.hostname == "b" and v.statement
    assert fleet_view.cell(made[0]) == "error (host lost)" and lost.why(made[0]) == lost.LOST
    assert made[0].outcome is Outcome.ERROR


def test_the_progress_lines_of_perflab_run_are_read(db, plugin):
    """The task reads what cli/run.py writes on stderr: if that changes, this fails."""
    p = cli("run", "fake.ok", "--quick", "--json", "--db", str(db), env=plugin["env"])
    assert p.returncode == 0, p.stderr
    got = [m for m in (task.messages(line, "h") for line in p.stderr.splitlines()) if m]
    run_id = json.loads(p.stdout)["run_id"]
    assert got == [{"k": "run", "host": "h", "run_id": run_id, "claims": 1},
                   {"k": "claim", "host": "h", "i": 1, "n": 1, "claim": "fake.ok"}]


def script(text: str) -> list[str]:
    return ["/bin/sh", "-c", textwrap.dedent(text)]


def supervise(argv, timeout_s=None, stop=lambda: False):
    sent: list[dict] = []
    return task._supervise(argv, timeout_s, "h", stop, sent.append), sent


def kinds(sent: list[dict]) -> list[tuple[str, str]]:
    return [(m["k"], m.get("claim") or m.get("line") or m.get("run_id")) for m in sent]


def test_a_start_line_read_before_the_record_announced_ahead_of_it_waits_for_it():
    sent: list[dict] = []
    order = task._Ordered("h", sent.append)
    order.add(["perflab: run R1, 2 claim(s), budget quick", "perflab: [1/2] a.one ...",
               "perflab: [1/2] a.one: supported (0.1 s)", "perflab: [2/2] a.two ..."], [])
    assert kinds(sent) == [("run", "R1"), ("claim", "a.one")]  # a.one's record is announced, not read yet
    order.add([], ['{"claim": "a.one"}'])
    assert kinds(sent)[2:] == [("record", '{"claim": "a.one"}'), ("claim", "a.two")]


def test_the_task_sends_records_and_progress_in_the_order_they_were_written():
    out, sent = supervise(script("""
        echo 'perflab: run R1, 2 claim(s), budget quick' >&2
        echo 'perflab: [1/2] a.one ...' >&2
        echo 'perflab: [1/2] a.one: supported (0.1 s)' >&2
        echo '{"claim": "a.one"}'
        sleep 0.3
        echo 'perflab: [2/2] a.two ...' >&2
        echo 'perflab: [2/2] a.two: refuted (0.1 s)' >&2
        printf '{"claim": "a.two"}'
    """))
    assert out["status"] == "complete" and out["returncode"] == 0
    assert out["lines"] == ['{"claim": "a.one"}', '{"claim": "a.two"}']  # the last one had no newline
    assert kinds(sent) == [
        ("run", "R1"), ("claim", "a.one"), ("record", '{"claim": "a.one"}'), ("claim", "a.two"),
        ("record", '{"claim": "a.two"}')]


def test_a_stopped_task_kills_its_whole_process_group(tmp_path):
    pids = tmp_path / "pids"
    asked = time.monotonic() + 1.5
    t0 = time.monotonic()
    out, _ = supervise(script(f"sleep 300 & echo $! > {pids}; wait"), stop=lambda: time.monotonic() > asked)
    assert out["status"] == "stopped" and time.monotonic() - t0 < 10
    assert dies(int(pids.read_text()))


def test_a_task_past_its_timeout_is_killed_and_says_so(tmp_path):
    pids = tmp_path / "pids"
    out, _ = supervise(script(f"sleep 300 & echo $! > {pids}; wait"), timeout_s=0.5)
    assert out["status"] == "timeout" and out["reason"] == "timed out after 0.5 s (process group killed)"
    assert dies(int(pids.read_text()))


def test_a_run_that_fails_says_why():
    out, _ = supervise(script("echo 'perflab: cannot use database /x: full' >&2; exit 1"))
    assert out["status"] == "failed" and out["reason"] == "perflab run exited 1: perflab: cannot use database /x: full"
    assert "cannot use database" in out["stderr"]


def test_the_probe_travels_by_value_and_says_when_perflab_is_not_there():
    cloudpickle = pytest.importorskip("cloudpickle")
    here = probe.describe()
    assert (here["perflab"], here["record_schema"], here["protocol"], here["kernels_built"]) == (
        __version__, SCHEMA_VERSION, probe.PROTOCOL, True)
    assert here["facts"]["hostname"] == os.uname().nodename
    probe.by_value()
    blob = cloudpickle.dumps(probe.describe)
    code = ("import json, pickle, sys; sys.modules['perflab'] = None; "  # a worker where perflab is not installed
            "print(json.dumps(pickle.loads(sys.stdin.buffer.read())()))")
    p = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["error"].startswith("perflab cannot be imported there (ModuleNotFoundError")
    assert pickle.loads(blob)()["perflab"] == __version__


def one_line(p, code: int, text: str) -> None:
    assert p.returncode == code, p.stderr
    assert len(p.stderr.splitlines()) == 1 and text in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_without_distributed_the_fleet_says_how_to_install_it():
    code = ("import sys; sys.modules['distributed'] = None; sys.argv = ['perflab', 'fleet', 'status', "
            "'--scheduler', 'tcp://127.0.0.1:9']; from perflab.cli.main import entry; entry()")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    one_line(p, 1, "perflab fleet needs dask's distributed (")
    assert p.stderr.rstrip().endswith("pip install 'perflab[fleet]'")


@pytest.mark.parametrize("args,code,text", [
    (["fleet", "status"], 2, "say which scheduler: --scheduler tcp://HOST:8786"),
    (["fleet", "status", "--scheduler", "tcp://127.0.0.1:9", "--tls-cert", "c.pem"], 2, "TLS needs all three"),
    (["fleet", "run", "no.such-claim", "--scheduler", "tcp://127.0.0.1:9"], 2, "no.such-claim"),
    (["fleet", "run", "io.select-linear", "--param", "max_fds=x", "--scheduler", "tcp://127.0.0.1:9"], 2, "max_fds"),
    (["fleet", "run", "--host-timeout", "0", "--scheduler", "tcp://127.0.0.1:9"], 2, "not a number of seconds above 0"),
    (["fleet", "run", "--hosts", ",", "--scheduler", "tcp://127.0.0.1:9"], 2, "no host name in ','"),
])
def test_usage_errors_are_one_line_before_any_connection(args, code, text, db):
    one_line(cli(*args, "--db", str(db)) if args[1] == "run" else cli(*args), code, text)
