"""space.* (structural), task.* and clone.* decisions both ways (and the middle), on
synthetic input: ratio rules on realistic series, exact checks on synthetic
observations (subject reports, /proc snapshots, kcmp answers, traces, kernel records),
and the positive controls rejecting broken probes. No kernel runs here."""

from __future__ import annotations

import copy

import pytest

from conftest import claim, decide_points, evidence, judge, point
from perflab.claims import clone, green, task
from perflab.core.record import Outcome, Reason
from perflab.decide.rules import exact_rule
from perflab.engine.judge import final_outcome
from perflab.observe.trace import clone_flags
from perflab.observe.trace.result import from_record
from trace_records import FORK, THREAD, record as trace_record, clone as trace_clone

decide = decide_points
INCONCLUSIVE_CAPPED = (Outcome.INCONCLUSIVE, Reason.CAPPED)  # a check could not be evaluated here
INCONCLUSIVE_CONTROL = (Outcome.INCONCLUSIVE, Reason.CONTROL)  # a positive control failed
SUPPORTED, REFUTED = (Outcome.SUPPORTED, None), (Outcome.REFUTED, None)


def verdict(cid, obs):
    """What the runner makes of a structural claim's observations (judged after a JSON
    round trip, as when a stored record is decided again): (outcome, reason) and the
    Checked."""
    checked = judge(cid, obs)
    out, _why, reason = final_outcome(exact_rule(checked.checks, claim(cid).rule), checked.controls)
    return (out, reason), checked


def outcome(cid, obs):
    return verdict(cid, obs)[0][0]


# ---- task.thread-cheaper: fork / thread >= 1.5 supported, <= 1.1 refuted --------------------
@pytest.mark.parametrize("fork_ns,expected,reason", [
    (115_000.0, Outcome.SUPPORTED, None),  # this VM: ~6x
    (34_000.0, Outcome.SUPPORTED, None),  # 1.7x
    (25_000.0, Outcome.INCONCLUSIVE, Reason.BETWEEN),  # 1.3x: between the thresholds
    (19_500.0, Outcome.REFUTED, None),  # 1.0x
    (15_000.0, Outcome.REFUTED, None),  # a process cheaper than a thread
])
def test_thread_cheaper_rule(fork_ns, expected, reason):
    d = decide("task.thread-cheaper", thread=19_400.0, fork=fork_ns, clone_vm=20_500.0)
    assert d.outcome is expected, d
    assert d.inconclusive is reason
    rule = claim("task.thread-cheaper").rule
    assert d.rule_version == rule.version and d.thresholds == rule.thresholds()
    assert "fork" in d.reason and "clone-vm" in d.reason
    assert d.evidence["clone(CLONE_VM) / thread (not decided on)"]["value"] == pytest.approx(20.5 / 19.4, rel=0.1)


def test_thread_cheaper_unmeasurable_is_noisy():
    d = claim("task.thread-cheaper").decide(evidence(point("thread", 19_400.0), point("fork", 0.0),
                                                     point("clone-vm", 20_500.0)), claim("task.thread-cheaper").rule)
    assert d.outcome is Outcome.INCONCLUSIVE and d.inconclusive is Reason.NOISY, d


def test_thread_cheaper_derive():
    s = [point(n, v, noise=0) for n, v in (("thread", 20e3), ("fork", 100e3), ("clone-vm", 25e3))]
    d = claim("task.thread-cheaper").derive(evidence(*s))
    assert d["fork_over_thread"] == pytest.approx(5, rel=0.01)
    assert d["fork_over_clone_vm"] == pytest.approx(4, rel=0.01)


