"""Synthetic hosts: machines whose truth is known, for the real plans, runner and rules.

A synthetic host is the facts a plan reads (``Settings.host``, as observe.host.collect()
gives them, plus what a plan finds by looking: allocators, Go, a cache server) and the
way its processes behave over time: per-process noise, bimodal processes, a slow stretch
in the middle of a run. A *world* is what is true there for a claim: ``true`` (the claim
holds, at the magnitudes the recorded runs of tests/fixtures/hosts/ show), ``false`` (its
refutation holds) and a few others where a rule must say inconclusive for a given reason
(tests/synthetic_truths.py).

Nothing runs a kernel: ``synthetic(claim)`` is the claim with its real plan, whose every
series reads a fake kernel record, and ``SyntheticKernel`` is the ``measure`` the real
runner calls, computing each record from the world's truth and the host's behaviour.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any, Mapping

from synthetic_truths import MODELS, Ctx, G, M, Model
from perflab.core.claim import Claim, Plan, Settings
from perflab.core.params import BUDGETS
from perflab.decide.summary import summarize
from perflab.engine import runner

TAG = "synthetic"


# ---- hosts ------------------------------------------------------------------------------------
def caches(l1d: str, l2: str, l3: str) -> list[dict[str, Any]]:
    return [{"level": 1, "type": "Data", "size": l1d}, {"level": 1, "type": "Instruction", "size": "32K"},
            {"level": 2, "type": "Unified", "size": l2}, {"level": 3, "type": "Unified", "size": l3}]


AMD_FACTS = {"cpu_model": "AMD EPYC (synthetic)", "cores_online": 2, "cpus_allowed": [0, 1],
             "caches": caches("32K", "1024K", "32768K"), "root": True, "thp": "madvise",
             "rlimit_nofile": {"soft": 20000, "hard": 20000}, "mem_available_bytes": 24 * G}
INTEL_FACTS = {**AMD_FACTS, "cpu_model": "Intel Xeon (synthetic)", "caches": caches("48K", "2048K", "491520K")}


@dataclass(frozen=True)
class Host:
    """A machine: the facts its plans read, which real machine's magnitudes its truths
    take (``profile``), and how its processes behave over time."""

    name: str
    why: str
    facts: Mapping[str, Any]
    profile: str = "amd"  # "amd" | "intel": the recorded runs the magnitudes come from
    noise: float = 0.035  # lognormal sigma of each timed value
    bimodal: float = 0.0  # probability that a process is BIMODAL_FACTOR slower
    stretch: bool = False  # the middle third of the run STRETCH_FACTOR slower
    allocators: tuple[str, ...] = ()  # besides glibc's, what ldconfig finds
    go: bool = False
    cache_server: bool = False
    blind_switch_counter: bool = False  # a sandbox whose rusage counts no context switch
    syscall_ns: float | None = None  # a system call's fixed cost, where it is not the profile's


BIMODAL_FACTOR = 1.6
STRETCH_FACTOR = (1.5, 1.8)

HOSTS = {h.name: h for h in (
    Host("amd", "the AMD EPYC 2-vCPU guest of tests/fixtures/hosts, quiet", AMD_FACTS),
    Host("intel", "the Intel Xeon 2-vCPU guest: 48K L1d, 2M L2, sysfs L3 480M; per-fd cost steps from 22 to "
                  "~50 ns between 4k and 10k fds (a cache step inside the top decade)", INTEL_FACTS, "intel"),
    Host("bimodal", "AMD, one process in ten 1.6x slow (a noisy neighbour, a bad placement)", AMD_FACTS,
         bimodal=0.10, allocators=("jemalloc",)),
    Host("bimodal-25", "AMD, one process in four 1.6x slow", AMD_FACTS, bimodal=0.25,
         allocators=("jemalloc",)),
    Host("slow-stretch", "AMD, every process in the middle third of the run 1.5-1.8x slow", AMD_FACTS,
         stretch=True, allocators=("jemalloc",)),
    Host("one-core", "AMD with one CPU allowed and online, jemalloc installed",
         {**AMD_FACTS, "cores_online": 1, "cpus_allowed": [0]}, allocators=("jemalloc",)),
    Host("nofile-1024", "AMD with RLIMIT_NOFILE 1024 (soft and hard): the io sweeps stop at 1,008 fds",
         {**AMD_FACTS, "rlimit_nofile": {"soft": 1024, "hard": 1024}}),
    Host("mem-4g", "the Intel guest with 4 GiB of memory, 3 GiB available: sweeps capped by MemAvailable / 4 "
                   "(768 MiB), below 4x the 480 MiB L3", {**INTEL_FACTS, "mem_available_bytes": 3 * G}, "intel"),
    Host("mem-1g", "AMD with 1 GiB of memory, 600 MiB available: fork's sizes stop at 150 MiB (capped below 256)",
         {**AMD_FACTS, "mem_available_bytes": 600 * M}),
    Host("sandbox", "a gVisor-like sandbox: every system call costs 10 us more, RLIMIT_NOFILE 1024, rusage counts "
                    "no context switch (a big fixed cost beside a small per-item cost)",
         {**AMD_FACTS, "rlimit_nofile": {"soft": 1024, "hard": 1024}}, syscall_ns=10_000.0,
         blind_switch_counter=True),
    Host("many-core", "AMD-like with 16 CPUs allowed, jemalloc installed",
         {**AMD_FACTS, "cores_online": 16, "cpus_allowed": list(range(16))}, allocators=("jemalloc",)),
    Host("many-core-quiet", "the 16-CPU host with throughputs steady to 1%",
         {**AMD_FACTS, "cores_online": 16, "cpus_allowed": list(range(16))}, allocators=("jemalloc",), noise=0.01),
    Host("thrashing", "AMD, processes 40% apart (a machine swapping, or heavily oversubscribed), jemalloc "
                      "installed", AMD_FACTS, noise=0.4, allocators=("jemalloc",)),
    Host("amd-extras", "AMD with jemalloc, Go and a memcached on 127.0.0.1:11211", AMD_FACTS,
         allocators=("jemalloc",), go=True, cache_server=True),
    Host("no-root", "AMD, perflab run as an ordinary user", {**AMD_FACTS, "root": False}),
)}


# ---- the fake kernel and the claim that reads it -------------------------------------------------
@dataclass
class SyntheticKernel:
    """``measure(argv, timeout)`` for the real runner: each call is one fresh process on
    ``host`` in ``world``. The call count stands for time: the slow stretch covers the
    calls of the middle third of the run the plan would make to its last look."""

    host: Host
    world: str
    model: Model
    seed: int
    expected_calls: int
    calls: int = 0
    log: list[tuple[str, Any, float]] = field(default_factory=list)  # (series, x, slowdown)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.seed}:{self.host.name}:{self.world}")

    def slowdown(self) -> float:
        """The slow stretch starts and ends abruptly (a neighbour's job) and moves smoothly
        in between, from 1.5x at its ends to 1.8x in its middle; a bimodal process is slow
        on its own."""
        k, n = self.calls, self.expected_calls
        f = 1.0
        lo, hi = n // 3, 2 * n // 3
        if self.host.stretch and lo <= k < hi:
            f *= STRETCH_FACTOR[0] + (STRETCH_FACTOR[1] - STRETCH_FACTOR[0]) * math.sin(math.pi * (k - lo) / (hi - lo))
        if self.host.bimodal and self.rng.random() < self.host.bimodal:
            f *= BIMODAL_FACTOR
        return f

    def __call__(self, argv: list[str], timeout: float) -> dict[str, Any]:
        assert argv[0] == TAG, argv
        name, x, real = argv[1], json.loads(argv[2]), argv[3:]
        values = self.model(Ctx(self.host, self.world, name, x, real, self.rng))
        slow = self.slowdown()
        self.calls += 1
        self.log.append((name, x, slow))
        record: dict[str, Any] = {}
        for key, (value, kind) in values.items():
            noise = math.exp(self.rng.gauss(0.0, self.host.noise))
            factor = {"time": slow * noise, "rate": 1 / (slow * noise)}.get(kind, 1.0)
            record[key] = value * factor
        return record


def synthetic(claim: Claim) -> Claim:
    """The claim with its real plan, each series reading a synthetic kernel's record: argv
    names the series, x and the real kernel argv; the value is the record's "v", each
    derived series its own name. A sweep's extend and rounds_at are kept."""
    def plan(settings: Settings) -> Plan:
        real = claim.plan(settings)
        specs = []
        for s in real.series:
            specs.append(dataclasses.replace(
                s,
                argv=lambda x, s=s: [TAG, s.name, json.dumps(x), *s.argv(x)],
                value=lambda r: r["v"],
                derived=tuple((n, u, lambda r, n=n: r[n]) for n, u, _fn in s.derived),
            ))
        return Plan(specs, real.facts)

    return dataclasses.replace(claim, plan=plan)


def probes(monkeypatch, host: Host) -> None:
    """What plans find by looking rather than from Settings.host (ldconfig, the Go
    toolchain, a connect to 127.0.0.1, the scratch directory's device, the built kernels),
    as this host would answer."""
    from perflab.claims import _lib_allocators, cache, green, lib
    from perflab.claims._subjects import NO_GO, GoBuild

    found = {a: f"/usr/lib/x86_64-linux-gnu/lib{a}.so.2" for a in host.allocators}
    missing = {a: pkg for a, (_sonames, pkg) in _lib_allocators.ALLOCATORS.items() if a not in found}
    monkeypatch.setattr(lib, "find_allocators", lambda: (dict(found), dict(missing)))
    monkeypatch.setattr(lib, "kernel_path", lambda name: f"/synthetic/kernels/{name}")
    monkeypatch.setattr(green, "go_subject", lambda: GoBuild("/synthetic/green", version="go1.22 (synthetic)")
                        if host.go else GoBuild(None, NO_GO))
    monkeypatch.setattr(cache, "cache_server", lambda: (11211, "memcached") if host.cache_server else None)
    monkeypatch.setattr(cache, "describe", lambda: {"scratch_dir": "/synthetic", "device": "vda", "virtual": None,
                                                    "hypervisor": None})
    # what the verdict reports beside its decision, not what decides it: the source hash (it
    # reads every input file) and the bootstrap CIs of the points shown (thinned to 100 draws)
    monkeypatch.setattr(runner, "source_hash", lambda claim: "synthetic")
    monkeypatch.setattr(runner, "summarize", lambda c, conf, rng, n_boot: summarize(c, conf, rng, min(n_boot, 100)))


def settings_for(claim: Claim, host: Host, budget: str, seed: int, params: Mapping[str, Any] | None = None) -> Settings:
    return Settings(params={**claim.defaults(), **(params or {})}, budget=BUDGETS[budget], seed=seed,
                    cpu=host.facts["cpus_allowed"][-1], host=dict(host.facts))


def calls_per_run(claim: Claim, settings: Settings) -> int:
    """The processes a run takes to its last look, at the plan's first sweep."""
    plan = claim.plan(settings)
    per_round = sum(len(s.xs) for s in plan.series)
    if claim.aa_config(settings):
        per_round += 2 * (claim.aa_per_round or settings.budget.aa_per_round)
    return per_round * settings.budget.looks[-1]


def run(claim: Claim, host: Host, world: str, budget: str = "quick", seed: int = 1,
        params: Mapping[str, Any] | None = None):
    """The real runner on the synthetic host: (verdict, the fake kernel)."""
    fake_claim = synthetic(claim)
    s = settings_for(claim, host, budget, seed, params)
    kernel = SyntheticKernel(host, world, MODELS[claim.id], seed, calls_per_run(fake_claim, s))
    return runner.run_claim(fake_claim, s, measure=kernel), kernel
