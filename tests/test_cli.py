"""The command line as a user meets it: subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import alive, cli
from perflab.store import Store
from perflab.store.schema import SCHEMA_VERSION


def one_line_error(proc: subprocess.CompletedProcess, code: int, needle: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0] and "Traceback" not in proc.stderr


def test_version_and_list():
    from perflab import __version__

    assert cli("--version").stdout.strip() == f"perflab {__version__}"
    rows = [json.loads(line) for line in cli("list", "--json").stdout.splitlines()]
    ids = {r["claim"] for r in rows}
    assert {"io.select-linear", "io.poll-linear", "io.epoll-flat", "io.epoll-needs-edge",
            "io.epoll-all-ready", "space.syscall-in-context"} <= ids
    assert all(r["runnable"] is True or r["reason"] for r in rows)


@pytest.mark.parametrize(
    "args,code,needle",
    [
        (["run", "io.epol-flat"], 2, "did you mean io.epoll-flat"),
        (["run", "nosuchtopic"], 2, "unknown claim or topic"),
        (["run", "io", "--param", "max_fds=abc"], 2, "not an integer"),
        (["run", "io", "--param", "max_fds=-5"], 2, "out of range"),
        (["run", "io", "--param", "bogus=1"], 2, "unknown parameter 'bogus'"),
        (["run", "io", "--param", "novalue"], 2, "expected NAME=VALUE"),
        (["run", "io", "--cpu", "4096"], 2, "not available"),
        (["run", "--budget", "huge"], 2, "invalid choice"),
        (["run", "--frobnicate"], 2, "unrecognized arguments"),
        (["history", "io"], 2, "one claim id"),
        (["show", "nope"], 2, "no run matches"),
    ],
)
def test_usage_errors(args, code, needle, db):
    one_line_error(cli(*args, "--db", str(db)), code, needle)


def test_unwritable_database_is_exit_1(tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("")
    one_line_error(cli("run", "space", "--db", str(blocker / "x.db")), 1, "cannot use database")


def test_newer_schema_is_refused_and_nothing_is_lost(db, plugin):
    assert cli("run", "fake.ok", "--db", str(db), env=plugin["env"]).returncode == 0
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.commit()
    conn.close()
    one_line_error(cli("run", "fake.ok", "--db", str(db), env=plugin["env"]), 1, "newer than this perflab")
    one_line_error(cli("show", "last", "--db", str(db)), 1, "newer than this perflab")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == 1


def test_show_last_on_an_empty_database(db):
    one_line_error(cli("show", "--db", str(db)), 1, "no runs")


def test_plugin_claims_errors_and_skips_do_not_stop_the_run(db, plugin):
    p = cli("run", "fake.crash", "fake.ok", "fake.garbage", "fake.unsupported", "fake.ok", "--json",
            "--db", str(db), env=plugin["env"])
    assert p.returncode == 0, p.stderr
    recs = {r["claim"]: r for r in map(json.loads, p.stdout.splitlines())}
    assert list(recs) == ["fake.crash", "fake.ok", "fake.garbage", "fake.unsupported"]  # duplicates removed
    assert recs["fake.crash"]["outcome"] == "error"
    assert "SIGSEGV" in recs["fake.crash"]["summary"]
    assert "kernel exploded" in recs["fake.crash"]["evidence"]["stderr"]
    assert recs["fake.garbage"]["outcome"] == "error" and "no JSON record" in recs["fake.garbage"]["summary"]
    assert recs["fake.unsupported"]["outcome"] == "skipped"
    assert "flux capacitor" in recs["fake.unsupported"]["summary"]
    assert recs["fake.ok"]["outcome"] == "supported"
    # show last replays the same records from the database; history lists the claim
    shown = [json.loads(line) for line in cli("show", "last", "--json", "--db", str(db)).stdout.splitlines()]
    assert shown == list(recs.values())
    hist = [json.loads(line) for line in cli("history", "fake.ok", "--json", "--db", str(db), env=plugin["env"]).stdout.splitlines()]
    assert hist[-1]["outcome"] == "supported"
    table = cli("show", "last", "--db", str(db))
    assert table.returncode == 0 and "fake.crash" in table.stdout


def test_a_hung_kernel_times_out_and_its_group_is_killed(db, plugin):
    p = cli("run", "fake.timeout", "--json", "--db", str(db), env=plugin["env"])
    assert p.returncode == 0
    rec = json.loads(p.stdout)
    assert rec["outcome"] == "error" and "timed out" in rec["summary"]
    pid = int(plugin["pidfile"].read_text().split()[0])
    assert not alive(pid)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_killing_a_run_mid_experiment_leaves_no_descendant(db, plugin, sig):
    env = {**os.environ, **plugin["env"]}
    # A shell's background job starts with SIGINT ignored, and Python then leaves it
    # ignored: give the run the default disposition a user's terminal gives it.
    proc = subprocess.Popen([sys.executable, "-m", "perflab", "run", "fake.ok", "fake.hang", "--db", str(db)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while not (plugin["pidfile"].exists() and plugin["pidfile"].read_text().strip()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    grandchild = int(plugin["pidfile"].read_text().split()[0])
    assert alive(grandchild)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    time.sleep(0.2)
    assert not alive(grandchild)
    # what finished before the interrupt is kept, and the run is marked as interrupted
    s = Store(db)
    run_id = s.resolve_run("last")
    assert [r["claim"] for r in s.results(run_id)] == ["fake.ok"]
    assert s.run_info(run_id)["status"] == "interrupted"