# ---- task.process-switch-dearer: process / thread >= 1.5 supported, <= 1.2 refuted (both) -----
@pytest.mark.parametrize("pf,pp,expected,reason", [
    (5_000.0, 6_400.0, Outcome.SUPPORTED, None),  # 2x both
    (5_000.0, 3_400.0, Outcome.REFUTED, None),  # pipe 1.06x
    (2_700.0, 3_400.0, Outcome.REFUTED, None),  # both ~1.05x: what a VM with PCID shows
    (3_500.0, 4_400.0, Outcome.INCONCLUSIVE, Reason.BETWEEN),  # 1.4x both: between
    (5_000.0, 4_400.0, Outcome.INCONCLUSIVE, Reason.BETWEEN),  # futex supports, pipe in between
])
def test_process_switch_rule(pf, pp, expected, reason):
    d = decide("task.process-switch-dearer", thread_futex=2_500.0, process_futex=pf, thread_pipe=3_200.0,
               process_pipe=pp)
    assert d.outcome is expected, d
    assert d.inconclusive is reason
    parts = claim("task.process-switch-dearer").rule.parts
    assert [p.name for p in parts] == ["futex", "pipe"]  # one part per mechanism
    assert all(d.thresholds[p.quantity]["outcome"] for p in parts)
    assert "(futex)" in d.reason and "(pipe)" in d.reason


def test_process_switch_same_cpu_control():
    """The positive control of the switch timings (green's same-CPU control): a ping-pong
    that does not switch on every round trip fails it."""
    c = claim("task.process-switch-dearer")
    sup = green.SAME_CPU.supported.lo
    curves = [point(n, 3_000.0) for n in task.SWITCHES]
    ok = c.positive(evidence(*curves, point("same-cpu-switches", sup * 1.05, noise=0, unit="switches")))
    spun = c.positive(evidence(*curves, point("same-cpu-switches", sup * 0.02, noise=0, unit="switches")))
    assert (ok.name, ok.passed, spun.passed) == ("same-cpu", True, False)


# ---- flag decoding ---------------------------------------------------------------------------
def test_flag_decoding_of_glibc_calls():
    assert set(clone_flags.flag_names(THREAD, "clone3")) == set(clone.THREAD_REQUIRED + clone.THREAD_ALSO)
    assert clone_flags.flag_names(FORK, "clone") == ("CLONE_CHILD_CLEARTID", "CLONE_CHILD_SETTID")
    assert clone_flags.exit_signal_of(FORK, "clone") == 17
    assert clone.expected_shared("CLONE_SIGHAND", False) == {"vm"}
    assert clone.expected_shared("CLONE_IO", True) == {"io"}


# ---- clone.fork-is-clone / clone.thread-flags on traces ----------------------------------------
def traced(clones, mechanism="bpf", markers=2, control_ok=True):
    """A trace of the marked call as its claim's observe stores it (plain data)."""
    from dataclasses import replace

    from perflab.observe.trace.result import ControlReport
    r = from_record(trace_record(mechanism=mechanism, markers=markers, clones=clones))
    r = replace(r, control=ControlReport(mechanism, control_ok, ("x",), () if control_ok else ("x",)))
    return {"trace": clone.trace_observation(r)}


@pytest.mark.parametrize("clones,kw,expected", [
    ([trace_clone("clone", FORK, 17)], {}, SUPPORTED),
    ([trace_clone("clone3", 0x200000, 17)], {}, SUPPORTED),  # a clone3 fork is fine too
    ([trace_clone("clone", FORK | 0x100, 17)], {}, REFUTED),  # CLONE_VM: not a fork
    ([trace_clone("clone", FORK & ~0xFF, 0)], {}, REFUTED),  # no SIGCHLD
    ([trace_clone("clone", FORK, 17), trace_clone("clone3", THREAD, 0)], {}, REFUTED),  # two calls
    ([], {}, REFUTED),  # no clone at all (a fork system call)
    ([trace_clone("clone3", 0, 0, readable=False)], {"mechanism": "perf"}, INCONCLUSIVE_CAPPED),
    ([trace_clone("clone", FORK, 17)], {"markers": 3}, INCONCLUSIVE_CAPPED),  # region unusable
    ([trace_clone("clone", FORK, 17)], {"control_ok": False}, INCONCLUSIVE_CONTROL),
])
def test_fork_is_clone(clones, kw, expected):
    assert verdict("clone.fork-is-clone", traced(clones, **kw))[0] == expected


