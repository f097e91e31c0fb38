"""The command line as a user meets it: subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import subprocess
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import alive, as_nobody, cli
from perflab.results.store import Store
from perflab.results.store.schema import SCHEMA_VERSION


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
    Store(db).close()  # an empty perflab database
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
    Store(db).close()
    one_line_error(cli("show", "--db", str(db)), 1, "no runs")


@pytest.mark.parametrize("command", [["show"], ["history", "io.epoll-flat"]])
def test_reading_commands_never_create_a_database(command, tmp_path):
    where = tmp_path / "typo" / "perflab.db"
    one_line_error(cli(*command, "--db", str(where)), 1, "no database at")
    assert not (tmp_path / "typo").exists()


def test_reading_commands_work_on_a_database_they_cannot_write(nobody_python):
    # a directory nobody may read but not write (pytest's own tmp_path is root-only)
    where = Path(tempfile.mkdtemp(prefix="perflab-ro-", dir="/tmp"))
    db = where / "perflab.db"
    try:
        assert cli("run", "space.kthread-no-user", "--db", str(db)).returncode == 0
        for f in where.iterdir():
            f.chmod(0o444)
        where.chmod(0o555)  # no -shm or -journal can be created beside it either
        for command in (["show", "--json"], ["history", "space.kthread-no-user", "--json"]):
            p = as_nobody(nobody_python, *command, "--db", str(db))
            assert p.returncode == 0, p.stderr
            rows = [json.loads(line) for line in p.stdout.splitlines()]
            assert len(rows) == 1 and rows[0].get("claim", "space.kthread-no-user") == "space.kthread-no-user"
        # changes still in a -wal that nobody cannot index: refused, never shown stale
        where.chmod(0o755)
        writer = sqlite3.connect(db)
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("UPDATE runs SET status = 'changed'")
        writer.commit()
        shutil.copy(db, where / "copy.db")
        shutil.copy(f"{db}-wal", where / "copy.db-wal")
        writer.close()
        for f in where.iterdir():
            f.chmod(0o444)
        where.chmod(0o555)
        p = as_nobody(nobody_python, "show", "--db", str(where / "copy.db"))
        assert p.returncode == 1 and "-wal holds changes" in p.stderr, p.stderr
    finally:
        where.chmod(0o755)
        shutil.rmtree(where)


@pytest.mark.parametrize("args,needle", [
    (["show", "%"], "no run matches"),          # a literal prefix, not a LIKE pattern
    (["show", "____"], "no run matches"),
    (["show", ""], "empty run id"),
    (["show", "--db", ""], "--db needs a path"),
    (["run", "space.kthread-no-user", "--seed", "99999999999999999999"], "outside 0..2^63-1"),
    (["run", "space.kthread-no-user", "--seed", "-1"], "outside 0..2^63-1"),
    (["run", "space.kthread-no-user", "--cpu", "-1"], "not available"),
    (["trace", "-o", "", "--", "true"], "-o needs a file name"),
])
def test_more_usage_errors(args, needle, db, plugin):
    assert cli("run", "fake.ok", "--db", str(db), env=plugin["env"]).returncode == 0
    extra = [] if "--db" in args else ["--db", str(db)]
    if args[0] == "trace":
        extra = []
    one_line_error(cli(*args, *extra, env=plugin["env"]), 2, needle)


def test_trace_output_that_cannot_be_written_is_refused_before_the_command_runs(tmp_path):
    marker = tmp_path / "ran"
    p = cli("trace", "-o", str(tmp_path), "--", "touch", str(marker))
    one_line_error(p, 1, "cannot write the report")
    assert not marker.exists()


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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT])
def test_killing_a_run_mid_experiment_leaves_no_descendant(db, plugin, sig):
    env = {**os.environ, **plugin["env"]}
    # A shell's background job starts with SIGINT ignored, and Python then leaves it
    # ignored: give the run the default disposition a user's terminal gives it.
    proc = subprocess.Popen([sys.executable, "-m", "perflab", "run", "fake.ok", "fake.hang", "--db", str(db)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: [signal.signal(signal.SIGINT, signal.SIG_DFL),
                                                signal.signal(signal.SIGHUP, signal.SIG_DFL)])
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
    assert [v.claim for v in s.verdicts(run_id)] == ["fake.ok"]
    assert s.run_info(run_id).status == "interrupted"


def test_a_database_that_fills_up_mid_run_loses_no_verdict(db, monkeypatch, capsys):
    """The second verdict cannot be stored (ENOSPC, simulated): it is still printed, the
    run is marked failed (not interrupted) and the exit status is 1."""
    from perflab.cli import main as cli_main
    from perflab.core.errors import EnvironmentRefused

    real = Store.save_verdict
    calls = []

    def save_verdict(self, run_id, verdict):
        calls.append(verdict.claim)
        if len(calls) == 2:
            raise EnvironmentRefused(f"cannot write to database {self.path}: database or disk is full")
        return real(self, run_id, verdict)

    monkeypatch.setattr(Store, "save_verdict", save_verdict)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
    try:
        code = cli_main.main(["run", "space.kthread-no-user", "task.thread-is-task", "--json", "--db", str(db)])
    finally:  # main() installs its own; give pytest its own back
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    out, err = capsys.readouterr()
    assert code == 1 and "disk is full" in err
    assert [json.loads(line)["claim"] for line in out.splitlines()] == ["space.kthread-no-user", "task.thread-is-task"]
    s = Store(db)
    run_id = s.resolve_run("last")
    assert s.run_info(run_id).status == "failed"
    assert [v.claim for v in s.verdicts(run_id)] == ["space.kthread-no-user"]


def test_a_closed_stdout_stops_the_run_with_status_1(db, plugin):
    # the reader exits at once; perflab's first write meets a closed pipe
    p = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m perflab run fake.ok --json --db {db}"
                        " | (exec 0<&-; true)"], capture_output=True, text=True,
                       env={**os.environ, **plugin["env"]}, timeout=120)
    assert p.returncode == 1 and "broken pipe" in p.stderr and "Traceback" not in p.stderr, p.stderr
    s = Store(db)  # the verdict the reader never saw is stored; the run stopped there
    run_id = s.resolve_run("last")
    assert [v.claim for v in s.verdicts(run_id)] == ["fake.ok"]
    assert s.run_info(run_id).status == "interrupted"


def test_a_failed_trace_leaves_an_earlier_report_alone(tmp_path):
    report = tmp_path / "rep.txt"
    report.write_text("the earlier report\n")
    p = cli("trace", "-o", str(report), "--", str(tmp_path / "no-such-command"))
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert report.read_text() == "the earlier report\n"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["rep.txt"]  # no temporary file left


def test_a_hung_up_terminal_still_ends_the_run_as_interrupted(db, plugin):
    """SIGHUP after the terminal went away: every write to it fails (EIO), and none of
    those failures may keep the run 'running' or leave a kernel alive."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "perflab", "run", "fake.ok", "fake.hang", "--db", str(db)],
                            env={**os.environ, **plugin["env"]}, stdin=follower, stdout=follower, stderr=follower,
                            preexec_fn=lambda: [signal.signal(signal.SIGINT, signal.SIG_DFL),
                                                signal.signal(signal.SIGHUP, signal.SIG_DFL)])
    os.close(follower)
    try:
        deadline = time.monotonic() + 30
        while not (plugin["pidfile"].exists() and plugin["pidfile"].read_text().strip()):
            assert time.monotonic() < deadline and proc.poll() is None
            try:  # keep the pty drained while the run starts
                os.read(leader, 65536) if select.select([leader], [], [], 0.05)[0] else None
            except OSError:
                pass
        grandchild = int(plugin["pidfile"].read_text().split()[0])
    finally:
        os.close(leader)  # the terminal goes away: writes to it now fail with EIO
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=30) == 130
    time.sleep(0.2)
    assert not alive(grandchild)
    s = Store(db)
    assert s.run_info(s.resolve_run("last")).status == "interrupted"


