"""A claim file's Definition as a real ``Claim``: its Rule (the file's ranges as Regions),
its plan (commands timed by the ``cmdtime`` kernel, one fresh kernel process per sample),
and its decision (the same helpers as the built-in claims: decide/rules.py).

Once built, a user claim is an ordinary claim: the runner samples it in seeded random
order, interleaved with an A/A control of one of its commands against itself, looks at
the budget's planned rounds, stops early when decided, stores it, and decides it again
from the record. Nothing downstream knows it came from a file, except that its rerun
command names the file and its ``source_hash`` covers the file's text
(engine/provenance.py).

Per kind (the decision quantity, then the series it is decided on):

* ratio: metric(a) / metric(b), the ratio of the medians (``ratio_rule``); series ``a``
  and ``b``; A/A on ``a``.
* scaling: the growth exponent of the metric over the top decade of n, the affine fit
  beside it (``exponent_rule``, as the built-in sweeps); series ``command`` swept over
  ``n``. With ``baseline``, the exponent of the cost net of the fixed part: each round's
  sample at ``n = baseline`` (series ``baseline``) is subtracted from that round's
  samples, so a process start-up of a millisecond does not flatten a linear cost
  (DESIGN.md: "an exponent fitted where a fixed cost still weighs"). A/A at ``aa_n``.
* threshold: the median of the metric (``median_rule``); series ``command``; A/A on it.

A sample is the median of ``runs`` runs of the command inside one cmdtime process
(default: the budget's batches, as every timing kernel); wall and CPU times are in ms.
"""

from __future__ import annotations

from statistics import median
from typing import Any

from perflab.core.claim import Claim, Curve, Evidence, Plan, SeriesSpec, Settings
from perflab.core.errors import KernelFailed
from perflab.core.record import Decision
from perflab.core.rule import Region, Rule
from perflab.decide.rules import exponent_rule, median_rule, ratio_rule
from perflab.engine import dryrun, process
from perflab.userclaims.definition import Definition

KERNEL = "cmdtime"
SLACK_S = 10.0  # beyond the runs' own limits, before perflab's process timeout kills the kernel
NET = "command net of baseline"


def show_n(n: float) -> str:
    """n as it is put into a command: 1000, not 1000.0."""
    return str(int(n)) if float(n).is_integer() else repr(n)


def command(d: Definition, role: str, n: float | None = None) -> list[str]:
    """The argv of a role ("a", "b", "argv"), with {n} replaced where given."""
    argv = list(d.commands[role])
    return argv if n is None else [a.replace("{n}", show_n(n)) for a in argv]


def kernel_argv(d: Definition, settings: Settings, cmd: list[str], runs: int | None = None,
                read: bool = True) -> list[str]:
    """The cmdtime process that runs ``cmd`` ``runs`` times (docs/kernels.md, "cmdtime");
    ``read``: apply the metric's regex to its stdout (not to the setup's)."""
    out = [KERNEL, f"--cpu={settings.cpu if d.pin else -1}", f"--runs={runs or d.runs or settings.budget.batches}",
           f"--timeout-ms={round(d.timeout_s * 1000)}", f"--chdir={d.directory or '.'}", f"--label={d.id}"]
    if read and d.metric.regex is not None:
        out.append(f"--regex={d.metric.regex}")
    return [*out, "--", *cmd]


def sample(d: Definition):
    """The record -> one sample: the median over the process's runs (ms, or the regex's number)."""
    if d.metric.time == "wall":
        return lambda rec: median(rec["wall_ns"]) / 1e6
    if d.metric.time == "cpu":
        return lambda rec: median(u + s for u, s in zip(rec["user_ns"], rec["sys_ns"])) / 1e6
    return lambda rec: float(median(rec["values"]))


def rule(d: Definition) -> Rule:
    m = d.metric.words()
    if d.kind == "ratio":
        quantity, short, unit = f"{m} of a / of b", "a / b", ""
    elif d.kind == "scaling":
        net = f", net of n = {show_n(d.baseline)}" if d.baseline is not None else ""
        quantity, short, unit = f"growth exponent of {m}{net} over the top decade of n", "exponent", ""
    else:
        quantity, short, unit = f"median {m}", "median", d.metric.unit
    reason = d.reason or (f"pre-registered by the author of {d.path or 'the claim file'}; its first run stores "
                          "this definition's hash, and history marks verdicts of any later change")
    return Rule(quantity=quantity, short=short, supported=Region(*d.supported), refuted=Region(*d.refuted),
                unit=unit, version=d.version, reason=reason)


def _spec(d: Definition, settings: Settings, name: str, x: str | None, xs: tuple, argv) -> SeriesSpec:
    runs = d.runs or settings.budget.batches
    return SeriesSpec(name=name, x=x, unit=d.metric.unit, xs=xs, argv=argv,
                      value=sample(d), timeout_s=runs * d.timeout_s + SLACK_S)


