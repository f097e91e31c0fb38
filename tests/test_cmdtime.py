"""The cmdtime kernel keeps its protocol (docs/kernels.md, "cmdtime"): a record per
process with one value per run, exit 1 with the command's stderr for every way a
command fails (77 never: that is perflab's "skipped"), 2 for bad arguments."""

from __future__ import annotations

import os
import pytest

from perflab.core.errors import KernelFailed, KernelUnsupported
from perflab.engine import process

CPU = sorted(os.sched_getaffinity(0))[-1]


def cmdtime(*args: str, timeout: float = 30) -> dict:
    return process.run_kernel(["cmdtime", *args], timeout)


def failure(*args: str) -> KernelFailed:
    with pytest.raises(KernelFailed) as info:
        cmdtime(*args)
    return info.value


def test_a_record_with_one_value_per_run():
    rec = cmdtime(f"--cpu={CPU}", "--runs=3", "--label=mine.x", "--", "sleep", "0.01")
    assert rec["kernel"] == "cmdtime" and rec["variant"] == "wall" and rec["cpu"] == CPU
    assert rec["label"] == "mine.x" and rec["argv"] == ["sleep", "0.01"] and rec["path"].endswith("/sleep")
    assert rec["runs"] == 3 and all(len(rec[k]) == 3 for k in ("wall_ns", "user_ns", "sys_ns", "maxrss_kib"))
    # the sleep plus a process's start and exit (about 1 to 2 ms), measured in C; the fastest
    # run, since another process of this shared machine may take the CPU during any one
    assert 10e6 <= min(rec["wall_ns"]) < 15e6, rec["wall_ns"]
    assert 0 < rec["timer_overhead_ns"] < 1000


def test_each_run_is_a_fresh_process_and_the_regex_reads_its_stdout():
    rec = cmdtime("--runs=4", "--regex=pid ([0-9]+)", "--", "sh", "-c", "echo pid $$")
    assert rec["variant"] == "regex" and len(set(rec["values"])) == 4  # four processes
    assert rec["match"].startswith("pid ") and rec["stdout_bytes"][0] > 0


def test_the_whole_match_without_a_group_and_a_number_in_any_form():
    assert cmdtime("--regex=[0-9.e+-]+$", "--", "echo", "took 1.5e+3")["values"] == [1500.0]


def test_relative_paths_are_the_claim_files_directory(tmp_path):
    (tmp_path / "figure").write_text("42\n")
    assert cmdtime(f"--chdir={tmp_path}", "--regex=^([0-9]+)$", "--", "cat", "figure")["values"] == [42.0]


@pytest.mark.parametrize("argv,stderr,says", [
    (["no-such-command-perflab"], "", "command not found: no-such-command-perflab"),
    (["./nope"], "", "cannot execute ./nope"),
    (["sh", "-c", "echo 'disk on fire' >&2; exit 3"], "disk on fire", "the command exited 3 (run 1 of 2)"),
    (["sh", "-c", "echo 'needs a flux capacitor' >&2; exit 77"], "flux capacitor", "the command exited 77"),
    (["sh", "-c", "kill -SEGV $$"], "", "killed by signal SIGSEGV"),
])
def test_a_failed_command_is_a_kernel_failure_with_its_stderr(argv, stderr, says):
    exc = failure("--runs=2", "--", *argv)
    assert exc.returncode == 1 and stderr in exc.stderr and says in exc.stderr.strip().splitlines()[-1], exc.stderr


def test_a_run_past_its_timeout_is_killed():
    exc = failure("--timeout-ms=200", "--", "sh", "-c", "echo 'still working' >&2; exec sleep 30")
    assert "still working" in exc.stderr and "ran past its timeout of 200 ms" in exc.stderr


def test_perflabs_own_timeout_kills_the_process_group():
    with pytest.raises(KernelFailed, match="timed out after 0.5 s") as info:
        cmdtime("--", "sh", "-c", "echo 'hung' >&2; sleep 30", timeout=0.5)
    assert "hung" in info.value.stderr


def test_no_match_shows_the_end_of_stdout_and_keeps_stderr():
    exc = failure("--regex=took ([0-9.]+) ms", "--", "sh", "-c", "echo hello; echo 'warning: no timer' >&2")
    assert "warning: no timer" in exc.stderr and "hello" in exc.stderr
    assert "no match for the regular expression 'took ([0-9.]+) ms'" in exc.stderr.strip().splitlines()[-1]


def test_a_match_that_is_not_a_number():
    exc = failure("--regex=took (\\S+) ms", "--", "echo", "took fast ms")
    assert "matched 'fast', which is not a number" in exc.stderr


def test_check_regex_is_regcomp():
    assert cmdtime("--check-regex=took ([0-9.]+) ms")["groups"] == 1
    fin = process.run(["cmdtime", "--check-regex=took ([0-9"])
    assert fin.returncode == 2 and "bad regular expression" in fin.stderr


@pytest.mark.parametrize("args", [["--", ], ["--runs=0", "--", "true"], ["--bogus=1", "--", "true"], ["true"]])
def test_bad_arguments_exit_2(args):
    assert process.run(["cmdtime", *args]).returncode == 2


def test_a_cpu_not_allowed_is_unsupported_here():
    with pytest.raises(KernelUnsupported, match="cannot pin"):
        cmdtime(f"--cpu={os.cpu_count() + 64}", "--", "true")