def test_a_run_killed_outright_is_shown_abandoned(db, plugin):
    """kill -9 leaves the run 'running' in the database; the next command that opens it
    sees the run's process is gone: history and show say 'abandoned' (read-only: without
    writing it), and the next writer records it."""
    env = {**os.environ, **plugin["env"]}
    proc = subprocess.Popen([sys.executable, "-m", "perflab", "run", "fake.ok", "fake.hang", "--db", str(db)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not (plugin["pidfile"].exists() and plugin["pidfile"].read_text().strip()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    grandchild = int(plugin["pidfile"].read_text().split()[0])
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while alive(grandchild):  # PR_SET_PDEATHSIG (launch) kills the kernel's shell with perflab
        assert time.monotonic() < deadline
        time.sleep(0.05)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM runs").fetchone()[0] == "running"
    conn.close()
    runs = [json.loads(line) for line in cli("history", "--json", "--db", str(db)).stdout.splitlines()]
    assert [r["status"] for r in runs] == ["abandoned"]
    hist = [json.loads(line) for line in cli("history", "fake.ok", "--json", "--db", str(db), env=plugin["env"]).stdout.splitlines()]
    assert hist[0]["status"] == "abandoned" and hist[0]["outcome"] == "supported"
    assert "abandoned" in cli("show", "--db", str(db)).stderr
    Store(db).close()  # a writer marks it for good
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT status FROM runs").fetchone()[0] == "abandoned"


def test_a_running_run_is_not_abandoned(db, plugin):
    env = {**os.environ, **plugin["env"]}
    proc = subprocess.Popen([sys.executable, "-m", "perflab", "run", "fake.hang", "--db", str(db)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not (plugin["pidfile"].exists() and plugin["pidfile"].read_text().strip()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        Store(db).close()
        runs = [json.loads(line) for line in cli("history", "--json", "--db", str(db)).stdout.splitlines()]
        assert [r["status"] for r in runs] == ["running"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_json_lines_validate_against_the_shipped_schema(db, plugin):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(cli("schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    p = cli("run", "fake.crash", "fake.ok", "fake.unsupported", "--json", "--samples", "--db", str(db),
            env=plugin["env"])
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    shown = [json.loads(line) for line in cli("show", "--json", "--db", str(db)).stdout.splitlines()]
    for rec in lines + shown:
        jsonschema.validate(rec, schema)
        assert rec["schema_version"] == 2
    ok = next(r for r in lines if r["claim"] == "fake.ok")
    assert ok["series"][0]["points"][0]["samples"] and ok["samples"][0]["record"] == {"v": 1.0}
    assert "samples" not in shown[1]["series"][0]["points"][0]  # only with --samples
