"""Security and fault battery (issue 16): perflab driven as a hostile or careless user
would, each case asserting the safe outcome.

- a process whose name, argv, thread name and open/mapped file paths hold terminal
  escapes (``ESC ] 0 ; TITLE BEL``, ``ESC [ 2 J``, a newline): ``inspect`` prints no
  ESC byte and no forged row; ``--json`` stays exact;
- ``trace`` of a command whose arguments hold escapes, and error lines echoing user
  input, print none;
- ``trace -o``: a planted symlink at the target or at the old predictable temporary
  name leaves the symlink's target untouched; a character device (``/dev/null``) stays
  one; a FIFO is written through;
- SIGKILL / SIGQUIT of ``perflab trace -- sh -c 'sleep N & sleep N; wait'`` leaves no
  sleep and no cgroup;
- stdout on ``/dev/full``, stderr closed, an address-space limit too small to import:
  one line and exit 1 (or a normal run), never a traceback;
- ``--param`` with ``1_0``, non-ASCII digits or given twice is a usage error;
- ``trace`` passes the command's exit status through.

Root-only cases (bpf, cgroups, mknod) skip elsewhere; everything else runs as any user.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import alive
from perflab.core.errors import UsageError
from perflab.core.params import Param
from perflab.engine import registry
from perflab.engine.process import kernel_dir
from perflab.core.safe import safe, safe_tree

ROOT = os.geteuid() == 0
ESC = b"\x1b"
TITLE = "\x1b]0;TITLE\x07"  # OSC 0: set the window title
CLEAR = "\x1b[2J"  # CSI 2 J: erase the screen
EVIL = f"{TITLE}{CLEAR}\nforged row"
PERFLAB = Path(sys.executable).parent / "perflab"
COMMAND = [str(PERFLAB)] if PERFLAB.exists() else [sys.executable, "-m", "perflab"]
ENV = {**os.environ, "COLUMNS": "1000", "LANG": "C.UTF-8"}  # wide: no row is cut or wrapped
HAVE_TRACER = (kernel_dir() / "tracer").exists() and (kernel_dir() / "trace_control").exists()
needs_tracer = pytest.mark.skipif(not HAVE_TRACER, reason="kernels not built: python setup.py build_kernels --inplace")
needs_root = pytest.mark.skipif(not ROOT, reason="needs root (CI runs as root)")


def perflab(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """perflab as a user runs it: bytes out, so that any ESC byte is seen as it is."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("env", ENV)
    return subprocess.run([*COMMAND, *args], timeout=timeout, **kw)


