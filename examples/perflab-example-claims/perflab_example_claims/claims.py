"""example.sleep-not-early: a plug-in claim, with the same contract as perflab's own
(CONTRIBUTING.md): a pre-registered Rule, a plan of series measured by a perflab kernel in
fresh processes, and a pure decision. It times a command with perflab's cmdtime kernel
(docs/kernels.md, "cmdtime"), as claim files do; a plug-in may use any kernel."""

from __future__ import annotations

from statistics import median

from perflab.core.claim import Claim, Evidence, Plan, SeriesSpec, Settings
from perflab.core.record import Decision
from perflab.core.rule import INF, Region, Rule
from perflab.decide.rules import median_rule

SLEEP_S = "0.005"

RULE = Rule(
    quantity="median wall time of 'sleep 0.005', fork to reap (ms)",
    short="median",
    unit="ms",
    supported=Region(5, INF),
    refuted=Region(0, 4.5),
    reason="fixed before the first run: nanosleep(2) suspends the caller for at least the time asked, so the "
           "process cannot end sooner; 4.5 ms or less would mean a sleep cut short by a tenth",
)


def plan(settings: Settings) -> Plan:
    """One series: each sample a cmdtime process running the command the budget's
    batches times (its median is the sample), pinned like every kernel."""
    argv = ["cmdtime", f"--cpu={settings.cpu}", f"--runs={settings.budget.batches}", "--timeout-ms=10000",
            "--", "sleep", SLEEP_S]
    return Plan([SeriesSpec(name="sleep", x=None, unit="ms", xs=(None,), argv=lambda _x: argv,
                            value=lambda record: median(record["wall_ns"]) / 1e6)])


def decide(ev: Evidence, rule: Rule) -> Decision:
    """Pure: only the evidence and the rule."""
    return median_rule(ev.series["sleep"].points[None], rule, ev)


CLAIMS = [
    Claim(
        id="example.sleep-not-early",
        statement="a 5 ms sleep never ends sooner than 5 ms",
        seed_point="an example plug-in (examples/perflab-example-claims)",
        mechanism=(
            "nanosleep(2) (used by sleep(1) through clock_nanosleep) suspends the calling thread "
            "until at least the requested time has elapsed; the kernel arms an hrtimer for the "
            "deadline plus the thread's timer slack (50 us by default, prctl(2) PR_SET_TIMERSLACK) "
            "and wakes it no earlier (kernel/time/hrtimer.c, do_nanosleep). The process's wall time "
            "from fork to reap adds its start and exit on top."
        ),
        kernel="cmdtime",
        rule=RULE,
        plan=plan,
        decide=decide,
        aa=("sleep", None),  # the A/A control: two sets of the same command must agree
    ),
]
