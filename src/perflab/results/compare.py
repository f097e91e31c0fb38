"""Two runs side by side: verdict flips, each shared quantity as a ratio B/A, host facts.

A *quantity* is one point (claim, series, x) that both runs measured, in the same unit;
the A/A sets of the controls (``a/a:A``, ``a/a:B``) are left out, they repeat a point.
Its ratio B/A is the ratio of the two medians with a 95% percentile-bootstrap interval,
each run's per-process samples resampled independently (decide/stats.py,
``ratio_of_medians``); a record without raw samples (a version-1 line, ``--json``
without ``--samples``) gets the interval of the two points' CIs instead, [lo_B / hi_A,
hi_B / lo_A], named ``intervals`` in the output.

Outcomes, in criterion's words (criterion.rs, "Command-Line Output": regressed, improved,
"change within noise threshold"): a quantity whose interval lies wholly outside the
noise band [1/1.1, 1.1], and whose two sets of samples a rank test tells apart, moved;
inside the band or straddling it, it is ``within noise``. The band is the margin
perflab's A/A controls allow two identical sets of processes (decide/controls.py,
AA_RULE), so compare calls nothing a change that a control would call noise. A move is
``regressed`` or ``improved`` where the unit says which way is better (a time: lower;
something per second: higher), else ``higher`` or ``lower``.

The rank test (two-sided Mann-Whitney U, exact without ties: decide/ranks.py) is there
because an interval from a handful of processes per run is narrower than the truth: the
percentile bootstrap of a median of three samples is [min B / max A, max B / min A],
which two runs of the same code leave wholly on one side of 1 one time in ten, and
nothing in one run sees what changes between runs (a VM's neighbours, the page
allocator's state). Its p-values go through Holm's procedure over every quantity of the
comparison, so that all the moves listed are, together, wrong at most 5% of the time
(Google Benchmark's compare.py likewise puts a U test beside the ratio). A quantity
outside the band whose sizes cannot reach p < 0.05 at all (3 samples a side: least p =
0.1) is ``too few samples``, with the budget that would decide it; one outside the band
that its test does not carry is ``within noise``, its p-value in the note.

Across two machines no outcome is drawn ("different hosts: ratios only"): a ratio
between two CPUs says how they differ, not that anything regressed. Two runs are on the
same machine when their ``machine`` facts agree (observe/host.py), or, for records
without one, their hostname, CPU model, core count and virtualization do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from perflab.core.record import HOST_FIELDS, Host, Verdict
from perflab.decide import ranks, stats
from perflab.decide.controls import AA_RULE
from perflab.results.sources import Source

CONF = 0.95
N_BOOT = 1000
BAND = AA_RULE.supported  # [1/1.1, 1.1]
ACROSS_HOSTS = "different hosts: ratios only"
TIME_UNITS = ("ns", "us", "µs", "ms", "s")
SAME_MACHINE_FACTS = ("hostname", "cpu_model", "cores_online", "virtualization")
NOT_DIFFED = ("mem_available_bytes",)  # changes from one minute to the next


@dataclass
class Flip:
    claim: str
    a: str  # outcome (and reason)
    b: str
    a_value: str = ""  # the decision in words: quantity value [CI]
    b_value: str = ""


@dataclass
class Change:
    claim: str
    series: str
    x: Any
    unit: str
    a: float
    b: float
    n: tuple[int, int]
    ratio: float | None
    ci: tuple[float, float] | None
    method: str  # "bootstrap" | "intervals" | "" (no ratio)
    outcome: str
    note: str = ""
    p: float | None = None  # the rank test's two-sided p-value, where both sides have samples
    least_p: float | None = None  # the smallest p-value these sample sizes allow

    def to_json(self) -> dict[str, Any]:
        return {"claim": self.claim, "series": self.series, "x": self.x, "unit": self.unit, "a": self.a, "b": self.b,
                "n": list(self.n), "ratio": self.ratio, "ci": list(self.ci) if self.ci else None,
                "conf": CONF if self.ci else None, "method": self.method, "outcome": self.outcome, "note": self.note,
                "p": self.p}


@dataclass
class Comparison:
    a: Source
    b: Source
    same_machine: bool
    flips: list[Flip] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    host_diff: list[tuple[str, Any, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            out[c.outcome] = out.get(c.outcome, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        def side(s: Source) -> dict[str, Any]:
            return {"run_id": s.run_id, "path": s.path, "started_at": s.info.started_at if s.info else None,
                    "host": s.host.hostname, "cpu_model": s.host.cpu_model, "host_fingerprint": s.host.fingerprint(),
                    "claims": len(s.verdicts)}

        return {"a": side(self.a), "b": side(self.b), "same_machine": self.same_machine,
                "outcomes": None if self.same_machine else ACROSS_HOSTS,
                "band": [BAND.lo, BAND.hi], "conf": CONF, "counts": self.counts(),
                "flips": [f.__dict__ for f in self.flips], "quantities": [c.to_json() for c in self.changes],
                "only_in_a": self.only_a, "only_in_b": self.only_b,
                "host_diff": [{"fact": k, "a": va, "b": vb} for k, va, vb in self.host_diff]}


def same_machine(a: Host, b: Host) -> bool:
    ma, mb = a.extra.get("machine"), b.extra.get("machine")
    if ma and mb:
        return ma == mb
    return all(getattr(a, k) == getattr(b, k) for k in SAME_MACHINE_FACTS)


def better(unit: str) -> str | None:
    """Which way is better for a quantity in this unit: "lower" (a time), "higher"
    (something per second), None (a count, a fraction: neither)."""
    head = unit.partition("/")[0].strip()
    if head in TIME_UNITS:
        return "lower"
    if unit.endswith((" per s", "/s")):
        return "higher"
    return None


def judge(lo: float, hi: float, unit: str, same: bool) -> str:
    if not same:
        return ACROSS_HOSTS
    if BAND.touches(lo, hi):
        return "within noise"
    up = lo > BAND.hi
    way = better(unit)
    if way is None:
        return "higher" if up else "lower"
    return "regressed" if up == (way == "lower") else "improved"


def outcome_words(v: Verdict) -> str:
    return v.outcome.value + (f" ({v.reason.value})" if v.reason else "")


def decision_words(v: Verdict) -> str:
    d = v.decision
    if d is None or d.value is None:
        return v.summary
    ci = f" [{d.ci[0]:.4g}, {d.ci[1]:.4g}]" if d.ci else ""
    return f"{d.quantity} = {d.value:.4g}{ci}"


def ratio_of(claim: str, series: str, pa, pb, unit: str, same: bool, n_boot: int) -> Change:
    """One point of both runs as a Change (pa, pb: core.series.Point)."""
    base = dict(claim=claim, series=series, x=pa.x, unit=unit, a=pa.median, b=pb.median, n=(pa.n, pb.n))
    if pa.median <= 0 or pb.median <= 0:
        same_value = pa.median == pb.median
        return Change(**base, ratio=None, ci=None, method="",
                      outcome="within noise" if same_value and same else ("equal" if same_value else "n/a"),
                      note="both 0" if same_value and pa.median == 0 else "a median <= 0: no ratio")
    if pa.samples and pb.samples and min(pa.samples) > 0 and min(pb.samples) > 0:
        rng = random.Random(f"{claim}|{series}|{pa.x!r}")  # the same interval every time
        try:
            est = stats.ratio_of_medians(pb.samples, pa.samples, conf=CONF, n_boot=n_boot, rng=rng)
            # across two machines no significance is claimed, so no test is run
            test = ranks.rank_test(pb.samples, pa.samples) if same else None
            return Change(**base, ratio=est.value, ci=(est.lo, est.hi), method="bootstrap",
                          outcome=judge(est.lo, est.hi, unit, same), p=None if test is None else test.p,
                          least_p=None if test is None else test.least_p)
        except ValueError:
            pass  # a resampled median <= 0: fall back to the intervals
    lo, hi = pb.ci[0] / pa.ci[1] if pa.ci[1] > 0 else 0.0, pb.ci[1] / pa.ci[0] if pa.ci[0] > 0 else float("inf")
    lo, hi = min(lo, pb.median / pa.median), max(hi, pb.median / pa.median)
    return Change(**base, ratio=pb.median / pa.median, ci=(lo, hi), method="intervals",
                  outcome=judge(lo, hi, unit, same))


def host_diff(a: Host, b: Host) -> list[tuple[str, Any, Any]]:
    ja, jb = a.to_json(), b.to_json()
    out = []
    keys = [k for k in HOST_FIELDS if k not in NOT_DIFFED] + sorted((set(ja) | set(jb)) - set(HOST_FIELDS))
    for k in keys:
        va, vb = ja.get(k), jb.get(k)
        if isinstance(va, dict) and isinstance(vb, dict) and k != "rlimit_nofile":
            out += [(f"{k}.{sub}", va.get(sub), vb.get(sub)) for sub in sorted(set(va) | set(vb))
                    if va.get(sub) != vb.get(sub)]
        elif va != vb:
            out.append((k, va, vb))
    return out


def compare(a: Source, b: Source, n_boot: int = N_BOOT) -> Comparison:
    same = same_machine(a.host, b.host)
    cmp = Comparison(a, b, same)
    va = {v.claim: v for v in a.verdicts}
    vb = {v.claim: v for v in b.verdicts}
    cmp.only_a = [c for c in va if c not in vb]
    cmp.only_b = [c for c in vb if c not in va]
    for claim in (c for c in va if c in vb):
        x, y = va[claim], vb[claim]
        if (x.outcome, x.reason) != (y.outcome, y.reason):
            cmp.flips.append(Flip(claim, outcome_words(x), outcome_words(y), decision_words(x), decision_words(y)))
        others = {(s.name, s.unit): s for s in y.series}
        for s in x.series:
            t = others.get((s.name, s.unit))
            if t is None or s.name.startswith("a/a:"):
                continue
            points = {_key(p.x): p for p in t.points}
            for p in s.points:
                q = points.get(_key(p.x))
                if q is not None:
                    cmp.changes.append(ratio_of(claim, s.name, p, q, s.unit, same, n_boot))
    tested(cmp.changes)  # the same machine's quantities: only they have a rank test
    cmp.host_diff = host_diff(a.host, b.host)
    return cmp


def tested(changes: list[Change]) -> None:
    """Holds each move outside the band to its rank test, Holm over all the tested ones."""
    alpha = 1 - CONF
    with_p = [c for c in changes if c.p is not None]
    for c, shown in zip(with_p, ranks.holm([c.p for c in with_p], alpha)):
        if c.outcome not in MOVED or shown:
            continue
        n = f"{c.n[0]} vs {c.n[1]} samples"
        if c.least_p >= alpha:
            c.outcome = TOO_FEW
            c.note = (f"{n}: a rank test cannot reach p < {alpha:g} (least p = {c.least_p:.2g}); "
                      f"rerun both with at least 4 samples a side (--rigorous)")
        else:
            c.note = f"rank test p = {c.p:.2g} ({n}), not below Holm's bound over {len(with_p)} quantities"
            c.outcome = "within noise"


def _key(x: Any) -> Any:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x


TOO_FEW = "too few samples"
ORDER = {"regressed": 0, "improved": 1, "higher": 2, "lower": 3, "n/a": 4, TOO_FEW: 5, "equal": 6, ACROSS_HOSTS: 7,
         "within noise": 8}


def ordered(changes: list[Change]) -> list[Change]:
    """Moves first (regressions before improvements), then the rest, each in run order."""
    return sorted(changes, key=lambda c: ORDER.get(c.outcome, 4))


MOVED = ("regressed", "improved", "higher", "lower", "n/a")