def series(d: Definition, settings: Settings) -> list[SeriesSpec]:
    def fixed(role: str):
        return lambda _x: kernel_argv(d, settings, command(d, role))

    if d.kind == "ratio":
        return [_spec(d, settings, "a", None, (None,), fixed("a")), _spec(d, settings, "b", None, (None,), fixed("b"))]
    if d.kind == "threshold":
        return [_spec(d, settings, "command", None, (None,), fixed("argv"))]
    specs = [_spec(d, settings, "command", "n", d.n, lambda n: kernel_argv(d, settings, command(d, "argv", n)))]
    if d.baseline is not None:
        base = d.baseline
        specs.append(_spec(d, settings, "baseline", None, (None,),
                           lambda _x: kernel_argv(d, settings, command(d, "argv", base))))
    return specs


def plan_for(d: Definition):
    def plan(settings: Settings) -> Plan:
        facts: dict[str, Any] = {"definition_hash": d.definition_hash, "definition": d.to_json(),
                                 "runs_per_sample": d.runs or settings.budget.batches}
        if d.setup is not None:
            facts["setup"] = {"argv": list(d.setup)}
            if dryrun.active():
                facts["setup"]["ran"] = "not in a dry run: once before sampling"
            else:  # once, before any sample; a failure is the claim's error verdict (its stderr kept)
                try:
                    rec = process.run_kernel(kernel_argv(d, settings, list(d.setup), runs=1, read=False),
                                             d.timeout_s + SLACK_S)
                except KernelFailed as exc:
                    raise KernelFailed(f"the setup command failed: {exc}", exc.stderr, exc.returncode) from None
                facts["setup"]["wall_ms"] = rec["wall_ns"][0] / 1e6
        return Plan(series(d, settings), facts)

    return plan


def net_curve(ev: Evidence) -> Curve:
    """The sweep net of the fixed part: each round's baseline sample subtracted from the
    samples of the same round (one per point per round, in order)."""
    sweep, base = ev.series["command"], ev.series["baseline"].points.get(None, [])
    out = Curve(NET, sweep.x, sweep.unit)
    for n, values in sweep.points.items():
        out.points[n] = [v - b for v, b in zip(values, base)]
    return out


def decide_for(d: Definition):
    def decide(ev: Evidence, r: Rule) -> Decision:
        if d.kind == "ratio":
            return ratio_rule(ev.series["a"].points.get(None, []), ev.series["b"].points.get(None, []), r, ev)
        if d.kind == "threshold":
            return median_rule(ev.series["command"].points.get(None, []), r, ev)
        curve = net_curve(ev) if d.baseline is not None else ev.series["command"]
        return exponent_rule(curve, r, ev)

    return decide


def derive_for(d: Definition):
    """Figures beside the decision: medians of each side (ratio), the fixed part and the
    net medians (scaling with a baseline)."""
    def derive(ev: Evidence) -> dict[str, Any]:
        med = {name: median(c.points[x]) for name, c in ev.series.items() if c.role == "evidence"
               for x in c.points if x is None and c.points[x]}
        out: dict[str, Any] = {f"median {k} ({ev.series[k].unit})": v for k, v in med.items()}
        if d.kind == "ratio" and "a" in med and "b" in med:
            out[f"a - b ({ev.series['a'].unit})"] = med["a"] - med["b"]
        if d.kind == "scaling" and d.baseline is not None:
            net = net_curve(ev)
            out["net median by n"] = {show_n(n): median(v) for n, v in sorted(net.points.items()) if v}
        return out

    return derive


def mechanism(d: Definition) -> str:
    if d.mechanism:
        return d.mechanism
    what = {"ratio": "the ratio of the medians of a and b",
            "scaling": "how it grows with n (the growth exponent over the top decade of the sweep, with the "
                       "affine fit beside it)",
            "threshold": "its median"}[d.kind]
    return (f"A claim written in {d.path or 'a claim file'}. perflab runs each command without a shell in a fresh "
            "process started by its cmdtime kernel, which times it with CLOCK_MONOTONIC from just before fork(2) "
            "to just after wait4(2) (process creation, exec and dynamic linking included) or reads the number the "
            "command prints, and decides on " + what + ". Samples are taken in a seeded random order, interleaved "
            "with an A/A control that runs one command against itself, so drift hits every side alike.")


def claim(d: Definition) -> Claim:
    aa: tuple[str, Any] = ("a", None) if d.kind == "ratio" else ("command", d.aa_n if d.kind == "scaling" else None)
    return Claim(id=d.id, statement=d.statement, seed_point=f"a user's claim file ({d.path or 'from a record'})",
                 mechanism=mechanism(d), kernel=KERNEL, rule=rule(d), plan=plan_for(d), decide=decide_for(d),
                 aa=aa, derive=derive_for(d), source=d.path,
                 sources=("userclaims/validate.py",))  # its defaults are part of the experiment (provenance)


def from_record(record: Any) -> Claim | None:
    """The claim a stored verdict of a claim file was measured and decided under, rebuilt
    from the definition the record carries (``evidence.facts.definition``), so that it can
    be decided again, shown or compared without the file; None for any other claim."""
    rec = record.to_json() if hasattr(record, "to_json") else record
    d = ((rec.get("evidence") or {}).get("facts") or {}).get("definition")
    return claim(Definition.from_json(d)) if isinstance(d, dict) else None
