"""perflab run [TOPIC|CLAIM|FILE.toml|DIR ...]: measure, decide, store, print.

Progress and chatter go to stderr; verdicts (a table, or JSON Lines with --json) to
stdout. Each verdict is stored as soon as its claim finishes.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys

from perflab.api import Run, choose_cpu, parse_params
from perflab.cli.common import add_db, add_json
from perflab.core.claim import Settings
from perflab.core.errors import PerflabError, UsageError
from perflab.core.params import BUDGETS
from perflab.core.record import Verdict
from perflab.core.safe import safe
from perflab.engine import dryrun, registry
from perflab.observe import host as host_facts
from perflab.results import plan as plan_view
from perflab.results import terminal
from perflab.results.noise import warn_if_noisy
from perflab.results.output import writing


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run claims (topics, claim ids, claim files or directories of them; none = "
                                   "every claim)")
    p.add_argument("selectors", nargs="*", metavar="TOPIC|CLAIM|FILE.toml|DIR")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--quick", dest="budget", action="store_const", const="quick", help="smallest sample budget")
    budget.add_argument("--rigorous", dest="budget", action="store_const", const="rigorous", help="largest sample budget")
    budget.add_argument("--budget", dest="budget", choices=sorted(BUDGETS), help="budget by name (default: default)")
    p.add_argument("--seed", type=seed_arg, help="random seed, 0 to 2^63-1 (plan order, bootstrap); printed in every "
                   "rerun command")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="set a claim parameter (applies to every selected claim that has it)")
    p.add_argument("--cpu", type=int, help="CPU to pin kernels to (default: the last one allowed)")
    p.add_argument("--no-rerun", action="store_true",
                   help="do not measure a claim once more at the end of the run when its A/A control failed")
    p.add_argument("--samples", action="store_true",
                   help="with --json: every point's raw samples and every kernel record (a record that can be "
                        "imported and decided again elsewhere)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the claims (claim files included) and print each plan: commands, sample counts, "
                        "rule; nothing is measured or stored")
    add_db(p)
    add_json(p)
    p.set_defaults(func=run, budget="default")


def seed_arg(text: str) -> int:
    """A seed the database can store (SQLite INTEGER is 64-bit signed)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{text} is outside 0..2^63-1")
    return value


def param_items(items: list[str]) -> dict[str, str]:
    """--param NAME=VALUE ... -> {name: text}; a name given twice is a usage error (the
    last would silently win otherwise)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise UsageError(f"bad --param {item!r}: expected NAME=VALUE")
        if name in out:
            raise UsageError(f"--param {name} given twice ({out[name]!r} and {text!r}): give it once")
        out[name] = text
    return out


class _Progress:
    """A rich progress bar on a terminal; a line per claim otherwise."""

    def __init__(self, total_claims: int):
        self.total = total_claims
        self.tty = sys.stderr.isatty()
        self.bar = None
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[note]}"),
                                TimeElapsedColumn(), console=Console(file=sys.stderr), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("", total=1, note="")

    def start(self, index: int, total: int, claim) -> None:
        label = f"[{index}/{total}] {claim.id}"
        if self.bar:
            self.bar.update(self.task, description=label, completed=0, total=1, note="")
        else:
            print(f"perflab: {label} ...", file=sys.stderr, flush=True)

    def step(self, claim_id: str, done: int, planned: int, note: str) -> None:
        if self.bar:
            self.bar.update(self.task, completed=done, total=planned, note=note)

    def finish(self, index: int, v: Verdict) -> None:
        reason = f" ({v.reason.value})" if v.reason else ""
        line = f"[{index}/{self.total}] {v.claim}: {v.outcome.value}{reason} ({v.duration_s:.1f} s)"
        if self.bar:
            self.bar.console.print(line)
        else:
            print(f"perflab: {line}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


def run(args) -> int:
    if args.dry_run:
        return _dry_run(args)
    r = Run(args.selectors, budget=args.budget, seed=args.seed, params=param_items(args.param), cpu=args.cpu,
            db=args.db, argv=sys.argv[1:], rerun_unsteady=not args.no_rerun)
    progress = None
    status = "interrupted"  # unless it completes, or fails below
    done = 0

    def show(v: Verdict) -> None:
        nonlocal done
        done += 1
        progress.finish(done, v)
        _changed_claim_file(r, v)
        if args.json:  # printed even when the database refused it: the verdict is not lost
            with writing(sys.stdout):  # a full stdout (/dev/full): one line; the verdict is stored
                print(json.dumps(v.to_json(samples=args.samples)), flush=True)

    try:
        print(f"perflab: run {r.run_id}, {len(r.claims)} claim(s), budget {r.budget.name}, seed {r.seed}, "
              f"CPU {r.cpu}, database {r.store.path}", file=sys.stderr)
        progress = _Progress(len(r.claims))
        for _ in r.measure(on_start=progress.start, on_progress=progress.step, on_verdict=show):
            pass
        status = "complete"
    except BrokenPipeError:
        raise  # the reader went away: interrupted
    except Exception:
        status = "failed"  # the environment refused something, or a bug: the run did not finish
        raise
    finally:
        _finish(r, status, progress, args.json)
    return 0


def _dry_run(args) -> int:
    """The plans the run would follow (engine/dryrun.py); no database is opened."""
    claims = registry.select(args.selectors)
    params = parse_params(claims, param_items(args.param))
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    cpu, facts = choose_cpu(args.cpu), host_facts.collect()
    plans = [dryrun.describe(c, Settings(params=params[c.id], budget=BUDGETS[args.budget], seed=seed, cpu=cpu,
                                         host=facts)) for c in claims]
    with writing(sys.stdout):
        if args.json:
            for p in plans:
                print(json.dumps(p))
        else:
            plan_view.render(plans, sys.stdout)
    return 0


def _changed_claim_file(r: Run, v: Verdict) -> None:
    """A claim file whose definition is not the one its first run registered: say so
    (userclaims/registration.py); history marks every such verdict."""
    h = (v.evidence.get("facts") or {}).get("definition_hash")
    if not h or not r.store:
        return
    from perflab.userclaims import registration  # claim files only

    note = registration.note(r.store.records(v.claim), h)
    if note:
        print(safe(f"perflab: {v.claim}: {note} (see 'perflab history {v.claim}')"), file=sys.stderr)


def _quietly(fn, *args, **kwargs) -> None:
    """A write to a terminal that went away (EIO after SIGHUP) or a closed pipe, on the
    way out with another exception already propagating: it must not replace that one."""
    try:
        fn(*args, **kwargs)
    except OSError:
        pass


def _finish(r: Run, status: str, progress: _Progress | None, as_json: bool) -> None:
    # the database first, so that nothing the terminal does can leave the run 'running'
    unrecorded = None
    records = r.verdicts
    try:
        r.finish(status)
    except PerflabError as exc:  # e.g. the disk filled up
        unrecorded = exc
    finally:
        r.close()
    if progress is not None:
        _quietly(progress.close)
    if status != "complete":
        if unrecorded is not None:  # say it, but keep the error that stopped the run
            _quietly(print, f"perflab: {unrecorded}", file=sys.stderr)
        _quietly(print, f"perflab: run {r.run_id} {status}; {r.stored} verdict(s) stored in {r.store.path}",
                 file=sys.stderr)
        if not as_json and records:
            _quietly(terminal.render, records, sys.stdout)
        return
    if not as_json:
        with writing(sys.stdout):
            terminal.render(records, sys.stdout)
    warn_if_noisy(records)
    if unrecorded is not None:  # every verdict is stored, but not that the run completed
        raise unrecorded