def test_fork_is_clone_evidence_from_plain_data():
    (out, _), checked = verdict("clone.fork-is-clone", traced([trace_clone("clone", FORK, 17)]))
    assert out is Outcome.SUPPORTED
    row, = checked.evidence["clone_calls_in_region"]
    assert row == {"syscall": "clone", "count": 1, "flags": hex(FORK), "decoded": clone_flags.describe(FORK, "clone"),
                   "flag_names": ["CLONE_CHILD_CLEARTID", "CLONE_CHILD_SETTID"], "exit_signal": "SIGCHLD"}
    assert checked.evidence["mechanism"] == "bpf" and checked.evidence["region_syscalls"] == {"getppid": 23}
    assert checked.evidence["whole_run_clone_calls"] == {"clone": 1, "clone3": 1, "fork": 0, "vfork": 0}
    assert checked.controls[0].passed is True
    _, perf = verdict("clone.fork-is-clone", traced([trace_clone("clone3", 0, 0, readable=False)], mechanism="perf"))
    assert perf.evidence["clone_calls_in_region"][0]["flags"] is None
    assert perf.checks[1].note == "the mechanism cannot read this call's flags"
    _, cut = verdict("clone.fork-is-clone", traced([trace_clone("clone", FORK, 17)], markers=3))
    assert cut.checks[0].note.startswith("no region between the markers: unavailable (the command made 3")


@pytest.mark.parametrize("clones,kw,expected", [
    ([trace_clone("clone3", THREAD, 0)], {}, SUPPORTED),
    ([trace_clone("clone", THREAD, 0)], {}, SUPPORTED),  # the fallback, same flags
    ([trace_clone("clone3", THREAD & ~0x10000, 0)], {}, REFUTED),  # no CLONE_THREAD
    ([trace_clone("clone3", THREAD & ~0x400, 0)], {}, REFUTED),  # no CLONE_FILES
    ([trace_clone("clone3", THREAD, 17)], {}, REFUTED),  # a thread that signals its parent
    ([trace_clone("clone3", 0, 0, readable=False)], {"mechanism": "perf"}, INCONCLUSIVE_CAPPED),
    ([trace_clone("clone3", THREAD, 0)], {"control_ok": False}, INCONCLUSIVE_CONTROL),
])
def test_thread_flags(clones, kw, expected):
    got, checked = verdict("clone.thread-flags", traced(clones, **kw))
    assert got == expected
    if expected == SUPPORTED:
        assert set(checked.evidence["flags_found"]) >= set(clone.THREAD_REQUIRED)
        assert all(checked.evidence["also_expected_from_glibc"].values())


# ---- clone.flags-share ------------------------------------------------------------------------
RES = ("vm", "files", "fs", "sighand", "io")


def flags_record():
    trials = []
    for flag, own in clone.RESOURCE_OF.items():
        for with_flag in (True, False):
            shared = clone.expected_shared(flag, with_flag)
            trials.append({"flag": flag, "with": with_flag, "clone_flags": 17, "effect_seen": with_flag,
                           "kcmp_equal": {r: r in shared for r in RES}})
    return {"kernel": "cloneshare", "variant": "flags", "parent_ioprio": 16388, "trials": trials,
            "control_self_equal": {r: True for r in RES}}


def trial(rec, flag, with_flag):
    return next(t for t in rec["trials"] if t["flag"] == flag and t["with"] is with_flag)


def share(rec):
    return {"cloneshare": rec}


def test_flags_share_supported_and_table():
    (out, _), checked = verdict("clone.flags-share", share(flags_record()))
    assert out is Outcome.SUPPORTED
    assert len(checked.evidence["table"]) == 10


@pytest.mark.parametrize("breakage", [
    lambda r: trial(r, "CLONE_IO", True).update(effect_seen=False),  # no context shared
    lambda r: trial(r, "CLONE_FILES", False).update(effect_seen=True),  # the fd leaked without the flag
    lambda r: trial(r, "CLONE_FS", True)["kcmp_equal"].update(files=True),  # shares more than its own
    lambda r: trial(r, "CLONE_IO", False)["kcmp_equal"].update(io=True),  # two NULL contexts "equal"
    lambda r: r["trials"].pop(),  # a trial missing
])
def test_flags_share_refuted(breakage):
    rec = flags_record()
    breakage(rec)
    assert outcome("clone.flags-share", share(rec)) is Outcome.REFUTED


