"""perflab inspect PID: one process seen from both sides of the system-call boundary.

User side: every mapping classified (executable, libraries, heap, main stack, one stack
per thread, anonymous, files, vdso/vvar/vsyscall) with size, RSS and PSS. Kernel side:
identity, state, scheduling, credentials, cgroups, namespaces, the fd table, every
thread, and which kernel objects the tasks share (kcmp). --json gives all of it; the
terminal view (cli/inspect_view.py) the first --limit rows of each long table.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading

from perflab.results.output import writing


def _pid(text: str) -> int:
    try:
        pid = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"PID must be a positive integer, got {text!r}") from None
    if pid <= 0:
        raise argparse.ArgumentTypeError(f"PID must be a positive integer, got {text!r}")
    return pid


def _limit(text: str) -> int:
    try:
        n = int(text, 10)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"--limit must be an integer >= 0, got {text!r}")
    return n


def add_parser(sub) -> None:
    p = sub.add_parser("inspect", help="show a process: address space, kernel side, fds, threads, sharing")
    p.add_argument("pid", type=_pid, metavar="PID", help="process (or thread) ID")
    p.add_argument("--maps", action="store_true", help="list every mapping, not only the totals per kind")
    p.add_argument("--limit", type=_limit, default=20, metavar="N",
                   help="rows per long table on the terminal (default 20, 0 = all)")
    p.add_argument("--no-kcmp", dest="kcmp", action="store_false", help="skip the kcmp sharing analysis")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout, units in field names")
    p.set_defaults(func=run)


def _import_view() -> None:
    for name in ("rich.console", "perflab.cli.inspect_view"):
        importlib.import_module(name)


def run(args) -> int:
    from perflab.observe.procfs.snapshot import collect, collect_view, json_chunks

    if args.json:
        # json.dumps(collect(...)) in compact form, in pieces: ~13 MB for 10,000 threads,
        # written as bytes, never joined into one string
        chunks = json_chunks(args.pid, sharing=args.kcmp)
        with writing(sys.stdout):  # a full or failing stdout: one line, exit 1
            sys.stdout.flush()
            out = sys.stdout.buffer
            for chunk in chunks:
                out.write(chunk)
            out.write(b"\n")
        return 0
    # rich is imported only here (cli/inspect_view.py): --json does without it. It is
    # imported by a thread while this one waits for the reader (the wait releases the
    # GIL), ~20 ms of the terminal view's start-up off its wall time.
    importer = threading.Thread(target=_import_view, daemon=True)
    importer.start()
    # The terminal shows `limit` rows of each long table: only those are decoded.
    snap = collect_view(args.pid, args.limit, sharing=args.kcmp) if args.limit else collect(args.pid, sharing=args.kcmp)
    importer.join()
    from rich.console import Console

    from perflab.cli.inspect_view import render
    from perflab.core.safe import safe_tree

    with writing(sys.stdout):
        # Names, argv, paths, user names in the snapshot are the inspected process's to
        # choose: every string is made terminal-safe before any is printed (--json
        # escapes them itself).
        render(safe_tree(snap), Console(file=sys.stdout), maps=args.maps, limit=args.limit)
    return 0
