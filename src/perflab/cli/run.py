"""perflab run [TOPIC|CLAIM ...]: measure, decide, store, print.

Progress and chatter go to stderr; verdicts (a table, or JSON Lines with --json) to
stdout. Each verdict is stored as soon as its claim finishes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import sys
from typing import Any

from perflab import __version__
from perflab.observe import host
from perflab.engine import registry
from perflab.engine import runner
from perflab.core.claim import Claim, Settings
from perflab.cli.common import add_db, add_json
from perflab.core.errors import PerflabError, UsageError
from perflab.core.model import BUDGETS
from perflab.results import terminal
from perflab.results.noise import warn_if_noisy
from perflab.results.record import to_record
from perflab.results.store import Store


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run claims (topics or claim ids; none = every claim)")
    p.add_argument("selectors", nargs="*", metavar="TOPIC|CLAIM")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--quick", dest="budget", action="store_const", const="quick", help="smallest sample budget")
    budget.add_argument("--rigorous", dest="budget", action="store_const", const="rigorous", help="largest sample budget")
    budget.add_argument("--budget", dest="budget", choices=sorted(BUDGETS), help="budget by name (default: default)")
    p.add_argument("--seed", type=seed_arg, help="random seed, 0 to 2^63-1 (plan order, bootstrap); printed in every "
                   "rerun command")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="set a claim parameter (applies to every selected claim that has it)")
    p.add_argument("--cpu", type=int, help="CPU to pin kernels to (default: the last one allowed)")
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


def parse_params(claims: list[Claim], items: list[str]) -> dict[str, dict[str, Any]]:
    """--param NAME=VALUE -> {claim id: {name: value}}; unknown names and bad values are usage errors."""
    per_claim: dict[str, dict[str, Any]] = {c.id: c.defaults() for c in claims}
    given: dict[str, str] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise UsageError(f"bad --param {item!r}: expected NAME=VALUE")
        if name in given:  # never a silent last-wins: the rerun line would not say which
            raise UsageError(f"--param {name!r} given twice ({given[name]!r}, then {item!r}): give it once")
        given[name] = item
        owners = [c for c in claims if c.param(name)]
        if not owners:
            known = sorted({p.name for c in claims for p in c.params})
            raise UsageError(f"unknown parameter {name!r} for the selected claims (known: {', '.join(known) or 'none'})")
        for c in owners:
            per_claim[c.id][name] = c.param(name).parse(text)
    return per_claim


def choose_cpu(requested: int | None) -> int:
    allowed = sorted(os.sched_getaffinity(0))
    if requested is None:
        return allowed[-1]
    if requested not in allowed:
        raise UsageError(f"--cpu {requested} is not available to this process (allowed: {', '.join(map(str, allowed))})")
    return requested


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

    def start(self, index: int, claim_id: str) -> None:
        label = f"[{index}/{self.total}] {claim_id}"
        if self.bar:
            self.bar.update(self.task, description=label, completed=0, total=1, note="")
        else:
            print(f"perflab: {label} ...", file=sys.stderr, flush=True)

    def step(self, claim_id: str, done: int, planned: int, note: str) -> None:
        if self.bar:
            self.bar.update(self.task, completed=done, total=planned, note=note)

    def finish(self, index: int, rec: dict[str, Any]) -> None:
        line = f"[{index}/{self.total}] {rec['claim']}: {rec['outcome']} ({rec['duration_s']:.1f} s)"
        if self.bar:
            self.bar.console.print(line)
        else:
            print(f"perflab: {line}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def run(args) -> int:
    claims = registry.select(args.selectors)
    params = parse_params(claims, args.param)
    cpu = choose_cpu(args.cpu)
    budget = BUDGETS[args.budget]
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    store = Store(args.db)  # fail before measuring if the database cannot be used
    facts = host.collect()
    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(2)
    store.begin_run(run_id, _now(), __version__, budget.name, seed, sys.argv[1:], facts, host.fingerprint(facts))
    records: list[dict[str, Any]] = []
    progress = None
    status = "interrupted"  # unless it completes, or fails below
    stored = 0
    try:
        print(f"perflab: run {run_id}, {len(claims)} claim(s), budget {budget.name}, seed {seed}, "
              f"CPU {cpu}, database {store.path}", file=sys.stderr)
        progress = _Progress(len(claims))
        cache = runner.SampleCache()
        for index, claim in enumerate(claims, 1):
            progress.start(index, claim.id)
            settings = Settings(params=params[claim.id], budget=budget, seed=seed, cpu=cpu, host=facts)
            verdict = runner.run_claim(claim, settings, progress=progress.step, cache=cache)
            rec = to_record(verdict, claim.statement, facts, run_id, __version__)
            records.append(rec)
            progress.finish(index, rec)
            refused = None
            try:  # stored first: a closed stdout must not cost the database the verdict
                store.save_result(run_id, rec, verdict.samples)
                stored += 1
            except PerflabError as exc:
                refused = exc
            if args.json:  # printed even when the database refused it: the verdict is not lost
                print(json.dumps(rec), flush=True)
            if refused is not None:
                raise refused
        status = "complete"
    except BrokenPipeError:
        raise  # the reader went away: interrupted
    except Exception:
        status = "failed"  # the environment refused something, or a bug: the run did not finish
        raise
    finally:
        _finish(store, run_id, status, stored, records, progress, args.json)
    return 0


def _quietly(fn, *args, **kwargs) -> None:
    """A write to a terminal that went away (EIO after SIGHUP) or a closed pipe, on the
    way out with another exception already propagating: it must not replace that one."""
    try:
        fn(*args, **kwargs)
    except OSError:
        pass


def _finish(store: Store, run_id: str, status: str, stored: int, records: list[dict[str, Any]],
            progress: _Progress | None, as_json: bool) -> None:
    # the database first, so that nothing the terminal does can leave the run 'running'
    unrecorded = None
    try:
        store.finish_run(run_id, _now(), status)
    except PerflabError as exc:  # e.g. the disk filled up
        unrecorded = exc
    if progress is not None:
        _quietly(progress.close)
    if status != "complete":
        if unrecorded is not None:  # say it, but keep the error that stopped the run
            _quietly(print, f"perflab: {unrecorded}", file=sys.stderr)
        _quietly(print, f"perflab: run {run_id} {status}; {stored} verdict(s) stored in {store.path}", file=sys.stderr)
        if not as_json and records:
            _quietly(terminal.render, records, sys.stdout)
        return
    if not as_json:
        terminal.render(records, sys.stdout)
    warn_if_noisy(records)
    if unrecorded is not None:  # every verdict is stored, but not that the run completed
        raise unrecorded