def test_flags_share_control_rejects_blind_kcmp():
    rec = flags_record()
    rec["control_self_equal"]["io"] = False
    got, checked = verdict("clone.flags-share", share(rec))
    assert checked.controls[0].passed is False and got == INCONCLUSIVE_CONTROL


# ---- space.fd-in-kernel ------------------------------------------------------------------------
def fd_record(**over):
    rec = {"dir": "/tmp", "temp_file": "O_TMPFILE", "file_bytes": 4096,
           "dup": {"read_bytes": 100, "offset_fd": 100, "offset_other": 100, "kcmp": 0},
           "fork": {"read_bytes": 200, "offset_fd": 200, "kcmp": 0},
           "open": {"read_bytes": 300, "offset_fd": 0, "offset_other": 300, "kcmp": 2, "same_inode": 1},
           "controls": {"kcmp_self": 0, "kcmp_other_file": 1}}
    for path, value in over.items():
        part, key = path.split("__")
        rec[part][key] = value
    return rec


@pytest.mark.parametrize("over,expected", [
    ({}, SUPPORTED),
    ({"fork__offset_fd": 0}, REFUTED),  # the child's read did not move the parent's offset
    ({"open__offset_fd": 300, "open__kcmp": 0}, REFUTED),  # two opens sharing an offset
    ({"dup__kcmp": 1}, REFUTED),  # kcmp disagrees with the offsets
    ({"controls__kcmp_self": 1}, INCONCLUSIVE_CONTROL),  # kcmp never says equal: control fails
])
def test_fd_in_kernel(over, expected):
    assert verdict("space.fd-in-kernel", {"fdshare": fd_record(**over)})[0] == expected


# ---- space.kthread-no-user ---------------------------------------------------------------------
def task_row(pid, comm, kthread, mappings, vmsize, state="S", exiting=False, tid=None):
    return {"pid": pid, "tid": tid or pid, "comm": comm, "state": state, "kthread": kthread,
            "exiting": exiting, "mappings": mappings, "vmsize_kib": vmsize}


def survey_rows():
    return [task_row(2, "kthreadd", True, 0, None), task_row(15, "ksoftirqd/0", True, 0, None),
            task_row(100, "bash", False, 30, 8000), task_row(200, "python3", False, 90, 30000),
            task_row(300, "defunct", False, 0, None, state="Z"),  # a zombie: neither
            task_row(301, "leaving", False, 0, None, exiting=True)]  # exiting: neither


@pytest.mark.parametrize("change,expected", [
    (None, SUPPORTED),
    (lambda rows: rows.append(task_row(16, "kworker/0:1", True, 3, 1000)), REFUTED),
    (lambda rows: rows.append(task_row(400, "odd", False, 0, 5000)), REFUTED),
    (lambda rows: rows.append(task_row(17, "kworker/1:0", True, None, None)), INCONCLUSIVE_CAPPED),
    (lambda rows: rows.append(task_row(1, "init", False, None, 40000)), SUPPORTED),  # maps unreadable,
    # VmSize alone shows an address space
    (lambda rows: rows.__delitem__(slice(0, 2)), INCONCLUSIVE_CAPPED),  # no kernel thread visible
])
def test_kthread_no_user(change, expected):
    rows = survey_rows()
    if change:
        change(rows)
    got, checked = verdict("space.kthread-no-user", {"tasks": rows, "self_pid": 200})
    assert got == expected
    assert checked.evidence["excluded_zombie_or_exiting"] == 2


def test_kthread_control_rejects_blind_probe():
    rows = survey_rows()
    rows[3]["mappings"] = 0  # a probe that reads no mappings anywhere
    for r in rows:
        if not r["kthread"]:
            r["mappings"] = 0
    _, checked = verdict("space.kthread-no-user", {"tasks": rows, "self_pid": 200})
    assert checked.controls[0].passed is False