def one_line(p: subprocess.CompletedProcess, code: int, needle: str) -> str:
    err = p.stderr.decode(errors="replace")
    assert p.returncode == code, (p.returncode, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("perflab: ") and needle in lines[0], err
    return lines[0]


def no_escapes(data: bytes) -> None:
    assert ESC not in data and b"\x07" not in data and b"\x9b" not in data, data[:2000]


# ---- safe(): the one place -------------------------------------------------------------------
@pytest.mark.parametrize("raw,shown", [
    (TITLE, "\\033]0;TITLE\\a"),
    (CLEAR, "\\033[2J"),
    ("a\nb\rc\td\x00e", "a\\nb\\rc\\td\\000e"),
    ("\x7f", "\\177"),
    ("\x9b2J", "\\302\\2332J"),  # C1 CSI: bytes of its UTF-8, as ls -b shows them
    ("\x85", "\\302\\205"),  # NEL: a line break for str.splitlines
    ("a\u2028b", "a\\342\\200\\250b"),
    ("x\u202ey", "x\\342\\200\\256y"),  # right-to-left override (CVE-2021-42574)
    (os.fsdecode(b"bad\xff\xfe"), "bad\\377\\376"),  # not UTF-8: the bytes, as ls -b
    ("\ud800", "\\355\\240\\200"),  # a lone surrogate that is no byte
    ("back\\slash", "back\\\\slash"),  # unambiguous: "\\033" in the output is never text
    ("é 名前 [bold] ok", "é 名前 [bold] ok"),  # printable text is kept
])
def test_safe_escapes_what_a_terminal_would_act_on(raw, shown):
    assert safe(raw) == shown
    if raw != "\ud800":  # the same as bytes, decoded as os.fsdecode does
        assert safe(raw.encode("utf-8", "surrogateescape")) == shown


def test_safe_leaves_no_control_character_at_all():
    every = "".join(map(chr, [*range(0, 0x100), 0x2028, 0x2029, *range(0x202A, 0x202F),
                              *range(0x2066, 0x206A), 0xDC80, 0xDCFF, 0xD800]))
    out = safe(every)
    assert all(0x20 <= ord(c) < 0x7F or ord(c) >= 0xA0 for c in out)
    assert not any(c in out for c in "\u2028\u2029\u202e\u2066") and out.encode("utf-8")
    assert safe_tree({"k\n": ["v\x1b", ("t\t", 3, None)]}) == {"k\\n": ["v\\033", ("t\\t", 3, None)]}


# ---- inspect of a process named with escapes ---------------------------------------------------
SUBJECT = textwrap.dedent(r'''
    import ctypes, mmap, os, sys, threading, time
    libc = ctypes.CDLL(None, use_errno=True)
    def name(text):  # prctl(PR_SET_NAME): the calling thread's comm, 15 bytes at most
        libc.prctl(15, ctypes.c_char_p(text.encode()[:15]), 0, 0, 0)
    folder, evil = sys.argv[1], sys.argv[2]
    name("\x1b]0;T\x07\x1b[2J\nFRG")
    keep = []
    for raw in (os.path.join(folder, "file" + evil).encode(), os.fsencode(folder) + b"/bad\xff\x1b[2J\nFRP"):
        with open(raw, "wb") as f:
            f.write(b"x" * 4096)
        keep.append(open(raw, "rb"))
        keep.append(mmap.mmap(keep[-1].fileno(), 4096, prot=mmap.PROT_READ))
    started = threading.Event()
    def thread():
        name("\x1b[2J\nFRT\x1b]0;X\x07")
        started.set()
        time.sleep(3600)
    threading.Thread(target=thread, daemon=True).start()
    started.wait()
    print("ready", flush=True)
    sys.stdin.read()
''')


@pytest.fixture
def hostile(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", SUBJECT, str(tmp_path), EVIL],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("maps", [False, True], ids=["table", "maps"])
def test_inspect_of_a_process_named_with_escapes_prints_none(hostile, maps):
    p = perflab("inspect", str(hostile.pid), "--limit", "0", *(["--maps"] if maps else []))
    assert p.returncode == 0, p.stderr
    no_escapes(p.stdout)
    text = p.stdout.decode()
    # no forged row: what follows each newline stays on the line of its escaped \n
    for line in text.splitlines():
        assert not line.lstrip("│ ").startswith(("forged row", "FRG", "FRT", "FRP")), line
    assert "\\033]0;TITLE\\a\\033[2J\\nforged row" in text  # argv and the file path, visible
    assert "\\033]0;T\\a\\033[2J\\nFRG" in text  # the process name
    assert "\\033[2J\\nFRT\\033]0;X\\a" in text  # the thread's name
    assert "bad\\377\\033[2J\\nFRP" in text  # a path that is not UTF-8 shows its bytes
    if maps:
        assert text.count("\\033]0;TITLE\\a\\033[2J") >= 3  # argv, fd and its mapping


def test_inspect_json_stays_exact(hostile):
    p = perflab("inspect", str(hostile.pid), "--json", "--maps")
    assert p.returncode == 0, p.stderr
    no_escapes(p.stdout)  # JSON escapes them itself
    snap = json.loads(p.stdout)
    assert snap["process"]["cmdline"][-1] == EVIL
    assert snap["process"]["name"] == "\x1b]0;T\x07\x1b[2J\nFRG"
    assert any(t["name"] == "\x1b[2J\nFRT\x1b]0;X\x07" for t in snap["threads"])
    assert any(r["target"].endswith("file" + EVIL) for r in snap["fds"]["table"])


# ---- error lines that echo user input ----------------------------------------------------------
@pytest.mark.parametrize("args,code,needle", [
    (["list", f"io.{CLEAR}x"], 2, "unknown claim or topic: io.\\033[2Jx"),
    (["run", f"{TITLE}nope"], 2, "unknown claim or topic: \\033]0;TITLE\\anope"),
    (["list", f"--{CLEAR}"], 2, "unrecognized arguments"),
    (["trace", "--", f"no-such-{TITLE}"], 1, "command not found: no-such-\\033]0;TITLE\\a"),
    (["trace", "-o", f"/nonexistent-dir/{CLEAR}", "--", "/bin/true"], 1, "\\033[2J"),
])
def test_error_lines_echo_user_input_escaped(args, code, needle, tmp_path):
    p = perflab(*args, "--db", str(tmp_path / "x.db")) if args[0] == "run" else perflab(*args)
    no_escapes(p.stderr)
    one_line(p, code, needle)


def test_unknown_claim_gets_a_real_suggestion_or_none():
    def message(sel: str) -> str:
        with pytest.raises(UsageError) as exc:
            registry.select([sel])
        return str(exc.value)

    assert message("io.nope") == "unknown claim or topic: io.nope (see 'perflab list io')"  # not "clone"
    assert "did you mean io.epoll-flat?" in message("io.epol-flat")
    assert "did you mean io.select-linear?" in message("io.select")
    assert "did you mean io.epoll-flat?" in message("epoll-flat")
    assert "did you mean" not in message("xyz.nope") and "did you mean" not in message("nope")


# ---- trace: escapes in the command, its exit status --------------------------------------------
@needs_tracer
def test_trace_report_shows_the_commands_escapes_escaped():
    p = perflab("trace", "--", "/bin/true", EVIL, f"x{CLEAR}")
    assert p.returncode == 0, p.stderr
    no_escapes(p.stderr)
    head = p.stderr.decode().splitlines()[0]
    assert head.startswith("perflab trace: /bin/true \\033]0;TITLE\\a\\033[2J\\nforged row x\\033[2J: exited 0")
    j = perflab("trace", "--json", "--", "/bin/true", EVIL)
    assert json.loads(j.stdout.splitlines()[-1])["command"] == ["/bin/true", EVIL]  # exact


@needs_tracer
@pytest.mark.parametrize("script,status,ending", [
    ("exit 3", 3, "exited 3"),
    ("exit 0", 0, "exited 0"),
    ("kill -SEGV $$", 128 + signal.SIGSEGV, "killed by SIGSEGV"),
    ("kill -TERM $$", 128 + signal.SIGTERM, "killed by SIGTERM"),
])
def test_trace_passes_the_commands_exit_status_through(script, status, ending):
    p = perflab("trace", "--", "sh", "-c", script)
    assert p.returncode == status, p.stderr
    assert ending in p.stderr.decode().splitlines()[0]
    j = perflab("trace", "--json", "--", "sh", "-c", script)
    assert j.returncode == status and json.loads(j.stdout.splitlines()[-1])["exit_status"] == status


@needs_tracer
def test_trace_own_errors_keep_their_codes_and_print_no_report():
    one_line(perflab("trace", "--", "no-such-command-perflab"), 1, "command not found")
    one_line(perflab("trace", "--mechanism=strace", "--", "/bin/true"), 2, "invalid choice")
    one_line(perflab("trace"), 2, "no command")


# ---- trace -o: written the safe way ------------------------------------------------------------
@needs_tracer
def test_trace_o_refuses_a_planted_symlink_at_the_target(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o600)
    link = tmp_path / "report"
    link.symlink_to(victim)
    one_line(perflab("trace", "-o", str(link), "--", "/bin/true"), 1, "symbolic link")
    assert victim.read_text() == "precious\n" and link.is_symlink()
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "created-through-link")
    one_line(perflab("trace", "-o", str(dangling), "--", "/bin/true"), 1, "symbolic link")
    assert not (tmp_path / "created-through-link").exists()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["dangling", "report", "victim"]


@needs_tracer
def test_trace_o_never_follows_a_symlink_planted_at_a_temporary_name(tmp_path):
    """The old temporary name was .NAME.perflab-PID.tmp: plant it for perflab's pid (sh
    execs perflab, keeping its pid, once the links are in place)."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "report.txt"
    proc = subprocess.Popen(["sh", "-c", 'read go; exec "$@"', "sh", *COMMAND, "trace", "-o", str(out),
                             "--", "/bin/true"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    (tmp_path / f".report.txt.perflab-{proc.pid}.tmp").symlink_to(victim)
    _, err = proc.communicate(b"go\n", timeout=120)
    assert proc.returncode == 0, err
    assert victim.read_text() == "precious\n"
    assert out.read_text().startswith("perflab trace: /bin/true: exited 0") and not out.is_symlink()
    leftovers = {f.name for f in tmp_path.iterdir()} - {"victim", "report.txt", f".report.txt.perflab-{proc.pid}.tmp"}
    assert not leftovers  # the temporary file was renamed, none left beside


@needs_tracer
def test_trace_o_replaces_a_regular_file_whole_and_keeps_its_mode(tmp_path):
    out = tmp_path / "r.json"
    out.write_text("old report\n")
    out.chmod(0o600)
    ino = out.stat().st_ino
    p = perflab("trace", "--json", "-o", str(out), "--", "sh", "-c", "exit 4")
    assert p.returncode == 4, p.stderr
    assert json.loads(out.read_text())["exit_status"] == 4
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and out.stat().st_ino != ino  # renamed over
    assert sorted(f.name for f in tmp_path.iterdir()) == ["r.json"]


@needs_tracer
def test_trace_o_writes_through_a_fifo_without_replacing_it(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    p = perflab("trace", "--json", "-o", str(fifo), "--", "/bin/true")
    out, _ = reader.communicate(timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(out)["command"] == ["/bin/true"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@needs_tracer
@needs_root
def test_trace_o_to_a_character_device_writes_through_it(tmp_path):
    """First a private copy of /dev/null (mknod c 1 3): a perflab that replaces device
    nodes fails here, before it can do it to the real /dev/null below."""
    private = tmp_path / "null"
    try:
        os.mknod(private, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError as exc:
        pytest.skip(f"mknod: {exc.strerror}")
    for dev in (str(private), "/dev/null"):
        before = os.lstat(dev)
        p = perflab("trace", "-o", dev, "--", "/bin/true")
        after = os.lstat(dev)
        assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev, dev
        assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode), dev
        assert p.returncode in (0, 1), p.stderr  # 1: a nodev mount refuses the private one
        if dev == "/dev/null":
            assert p.returncode == 0, p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["null"]


def test_trace_o_refuses_what_is_not_a_file_before_running(tmp_path):
    marker = tmp_path / "ran"
    for target, why in ((tmp_path, "directory"), (tmp_path / "no" / "dir" / "x", "no directory")):
        p = perflab("trace", "-o", str(target), "--", "sh", "-c", f"touch {marker}")
        one_line(p, 1, why)
    one_line(perflab("trace", "-o", "", "--", "/bin/true"), 2, "empty")
    assert not marker.exists()  # refused before the command ran


# ---- trace leaves nothing behind ---------------------------------------------------------------
def _sleeps(tag: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[:2] == [b"sleep", tag.encode()] and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def _poll(what, deadline_s: float = 5.0):
    deadline = time.monotonic() + deadline_s
    while True:
        value = what()
        if not value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@needs_tracer
@pytest.mark.parametrize("mechanism", [None, pytest.param("perf", marks=needs_root)], ids=["best", "perf"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGQUIT], ids=["SIGKILL", "SIGQUIT"])
def test_killing_trace_leaves_no_process_and_no_cgroup(sig, mechanism, tmp_path):
    """best: bpf as root (a cgroup), ptrace otherwise (PTRACE_O_EXITKILL); perf: neither,
    only the process group. (Another perflab trace on the machine removes a stale cgroup,
    killing what is in it: the deadline is short so that it cannot pass for us.)"""
    tag = f"{1000 + os.getpid() % 9000}.{sig}{len(mechanism or '')}"  # this test's own sleep
    started = tmp_path / "started"
    script = f"sleep {tag} & sleep {tag} & touch {started}; wait"
    proc = subprocess.Popen(
        [*COMMAND, "trace", *([f"--mechanism={mechanism}"] if mechanism else []), "--", "sh", "-c", script],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=tmp_path,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))  # SIGQUIT: no core file
    try:
        deadline = time.monotonic() + 60
        while not (started.exists() and len(_sleeps(tag)) == 2):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        cgroups = _cgroups(proc.pid)
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert _poll(lambda: _sleeps(tag)) == []
        assert _poll(lambda: [c for c in cgroups if c.exists()]) == []
    finally:
        for pid in _sleeps(tag):  # a failing run must not leave them either
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _cgroups(owner: int) -> list[Path]:
    try:
        from perflab.observe.trace.cgroup import PREFIX, parent_dir

        return list(parent_dir().glob(f"{PREFIX}{owner}-*"))
    except Exception:  # no cgroup v2 here: nothing to leave behind
        return []


# ---- stdout full, stderr closed, too little memory ---------------------------------------------
@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "600"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("args", [
    ["list"], ["list", "--json"], ["inspect", "{pid}"], ["inspect", "{pid}", "--maps"],
    ["inspect", "{pid}", "--json"], ["trace", "--json", "--", "/bin/true"],
])
def test_stdout_on_a_full_device_is_one_line_and_exit_1(args, sleeper):
    if args[0] == "trace" and not HAVE_TRACER:
        pytest.skip("kernels not built")
    with open("/dev/full", "wb") as full:
        p = perflab(*[a.format(pid=sleeper) for a in args], stdout=full)
    one_line(p, 1, "cannot write to stdout: No space left on device")


@pytest.mark.parametrize("args,code,out", [
    (["list"], 0, "claims"),
    (["inspect", "{pid}"], 0, "threads"),
    (["list", "nope"], 2, ""),  # the error has nowhere to go, and is not put on stdout
    (["trace", "--", "/bin/true"], 0, ""),
    (["trace", "--json", "--", "/bin/true"], 0, '"exit_status": 0'),
])
def test_a_closed_stderr_does_not_crash(args, code, out, sleeper):
    if args[0] == "trace" and not HAVE_TRACER:
        pytest.skip("kernels not built")
    argv = [a.format(pid=sleeper) for a in args]
    p = subprocess.run(["sh", "-c", 'exec "$@" 2>&-', "sh", *COMMAND, *argv], stdin=subprocess.DEVNULL,
                       capture_output=True, env=ENV, timeout=120)
    assert p.returncode == code, p.stdout[-2000:]
    assert b"Traceback" not in p.stdout and b"perflab:" not in p.stdout
    assert out.encode() in p.stdout


def test_too_small_an_address_space_is_one_line():
    limit = 30000 * 1024  # ulimit -v 30000

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    if subprocess.run([sys.executable, "-c", "pass"], preexec_fn=cap).returncode != 0:
        pytest.skip("this Python cannot even start in 30000 KiB")
    p = perflab("list", preexec_fn=cap)
    if p.returncode == 0:
        pytest.skip("perflab fits in 30000 KiB here")
    one_line(p, 1, "")


# ---- parameters ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["1_0", "١٢", "１２", " 12", "12 ", "0x10", "1e2", ""])
def test_int_param_takes_ascii_decimal_only(text):
    with pytest.raises(UsageError, match="is not an integer"):
        Param("n", 1, 0, 10**6, "h").parse(text)


@pytest.mark.parametrize("text", ["nan", "inf", "1_0.5", "١.٥", "1e", "--1", " 1.5"])
def test_float_param_takes_ascii_decimal_only(text):
    with pytest.raises(UsageError, match="is not a number"):
        Param("x", 1.0, 0.0, 1e9, "h", kind=float).parse(text)


def test_params_still_parse():
    assert Param("n", 1, -5, 10**6, "h").parse("+12") == 12 and Param("n", 1, -5, 10, "h").parse("-5") == -5
    assert Param("x", 1.0, 0.0, 1e9, "h", kind=float).parse("1.5e3") == 1500.0


@pytest.mark.parametrize("params,needle", [
    (["pages=1_0"], "is not an integer"),
    (["pages=١٢"], "is not an integer"),
    (["pages=12", "pages=13"], "given twice"),
    (["pages=12", "pages=12"], "given twice"),
])
def test_param_cli_cases_are_usage_errors(params, needle, tmp_path):
    args = [a for p in params for a in ("--param", p)]
    p = perflab("run", "fork.cow", *args, "--quick", "--db", str(tmp_path / "p.db"), timeout=300)
    one_line(p, 2, needle)


# ---- XDG base directories: relative values are ignored (XDG Base Directory spec) ---------------
def test_relative_xdg_cache_home_is_ignored(monkeypatch):
    from perflab.claims import _subjects
    from perflab.observe import storage

    monkeypatch.delenv("PERFLAB_SCRATCH_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert storage.scratch_dir()[0] == Path.home() / ".cache" / "perflab"
    assert _subjects.cache_root() == Path.home() / ".cache" / "perflab"
    monkeypatch.delenv("HOME", raising=False)  # Go then needs GOCACHE: it refuses a relative XDG_CACHE_HOME
    env = _subjects._env(Path("/abs/cache"))
    assert env["GOCACHE"] == "/abs/cache/go-build"


def test_relative_xdg_data_home_is_ignored(monkeypatch):
    from perflab.results.store import default_path

    monkeypatch.delenv("PERFLAB_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")
    assert default_path() == Path.home() / ".local" / "share" / "perflab" / "perflab.db"


# ---- the results database: crafted, corrupt, foreign or not a file ----------------------------

def _stored_run(db, plugin_env) -> None:
    p = perflab("run", "fake.ok", "--db", str(db), env={**ENV, **plugin_env})
    assert p.returncode == 0, p.stderr


def test_show_and_history_print_a_crafted_records_escapes_escaped(tmp_path, plugin):
    db = tmp_path / "p.db"
    _stored_run(db, plugin["env"])
    import sqlite3

    conn = sqlite3.connect(db)
    rec = json.loads(conn.execute("SELECT record FROM results").fetchone()[0])
    rec.update(summary=f"supported: {EVIL}", statement=EVIL, explanation=EVIL, rerun=f"perflab run {EVIL}")
    rec["evidence"]["rule"] = {EVIL: EVIL}
    conn.execute("UPDATE results SET record = ?, summary = ?", (json.dumps(rec), EVIL))
    conn.execute("UPDATE runs SET budget = ?", (EVIL,))
    conn.commit()
    conn.close()
    for args in (["show"], ["history"], ["history", "fake.ok"]):
        p = perflab(*args, "--db", str(db), env={**ENV, **plugin["env"]})
        assert p.returncode == 0, p.stderr
        no_escapes(p.stdout + p.stderr)
        assert b"forged row" not in [line.strip() for line in p.stdout.splitlines()]
    p = perflab("show", "--json", "--db", str(db))
    assert json.loads(p.stdout)["statement"] == EVIL  # --json stays exact


def test_a_fifo_as_database_is_one_line_and_no_hang(tmp_path):
    fifo = tmp_path / "db"
    os.mkfifo(fifo)
    for args in (["show"], ["history"], ["run", "space.kthread-no-user"]):
        p = perflab(*args, "--db", str(fifo), timeout=20)
        one_line(p, 1, "not a regular file")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_corrupt_database_body_is_one_line(tmp_path, plugin):
    db = tmp_path / "p.db"
    _stored_run(db, plugin["env"])
    data = bytearray(db.read_bytes())
    for at in range(4096, len(data), 512):  # every page after the header: garbage
        data[at:at + 64] = b"\xa5" * 64
    db.write_bytes(bytes(data))
    for args in (["show"], ["history", "fake.ok"], ["run", "fake.ok"]):
        p = perflab(*args, "--db", str(db), env={**ENV, **plugin["env"]})
        err = p.stderr.decode(errors="replace")
        assert p.returncode == 1 and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1 and "database" in err, err


def test_another_programs_sqlite_file_is_refused_and_untouched(tmp_path):
    import sqlite3

    db = tmp_path / "theirs.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE orders (id INTEGER)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    one_line(perflab("run", "space.kthread-no-user", "--db", str(db)), 1, "not a perflab database")
    assert db.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["theirs.db"]


def test_run_with_stdout_on_a_full_device_stores_its_verdict(tmp_path, plugin):
    db = tmp_path / "p.db"
    with open("/dev/full", "wb") as full:
        p = perflab("run", "fake.ok", "--json", "--db", str(db), stdout=full, env={**ENV, **plugin["env"]})
    err = p.stderr.decode()
    assert p.returncode == 1 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "perflab: cannot write to stdout: No space left on device"  # its last word
    shown = perflab("show", "--json", "--db", str(db))
    assert json.loads(shown.stdout)["claim"] == "fake.ok"
