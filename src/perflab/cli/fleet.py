"""perflab fleet run | status: claims put to the test on many hosts through Dask (fleet/).

``fleet status`` lists the workers at a scheduler with what each says of itself (kernel,
CPU, cores, perflab) and whether it can run this perflab's claims, before anything runs.
``fleet run`` submits one task per host, prints progress per host on stderr (host, claim
i/N, elapsed) and each verdict on stdout as it arrives (``--json``: the record, with
``fleet``: {id, host}), stores everything under one fleet id, and ends with the claims x
hosts table (``perflab show FLEET`` prints it again).

Exit codes: 0 the fleet ran (whatever the verdicts; a lost host's claims are error
records); 1 the environment refused (no distributed, no scheduler, no worker, no host
able to run the claims, the database); 2 usage; 130 interrupted (every task told to stop
and kill its processes first).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys

from perflab.cli.common import add_db
from perflab.cli.run import param_items, seed_arg
from perflab.core.errors import EnvironmentRefused
from perflab.core.params import BUDGETS
from perflab.core.safe import safe
from perflab.results.output import writing


def add_parser(sub) -> None:
    p = sub.add_parser("fleet", help="run claims on many hosts through a Dask scheduler (perflab[fleet])")
    fleet = p.add_subparsers(dest="fleet_command", metavar="run|status", parser_class=type(p))
    fleet.required = True

    run_p = fleet.add_parser("run", help="run claims on the fleet's hosts, verdicts home under one fleet id")
    run_p.add_argument("selectors", nargs="*", metavar="TOPIC|CLAIM")
    _connection(run_p)
    where = run_p.add_mutually_exclusive_group()
    where.add_argument("--hosts", metavar="A,B,C", type=_names, help="these workers (their --name), in this order")
    where.add_argument("--all-hosts", action="store_true", help="every worker at the scheduler (the default)")
    run_p.add_argument("--host-timeout", metavar="SECONDS", type=_seconds,
                       help="the longest a host may take; past it its processes are killed and its claims not done "
                            "are error 'host timed out' (default: no limit)")
    budget = run_p.add_mutually_exclusive_group()
    budget.add_argument("--quick", dest="budget", action="store_const", const="quick", help="smallest sample budget")
    budget.add_argument("--rigorous", dest="budget", action="store_const", const="rigorous",
                        help="largest sample budget")
    budget.add_argument("--budget", dest="budget", choices=sorted(BUDGETS), help="budget by name (default: default)")
    run_p.add_argument("--seed", type=seed_arg, help="random seed, the same on every host (default: one drawn here)")
    run_p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="set a claim parameter on every host")
    run_p.add_argument("--cpu", type=int, help="CPU to pin kernels to on every host (default: each host's last)")
    run_p.add_argument("--no-rerun", action="store_true", help="as perflab run --no-rerun, on every host")
    run_p.add_argument("--json", action="store_true", help="JSON Lines on stdout: each record as it arrives")
    run_p.add_argument("--samples", action="store_true", help="with --json: raw samples and kernel records too")
    add_db(run_p)
    run_p.set_defaults(func=run, budget="default")

    status_p = fleet.add_parser("status", help="the workers at a scheduler: host facts, perflab, ready or why not")
    _connection(status_p)
    status_p.add_argument("--json", action="store_true", help="one JSON object per worker")
    status_p.set_defaults(func=status)


def _connection(p) -> None:
    p.add_argument("--scheduler", metavar="ADDRESS", help="the Dask scheduler, e.g. tcp://HOST:8786 (tls://... with TLS)")
    p.add_argument("--scheduler-file", metavar="FILE", help="...or the file 'dask scheduler --scheduler-file' wrote")
    p.add_argument("--tls-ca-file", metavar="FILE", help="CA certificate (PEM) for TLS, as dask scheduler/worker take")
    p.add_argument("--tls-cert", metavar="FILE", help="this client's certificate (PEM)")
    p.add_argument("--tls-key", metavar="FILE", help="this client's private key (PEM)")


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"no host name in {text!r}")
    return names


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 10**7:
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds above 0")
    return value


def _say(text: str) -> None:
    sys.stdout.flush()  # what stdout holds first, so that the two streams interleave in order on a terminal
    print(safe(f"perflab: {text}"), file=sys.stderr, flush=True)


def _client(args):
    from perflab import fleet
    from perflab.fleet import cluster

    fleet.require()
    return cluster.connect(args.scheduler, args.scheduler_file,
                           cluster.Tls(args.tls_ca_file, args.tls_cert, args.tls_key))


def _stop(f) -> None:
    """Every host told to stop; a scheduler already gone (OSError) cannot be told, and the
    error that ended the fleet is the one to show."""
    try:
        f.stop()
    except OSError as exc:
        _say(f"could not tell the hosts to stop ({exc}): a run already started there goes on to its end or its "
             "--host-timeout, or until its worker dies")


def status(args) -> int:
    from perflab.fleet import cluster, hosts

    client = _client(args)
    try:
        workers = cluster.survey(client, None)
        scheduler = cluster.address(client)
    finally:
        client.close()
    with writing(sys.stdout):
        if args.json:
            for w in workers:
                print(json.dumps(hosts.describe(w)))
        else:
            from rich.console import Console
            from rich.markup import escape
            from rich.table import Table

            table = Table(title=safe(f"workers at {scheduler}"))
            for col in ("host", "address", "perflab", "kernel", "CPU", "cores", "state"):
                table.add_column(col)
            for w in workers:
                table.add_row(*(escape(c) for c in hosts.row(w)))
            Console(file=sys.stdout, highlight=False, width=max(120, Console(file=sys.stdout).width)).print(table)
    for group in hosts.shared_machines(workers):
        _say(f"{', '.join(group)} run on one machine (the same machine id): their experiments share its CPUs")
    return 0


def run(args) -> int:
    from perflab import api
    from perflab.engine import registry
    from perflab.fleet import cluster, dispatch, hosts
    from perflab.results import fleet_view, terminal
    from perflab.results.store import Store

    claims = registry.select(list(args.selectors))
    params = param_items(args.param)
    api.parse_params(claims, params)  # a bad parameter is a usage error here, not on every host
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    run_args = [c.id for c in claims] + ["--budget", args.budget, "--seed", str(seed)]
    for name, value in params.items():
        run_args += ["--param", f"{name}={value}"]
    if args.cpu is not None:
        run_args += ["--cpu", str(args.cpu)]
    if args.no_rerun:
        run_args.append("--no-rerun")
    with Store(args.db) as store:  # refused before any host is asked, if it cannot be used
        client = _client(args)
        try:
            workers = cluster.survey(client, args.hosts)
            scheduler = cluster.address(client)

            def verdict(host: str, v) -> None:
                with writing(sys.stdout):
                    if args.json:
                        print(json.dumps({**v.to_json(samples=args.samples), "fleet": {"id": f.id, "host": host}}),
                              flush=True)
                    else:
                        print(safe(f"{host}  {v.claim}  {terminal.outcome_text(v)}  {v.summary}"), flush=True)

            f = dispatch.Fleet(client, store, claims, run_args, budget=args.budget, seed=seed,
                               host_timeout=args.host_timeout, scheduler=scheduler, argv=sys.argv[1:], say=_say,
                               on_verdict=verdict)
            ready = [w for w in workers if w.refused is None]
            _say(f"fleet {f.id}: {len(claims)} claim(s) on {len(ready)} of {len(workers)} host(s), budget "
                 f"{args.budget}, seed {seed}, scheduler {scheduler}, database {store.path}")
            for w in workers:
                if w.refused:
                    _say(f"{w.name}: refused: {w.refused}")
            for group in hosts.shared_machines(ready):
                _say(f"{', '.join(group)} run on one machine (the same machine id): their experiments share its CPUs")
            if ready:
                before, why = cluster.no_reruns(client)
                if why:
                    _say(f"could not set the scheduler's allowed-failures to 0 ({why}); a lost host is still found "
                         "and never re-run")
                elif before:
                    _say(f"the scheduler's allowed-failures was {before}, now 0: a task whose worker dies is not run "
                         "again")
            status = "failed"
            try:
                f.begin(workers)  # in here: a Ctrl-C while tasks are being sent stops those already sent
                if not ready:
                    raise EnvironmentRefused("no host can run these claims (each one's reason is above)")
                try:
                    f.wait()
                except OSError as exc:  # distributed's CommClosedError is one: the scheduler went away
                    raise EnvironmentRefused(safe(f"lost the scheduler {scheduler}: {exc}")) from None
                status = "complete"
            except KeyboardInterrupt:
                status = "interrupted"
                _say(f"interrupted: telling every host to stop (up to {dispatch.STOP_WAIT_S:g} s)")
                _stop(f)
                raise
            except BaseException:
                _stop(f)
                raise
            finally:
                f.finish(status)
        finally:
            client.close()
    counts = ", ".join(f"{n} {k}" for k, n in f.counts().items())
    _say(f"fleet {f.id} complete: {counts}; 'perflab show {f.id}' shows it again")
    if not args.json:
        with writing(sys.stdout):
            fleet_view.render(fleet_view.load(f.id, args.db), sys.stdout)
    return 0