# ---- space.user-layout ------------------------------------------------------------------------
def layout(n=3):
    info = {"pid": 10, "threads": []}
    rows, threads = [], [{"tid": 10, "state": "S", "stack": {"start": "0x7ffd0000", "end": "0x7ffe0000",
                                                             "size_bytes": 0x10000, "kind": "main_stack"}}]
    base = 0x7f0000000000
    for i in range(n):
        size = (64 << 10) * (i + 1)
        lo, hi = base + i * 0x1000000, base + i * 0x1000000 + size
        tid = 11 + i
        info["threads"].append({"tid": tid, "stack_lo": lo + 0x1000, "stack_hi": hi,
                                "requested_stack_bytes": size})
        rows.append({"kind": "thread_stack", "tids": [tid]})
        threads.append({"tid": tid, "state": "S", "stack_pointer": hex(hi - 0x200),
                        "stack": {"start": hex(lo), "end": hex(hi), "size_bytes": size, "kind": "thread_stack"}})
    by_kind = {k: {"mappings": 1, "size_bytes": 4096, "rss_bytes": 0} for k in
               ("executable", "library", "heap", "main_stack", "thread_stack")}
    snap = {"process": {"exe": "/x/subject_threads"}, "threads": threads,
            "address_space": {"available": True, "mappings": rows, "by_kind": by_kind,
                              "libraries": [{"name": "libc.so.6", "mappings": 5, "size_bytes": 2 << 20}]}}
    return info, snap


def user_layout(info, snap, n=3):
    return verdict("space.user-layout", {"subject": info, "snapshot": snap, "threads": n})


def test_user_layout_supported():
    info, snap = layout()
    (out, _), checked = user_layout(info, snap)
    assert out is Outcome.SUPPORTED
    assert len(checked.evidence["thread_stacks"]) == 3
    assert checked.controls[0].passed is True


def test_user_layout_control_rejects_blind_stack_pointer_probe():
    info, snap = layout()
    for t in snap["threads"]:
        t["stack_pointer"] = "0x0"  # stat's kstkesp: 0 unless the task is being dumped
    got, checked = user_layout(info, snap)
    assert checked.controls[0].passed is False and got == INCONCLUSIVE_CONTROL


@pytest.mark.parametrize("breakage,expected", [
    (lambda i, s: s["address_space"]["by_kind"].pop("heap"), REFUTED),
    (lambda i, s: s["address_space"]["libraries"].clear(), REFUTED),
    (lambda i, s: s["threads"][2].update(stack={**s["threads"][2]["stack"], "kind": "anonymous"}), REFUTED),
    (lambda i, s: s["threads"][1].update(stack={**s["threads"][1]["stack"], "start": "0x7f00ffffffff"}),
     REFUTED),  # the mapping found does not hold the pthread range
    (lambda i, s: s["threads"][3].update(stack=None, stack_reason="running: no stack pointer"),
     INCONCLUSIVE_CAPPED),
    (lambda i, s: s["address_space"].update(available=False, reason="zombie"), INCONCLUSIVE_CAPPED),
])
def test_user_layout_broken(breakage, expected):
    info, snap = layout()
    breakage(info, snap)
    assert user_layout(info, snap)[0] == expected


# ---- task.thread-is-task ----------------------------------------------------------------------
def spin(n=3, cpu=None, states=None, main_state="R"):
    info = {"pid": 50, "threads": [{"tid": 51 + i, "burn_ns": int((i + 1) * 40e6), "cpu_ns": (i + 1) * 40e6 + 1e5}
                                   for i in range(n)]}
    cpu = cpu or [0.04 * (i + 1) - 0.01 for i in range(n)]
    threads = [{"tid": 50, "state": main_state, "cpu_s": 0.02}] + [
        {"tid": 51 + i, "state": (states or ["S"] * n)[i], "cpu_s": cpu[i]} for i in range(n)]
    return info, {"threads": threads, "clock_ticks_per_s": 100}


def thread_is_task(info, snap):
    return verdict("task.thread-is-task", {"subject": info, "snapshot": snap, "unit_ms": task.UNIT_MS})


@pytest.mark.parametrize("kw,expected", [
    ({}, SUPPORTED),
    ({"cpu": [0.24, 0.24, 0.24]}, REFUTED),  # every task shows the process's time
    ({"cpu": [0.0, 0.0, 0.0]}, REFUTED),
    ({"states": ["S", "R", "S"]}, REFUTED),
    ({"main_state": "S"}, REFUTED),
])
def test_thread_is_task(kw, expected):
    info, snap = spin(**kw)
    assert thread_is_task(info, snap)[0] == expected


def test_thread_is_task_missing_task_and_control():
    info, snap = spin()
    snap["threads"].pop()
    assert thread_is_task(info, snap)[0] == REFUTED
    info, snap = spin()
    info["threads"][0]["cpu_ns"] = 0  # the threads' own clocks say they never ran: control fails
    got, checked = thread_is_task(info, snap)
    assert checked.controls[0].passed is False and got == INCONCLUSIVE_CONTROL


@pytest.mark.parametrize("beyond,expected", [(0.9, SUPPORTED), (1.1, REFUTED)])
def test_thread_is_task_cpu_tolerance_is_the_rules(beyond, expected):
    """A thread's /proc CPU time may differ from what it burned by the rule's tolerance
    (the larger of an absolute and a relative one), and no more."""
    rule = claim("task.thread-is-task").rule
    burned = [0.04 * (i + 1) for i in range(3)]
    tol = [max(rule["cpu_tol_ms"] / 1000, rule["cpu_tol_pct"] / 100 * b) for b in burned]
    info, snap = spin(cpu=[b - beyond * t for b, t in zip(burned, tol)])
    (got, checked) = thread_is_task(info, snap)
    assert got == expected
    assert "within max(" in checked.checks[-1].expected and f"(i+1) x {task.UNIT_MS} ms" in checked.checks[-1].expected


# ---- task.threads-share -----------------------------------------------------------------------
def share_obs():
    res = task.SHARED
    return {"threads": {r: [True, True, True] for r in res}, "child": {r: False for r in res},
            "io": {"threads_equal": [True] * 3, "child_equal": True, "subject_has_none": True},
            "control": {"self": {r: True for r in res}, "unrelated": {r: False for r in res}}}


@pytest.mark.parametrize("breakage,expected", [
    (None, SUPPORTED),
    (lambda o: o["child"].update(files=True), REFUTED),
    (lambda o: o["threads"]["sighand"].__setitem__(1, False), REFUTED),
    (lambda o: o["control"]["unrelated"].update(vm=True), INCONCLUSIVE_CONTROL),  # a kcmp that says "equal"
    (lambda o: o["control"]["self"].update(fs=False), INCONCLUSIVE_CONTROL),  # ... or never does
])
def test_threads_share(breakage, expected):
    obs = copy.deepcopy(share_obs())
    if breakage:
        breakage(obs)
    assert verdict("task.threads-share", obs)[0] == expected


def test_survey_reads_a_thread_groups_maps_once(tmp_path):
    """Its tasks share one mm: the first live task's maps count for the others (a process
    of 10,000 threads took 112 s to survey, reading 10,000 maps of 20,000 lines); a
    zombie leader (its mm released) is read for itself, and never stands for the group."""
    from perflab.observe.procfs.tasks import survey

    def task(pid, tid, state, maps_lines, flags=0x400040):
        d = tmp_path / str(pid) / "task" / str(tid)
        d.mkdir(parents=True)
        fields = [state, "1", str(pid), str(pid), "0", "-1", str(flags)] + ["0"] * 44
        (d / "stat").write_text(f"{tid} (worker) {' '.join(fields)}\n")
        (d / "status").write_text("Name:\tworker\n" + ("VmSize:\t  8000 kB\n" if state != "Z" else ""))
        if maps_lines is not None:
            (d / "maps").write_text("".join(f"{i:x}000-{i + 1:x}000 r--p 0 00:00 0\n" for i in range(maps_lines)))

    task(500, 500, "Z", 0)  # the leader has exited: its maps are empty
    task(500, 501, "S", 7)
    task(500, 502, "R", None)  # not read: the group's count stands for it
    rows = {r["tid"]: r for r in survey(str(tmp_path))}
    assert {tid: rows[tid]["mappings"] for tid in (500, 501, 502)} == {500: 0, 501: 7, 502: 7}
