"""cache.* decision rules both ways (and the middle) on synthetic data; the step detector
on synthetic latency curves of machines unlike this one (48 KiB / 2 MiB / 96 MiB caches),
one with a missing step; the scratch-directory and device descriptions; the kernels'
refusals (tmpfs, no opt-in) and their clean-up, which start a kernel but measure nothing.
What the plans find on the host (sysfs cache sizes, the scratch device, a listening cache
server) reaches the rules as facts: the tests pass facts, never patch the host."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import claim, decide, synthetic
from perflab.claims import _cache_ladder, _cache_sweep, cache
from perflab.core.claim import Settings
from perflab.core.params import BUDGETS
from perflab.core.record import Outcome, Reason
from perflab.decide import steps
from perflab.engine import process, runner
from perflab.observe import storage

KIB, MIB = 1 << 10, 1 << 20
XS = _cache_ladder.chase_sizes(512 * MIB)
_STEPS = claim("cache.cpu-ladder").rule.part("steps")
PLATEAU = {"flat": _STEPS["flat"], "min_points": int(_STEPS["min_points"])}
STEP = {**PLATEAU, "min_rise": _STEPS["step_rise"]}
OTHER_MACHINE = [("L1d", 48 * KIB), ("L2", 2 * MIB), ("L3", 96 * MIB)]
SYSFS_OTHER = [{"level": 1, "type": "Data", "size": "48K"}, {"level": 1, "type": "Instruction", "size": "32K"},
               {"level": 2, "type": "Unified", "size": "2048K"}, {"level": 3, "type": "Unified", "size": "98304K"}]


def overflow(x: float, size: float) -> float:
    """Fraction of hops that miss a cache of `size` bytes: 0 well inside, 1 beyond twice
    its size, a smooth (logistic in log2 x) transition around it."""
    return 1 / (1 + math.exp(-(math.log2(x / size) - 0.5) / 0.15))


def hierarchy(levels, latencies):
    """latency(x) for caches `levels` [(name, bytes)] with `latencies` [L1, L2, ..., DRAM] ns."""
    def lat(x):
        v = latencies[0]
        for (_name, size), (lo, hi) in zip(levels, zip(latencies, latencies[1:])):
            v += (hi - lo) * overflow(x, size)
        return v
    return lat


def chase(cost, noise=0.04, n=5, seed=1):
    return synthetic("chase", XS, cost, n=n, noise=noise, seed=seed, x="working_set_bytes", unit="ns/hop")


def sweep(caches=SYSFS_OTHER, mem=8 << 30, budget="quick"):
    return {"caches": caches, **_cache_sweep.sweep_facts(caches, mem, budget, claim("cache.cpu-ladder").rule)}


def ladder_decide(series, caches=SYSFS_OTHER):
    return decide("cache.cpu-ladder", series, facts=sweep(caches))


def settings(params=None, host=None):
    return Settings(params=params or {}, budget=BUDGETS["quick"], seed=1, cpu=-1,
                    host={"caches": SYSFS_OTHER} if host is None else host)


# --- the step detector (pure) ---------------------------------------------------------------
def test_three_steps_where_the_caches_overflow():
    lat = hierarchy(OTHER_MACHINE, [1.2, 4.5, 14.0, 110.0])
    curve = {x: lat(x) for x in XS}
    found = steps.detect_steps(curve, **STEP)
    assert len(found) == 3
    rows = steps.match_levels(found, OTHER_MACHINE)
    assert [r["step_found"] for r in rows] == [True, True, True]
    for (name, size), s in zip(OTHER_MACHINE, found):
        assert size <= s.at <= size * 2, (name, s)  # half-way up the rise: just past the size
    assert [round(s.rise) for s in found] == [4, 3, 8]


def test_a_missing_level_gives_a_missing_step():
    """sysfs reports an L2 of 2 MiB, but the curve has no step there (an exclusive or
    absent level, or one the VM cannot use): two steps, and the evidence says where."""
    lat = hierarchy([OTHER_MACHINE[0], OTHER_MACHINE[2]], [1.2, 14.0, 110.0])
    found = steps.detect_steps({x: lat(x) for x in XS}, **STEP)
    assert len(found) == 2
    rows = steps.match_levels(found, OTHER_MACHINE)
    assert [r["step_found"] for r in rows] == [True, False, True]


def test_noise_bump_and_smooth_ramp_are_not_steps():
    flat = {x: 5.0 for x in XS}
    flat[XS[10]] = 9.0  # one slow point inside a plateau
    assert steps.detect_steps(flat, **STEP) == []
    ramp = {x: x ** 0.25 for x in XS}  # rises everywhere: a creep, no distinct step
    assert steps.detect_steps(ramp, **STEP) == []
    assert all(t.rise < STEP['min_rise'] for t in steps.transitions(ramp, **PLATEAU))
    assert max(p.xs[-1] / p.xs[0] for p in steps.plateaus(ramp, **PLATEAU)) <= 2  # no long plateau


def test_small_rises_are_transitions_but_not_steps():
    curve = {x: (1.0 if x < 64 * KIB else 1.3) for x in XS}
    assert len(steps.transitions(curve, **PLATEAU)) == 1 and steps.detect_steps(curve, **STEP) == []


@pytest.mark.parametrize("text,value", [("32K", 32 * KIB), ("1024K", MIB), ("32768K", 32 * MIB), ("2M", 2 * MIB),
                                        ("1G", 1 << 30), ("512", 512), ("", None), ("lots", None)])
def test_parse_sysfs_sizes(text, value):
    assert steps.parse_size(text) == value


def test_cache_levels_leave_out_instruction_caches():
    assert steps.cache_levels(SYSFS_OTHER) == [("L1d", 48 * KIB), ("L2", 2 * MIB), ("L3", 96 * MIB)]
    assert steps.cache_levels([]) == []


# --- cache.cpu-ladder: >= 3 steps of 1.5x and DRAM >= 10 L1 supported; no step or < 3x refuted ---
CPU_LADDER = claim("cache.cpu-ladder").rule
MIN_STEPS = CPU_LADDER.part("steps").supported.lo
DRAM_L1 = CPU_LADDER.part("DRAM / L1")


def test_cpu_ladder_supported_with_levels_in_place():
    d = ladder_decide(chase(hierarchy(OTHER_MACHINE, [1.2, 4.5, 14.0, 110.0])))
    assert d.outcome is Outcome.SUPPORTED and d.inconclusive is None, d
    ev = d.evidence
    assert ev["steps_counted"] == MIN_STEPS == 3
    assert [r["step_found"] for r in ev["levels (sysfs, cpu0)"]] == [True, True, True]
    assert 80 < d.value < 100 and d.ci[0] >= DRAM_L1.supported.lo
    assert all(s["rise_ci"][0] >= CPU_LADDER.part("steps")["step_rise"] for s in ev["steps"] if s["counted"])
    assert d.thresholds["supported"] == CPU_LADDER.thresholds()["supported"]
    assert d.rule_version == CPU_LADDER.version


def test_cpu_ladder_missing_step_is_inconclusive():
    d = ladder_decide(chase(hierarchy([OTHER_MACHINE[0], OTHER_MACHINE[2]], [1.2, 14.0, 110.0])))
    assert d.outcome is Outcome.INCONCLUSIVE, d
    # two clear steps, none in doubt: more samples would not make a third (between)
    assert d.inconclusive is Reason.BETWEEN
    assert d.evidence["steps_counted"] == 2
    assert [r["step_found"] for r in d.evidence["levels (sysfs, cpu0)"]] == [True, False, True]
    assert "L2 2 MiB: no step" in d.reason


def test_cpu_ladder_levels_come_from_the_plans_facts():
    """Where the steps sit against the cache sizes is read from the facts (sysfs as the
    plan found it), not from this machine's sysfs; no facts: no levels, same verdict."""
    curve = chase(hierarchy(OTHER_MACHINE, [1.2, 4.5, 14.0, 110.0]))
    bare = ladder_decide(curve, caches=[])
    assert bare.evidence["levels (sysfs, cpu0)"] == [] and bare.outcome is Outcome.SUPPORTED
    plan = claim("cache.cpu-ladder").plan(settings())
    assert plan.facts["caches"] == SYSFS_OTHER
    assert plan.facts["largest_cache"]["bytes"] == 96 * MIB and "sysfs" in plan.facts["largest_cache"]["source"]
    assert [s.name for s in plan.series] == ["chase"] and plan.series[0].xs[-1] == 256 * MIB  # <= 4 x 96 MiB


def test_cpu_ladder_three_small_steps_but_dram_close_to_l1_is_inconclusive():
    # 3 steps of 2x: DRAM / L1 = 8, between 3 and 10
    d = ladder_decide(chase(hierarchy(OTHER_MACHINE, [2.0, 4.0, 8.0, 16.0]), noise=0.02))
    assert d.evidence["steps_counted"] == 3
    assert DRAM_L1.refuted.hi < d.ci[0] and d.ci[1] < DRAM_L1.supported.lo
    assert d.outcome is Outcome.INCONCLUSIVE and d.inconclusive is Reason.BETWEEN, d


def test_cpu_ladder_with_too_few_working_sets_is_unmeasurable():
    d = ladder_decide(synthetic("chase", (4 * KIB,), lambda _x: 1.2, x="working_set_bytes"))
    assert d.outcome is Outcome.INCONCLUSIVE and d.inconclusive is Reason.NOISY and d.value is None


@pytest.mark.parametrize(
    "cost",
    [
        lambda x: 4.0,  # flat: no cache effect at all
        lambda x: 4.0 * (1 + 0.5 * (x > 2 * MIB)),  # one step but DRAM only 1.5x L1
    ],
)
def test_cpu_ladder_refuted(cost):
    d = ladder_decide(chase(cost))
    assert d.outcome is Outcome.REFUTED, d
    assert d.evidence["dram"]["levelled_off"] is True


def test_cpu_ladder_still_rising_is_capped_not_refuted():
    """A smooth creep, 23% per octave, never levels off (levelled off: two sizes within
    15%): the sweep stopped at its cap before DRAM showed, so no step seen is no
    refutation, and the answer waits for the cap (CLAIMS.md rev 2: capped)."""
    d = ladder_decide(chase(lambda x: x ** 0.3))
    assert (d.outcome, d.inconclusive) == (Outcome.INCONCLUSIVE, Reason.CAPPED), d
    assert d.evidence["dram"]["levelled_off"] is False and "still rising" in d.reason


def test_cpu_ladder_on_a_jagged_curve_is_noise_not_refutation():
    """No plateau anywhere (each size 2x off its neighbours at random, then levelled): a
    noisy host gives noisy, never 'no step' (issue 11)."""
    import random

    rng = random.Random(3)
    jag = {x: (5.0 if i % 2 else 8.0) * (1 + 0.05 * rng.random()) for i, x in enumerate(XS)}
    jag[XS[-2]] = jag[XS[-1]] = 200.0  # then DRAM, levelled off
    d = ladder_decide(chase(lambda x: jag[x], noise=0.01))
    steps_part = next(v for k, v in d.thresholds.items() if isinstance(v, dict) and k.startswith("steps"))
    assert steps_part["outcome"] == "inconclusive" and steps_part["inconclusive"] == "noisy"
    assert d.outcome is not Outcome.REFUTED


def test_cpu_ladder_sweep_is_derived_from_the_host():
    """At least 4 x the largest cache, then on while rising, up to MemAvailable / 4 and to
    the time per process the budget allows; sizes beyond 2 x the largest cache in the
    first rounds only."""
    rule = claim("cache.cpu-ladder").rule
    f = sweep(SYSFS_OTHER, mem=8 << 30)
    assert f["base_bytes"]["value"] == 4 * 96 * MIB and f["cap_bytes"]["value"] == 2 << 30
    assert _cache_sweep.base_sizes(f)[-1] == 256 * MIB and _cache_sweep.base_sizes(f)[0] == 4 * KIB
    at = _cache_sweep.rounds_at(f)
    assert at(64 * MIB) is None and at(256 * MIB) == _cache_sweep.DEAR_ROUNDS
    small = sweep(SYSFS_OTHER, mem=1 << 30)  # 256 MiB available: the base sweep itself is capped
    assert small["base_bytes"]["value"] == 256 * MIB and "MemAvailable" in small["base_bytes"]["source"]
    extend = _cache_sweep.extender(f, rule)
    rising = synthetic("chase", _cache_ladder.chase_sizes(128 * MIB), lambda x: 10 + x ** 0.3, n=3,
                       x="working_set_bytes")
    assert extend(rising, {}) == ()  # the base sweep (to 256 MiB, <= 384 MiB) is not done yet
    done = synthetic("chase", _cache_sweep.base_sizes(f), lambda x: 10 + x ** 0.3, n=3, x="working_set_bytes")
    assert extend(done, {}) == (512 * MIB,)  # base done (256 MiB, the last power of two), still rising
    base_curve = synthetic("chase", _cache_sweep.base_sizes(f) + (512 * MIB,), lambda x: 10 + x ** 0.3, n=3,
                           x="working_set_bytes")
    assert extend(base_curve, {}) == (1 << 30,)  # still rising: one more doubling
    assert extend(base_curve, {512 * MIB: [{"build_ms": 1000.0}]}) == ()  # 2 s predicted > the quick budget's 1.5 s
    flat_top = synthetic("chase", _cache_sweep.base_sizes(f) + (512 * MIB,),
                         lambda x: 100.0 if x >= 128 * MIB else 10.0, n=3, x="working_set_bytes")
    assert extend(flat_top, {}) == ()  # levelled off: DRAM


def test_ladder_rows_sit_inside_each_level():
    rows = _cache_ladder.level_points(SYSFS_OTHER, XS)
    assert list(rows) == ["L1", "L2", "L3", "DRAM"]
    bounds = {"L1": (4 * KIB, 48 * KIB), "L2": (48 * KIB, 2 * MIB), "L3": (2 * MIB, 96 * MIB)}
    for row, (lo, hi) in bounds.items():
        assert lo <= rows[row][0] <= hi, (row, rows[row])
    assert rows["DRAM"][0] == 512 * MIB
    assert list(_cache_ladder.level_points([], XS)) == ["L1", "DRAM"]  # sysfs silent: L1 at 4 KiB


# --- cache.page-cache: device / cache >= 10 supported, <= 3 refuted ------------------------------
def one(name, ns):
    return synthetic(name, (None,), lambda _x: ns, n=8, noise=0.05, x=None, unit="ns/read")


@pytest.mark.parametrize(
    "cold,expected,reason",
    [(90_000.0, Outcome.SUPPORTED, None), (12_000.0, Outcome.SUPPORTED, None),
     (5_000.0, Outcome.INCONCLUSIVE, Reason.BETWEEN), (2_500.0, Outcome.REFUTED, None),
     (900.0, Outcome.REFUTED, None)],
)
def test_page_cache_rule(cold, expected, reason):
    storage = {"scratch_dir": "/x", "device": "vda", "virtual": "virtio", "note": "vda is virtual (virtio): ..."}
    d = decide("cache.page-cache", one("cached", 1000.0), one("cold", cold), one("direct", 60_000.0),
               facts={"storage": storage})
    assert d.outcome is expected and d.inconclusive is reason, d
    assert d.evidence["storage"]["virtual"] == "virtio" and "virtual" in d.reason
    assert d.evidence["O_DIRECT / cached"] == pytest.approx(60, rel=0.1)


def test_page_cache_plan_describes_the_storage(monkeypatch):
    """The scratch device is described by the plan (statfs, sysfs) and stored as a fact;
    the rule only reads it."""
    found = {"scratch_dir": "/x", "device": "nvme0n1", "virtual": None, "hypervisor": None}
    monkeypatch.setattr(cache, "describe", lambda: found)
    plan = claim("cache.page-cache").plan(settings())
    assert plan.facts == {"storage": found} and [s.name for s in plan.series] == ["cached", "cold", "direct"]
    d = decide("cache.page-cache", one("cached", 1000.0), one("cold", 90_000.0), facts=plan.facts)
    assert d.outcome is Outcome.SUPPORTED and d.evidence["storage"]["device"] == "nvme0n1"
    assert "O_DIRECT / cached" not in d.evidence  # no direct reads: no ratio


# --- cache.dentry: cold / cached >= 5 supported, <= 1.5 refuted ------------------------------------
@pytest.mark.parametrize("cold,expected,reason", [
    (30_000.0, Outcome.SUPPORTED, None), (10_000.0, Outcome.SUPPORTED, None),
    (4_500.0, Outcome.INCONCLUSIVE, Reason.BETWEEN), (1_600.0, Outcome.REFUTED, None)])
def test_dentry_rule(cold, expected, reason):
    d = decide("cache.dentry", one("cached", 1500.0), one("cold", cold))
    assert d.outcome is expected and d.inconclusive is reason, d


# --- cache.ladder: in order, each >= 1.5x the previous supported; any inversion beyond CI refuted ---
LAYERS = {"L1": 1.1, "L2": 4.0, "L3": 14.0, "DRAM": 120.0, "page-cache-hit": 600.0, "device": 60_000.0}


NO_SERVER = {"caches": SYSFS_OTHER, "cache_server": None}
MEMCACHED = {"caches": SYSFS_OTHER, "cache_server": {"port": 11211, "name": "memcached"}}


def ladder(facts=None, **override):
    values = {**LAYERS, **override}
    curves = [one(k, v) for k, v in values.items() if v is not None]
    server = facts if facts is not None else (MEMCACHED if "cache-server" in values else NO_SERVER)
    return decide("cache.ladder", *curves, one("dict-lookup", 20.0), facts=server)


def test_ladder_supported_and_tabled():
    d = ladder()
    assert d.outcome is Outcome.SUPPORTED and d.inconclusive is None, d
    table = {r["layer"]: r for r in d.evidence["table"]}
    assert table["L2"]["factor_over_previous"]["previous"] == "L1"
    assert table["device"]["factor_over_previous"]["value"] == pytest.approx(100, rel=0.1)
    assert table["cache-server"]["not measured"] == _cache_ladder.server_note(None)
    assert "no memcached on 127.0.0.1:11211" in table["cache-server"]["not measured"]
    assert "outside the order" in table["dict-lookup"] and "factor_over_previous" not in table["dict-lookup"]
    assert d.value == pytest.approx(3.4, rel=0.1)  # the smallest factor: L3 / L2 ... or L2 / L1 3.6


def test_ladder_with_a_cache_server_row():
    d = ladder(**{"cache-server": 30_000.0})
    table = [r["layer"] for r in d.evidence["table"] if "factor_over_previous" in r]
    assert table == ["L2", "L3", "DRAM", "page-cache-hit", "cache-server", "device"]
    assert d.outcome is Outcome.SUPPORTED
    row = next(r for r in d.evidence["table"] if r["layer"] == "cache-server")
    assert row["what"] == "4 KiB GET from memcached on 127.0.0.1:11211 (TCP loopback)"


def test_ladder_rows_say_what_they_measure_from_the_facts():
    rows = {row: why for row, (_x, why) in _cache_ladder.level_points(SYSFS_OTHER, XS).items()}
    d = ladder(facts={**NO_SERVER, "rows": rows, "page_cache_file_kib": {"value": 196608}})
    what = {r["layer"]: r.get("what") for r in d.evidence["table"]}
    assert "inside L2 (2 MiB)" in what["L2"] and "largest cache" in what["DRAM"]
    assert "192 MiB cached file" in what["page-cache-hit"] and "DRAM" in what["page-cache-hit"]
    # a host whose sysfs reports no L2 nor L3: those rows say why they are missing
    d = ladder(facts={"caches": SYSFS_OTHER[:1], "cache_server": None}, L2=None, L3=None)
    table = {r["layer"]: r for r in d.evidence["table"]}
    assert table["L2"]["not measured"] == table["L3"]["not measured"] == "sysfs reports no such cache level"


@pytest.mark.parametrize("override", [{"device": 400.0}, {"cache-server": 90_000.0}, {"L3": 3.0}])
def test_ladder_refuted_on_an_inversion(override):
    d = ladder(**override)
    assert d.outcome is Outcome.REFUTED, d
    assert "inverted" in d.reason


@pytest.mark.parametrize("override,reason", [({"L3": 5.0}, Reason.BETWEEN), ({"cache-server": 61_500.0}, Reason.NOISY)])
def test_ladder_inconclusive_when_a_step_is_small(override, reason):
    d = ladder(**override)  # 1.25x: in order, but not 1.5x apart; 0.98x: inverted, but within its CI
    assert d.outcome is Outcome.INCONCLUSIVE and d.inconclusive is reason, d


def test_ladder_with_one_layer_is_unmeasurable():
    d = decide("cache.ladder", one("L1", 1.1), facts=NO_SERVER)
    assert d.outcome is Outcome.INCONCLUSIVE and d.inconclusive is Reason.NOISY
    assert d.evidence["table"][0]["layer"] == "L1"


def test_ladder_plan_looks_for_the_cache_server(monkeypatch):
    """The loopback server is found by the plan (a connect), never by the rule."""
    c = claim("cache.ladder")
    monkeypatch.setattr(cache, "cache_server", lambda: None)
    plan = c.plan(settings())
    names = [s.name for s in plan.series]
    assert names == ["L1", "L2", "L3", "DRAM", "page-cache-hit", "page-cache-hot", "device", "dict-lookup"]
    hit = next(s for s in plan.series if s.name == "page-cache-hit").argv(None)
    assert "--variant=cached-random" in hit and f"--file-kib={2 * 96 * 1024}" in hit  # twice the largest cache
    assert plan.facts["cache_server"] is None and plan.facts["caches"] == SYSFS_OTHER
    assert set(plan.facts["rows"]) == {"L1", "L2", "L3", "DRAM"}
    monkeypatch.setattr(cache, "cache_server", lambda: (6379, "redis"))
    plan = c.plan(settings())
    spec = next(s for s in plan.series if s.name == "cache-server")
    assert "--variant=redis-get" in spec.argv(None) and "--port=6379" in spec.argv(None)
    assert plan.facts["cache_server"] == {"port": 6379, "name": "redis"}


# --- storage: scratch directory and backing device ------------------------------------------------
def test_scratch_dir_choice(monkeypatch, tmp_path):
    monkeypatch.setenv("PERFLAB_SCRATCH_DIR", str(tmp_path))
    assert storage.scratch_dir() == (tmp_path, "PERFLAB_SCRATCH_DIR")
    monkeypatch.delenv("PERFLAB_SCRATCH_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert storage.scratch_dir()[0] == tmp_path / "perflab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert storage.scratch_dir()[0] == Path.home() / ".cache" / "perflab"


@pytest.mark.parametrize(
    "path,model,kind",
    [
        ("/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda", None, "virtio"),
        ("/sys/devices/vbd-51712/block/xvda", None, "Xen"),
        ("/sys/devices/LNXSYSTM:00/VMBUS:00/x/host0/target0:0:0/0:0:0:0/block/sda", None, "Hyper-V"),
        ("/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda", "QEMU HARDDISK",
         "QEMU HARDDISK"),
        ("/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1", "Samsung SSD 980 PRO 1TB", None),
    ],
)
def test_virtual_disks_are_named(path, model, kind):
    assert storage.classify(path, model) == kind


def test_backing_device_from_a_fake_sysfs(tmp_path):
    st = os.stat(tmp_path)
    sysdev = tmp_path / "dev-block"
    disk = tmp_path / "devices" / "pci0000:00" / "virtio3" / "block" / "vdb"
    part = disk / "vdb1"
    (part).mkdir(parents=True)
    (part / "partition").write_text("1\n")
    (disk / "queue").mkdir()
    (disk / "queue" / "rotational").write_text("1\n")
    sysdev.mkdir()
    (sysdev / f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}").symlink_to(part)
    dev = storage.backing_device(tmp_path, sys_dev_block=sysdev)
    assert dev["device"] == "vdb" and dev["virtual"] == "virtio" and dev["rotational"] is True
    empty = tmp_path / "empty"
    empty.mkdir()
    assert storage.backing_device(tmp_path, sys_dev_block=empty)["device"] is None


def test_describe_names_the_scratch_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PERFLAB_SCRATCH_DIR", str(tmp_path))
    d = storage.describe()
    assert d["scratch_dir"] == str(tmp_path) and d["chosen_by"] == "PERFLAB_SCRATCH_DIR"
    if d.get("virtual") or d["hypervisor"]:
        assert "host" in d["note"]


# --- the pagecache kernel's refusals and clean-up (a kernel starts; nothing is measured) -------------
def kernel(*args, env=None, **kw):
    return subprocess.run([str(process.kernel_path("pagecache")), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60, **kw)


def fs_type(path: Path) -> str:
    """Filesystem type of the mount holding `path` (longest mount-point prefix)."""
    best, kind = "", ""
    for line in Path("/proc/mounts").read_text().splitlines():
        _dev, mnt, fstype, *_ = line.split()
        if (str(path) + "/").startswith(mnt.rstrip("/") + "/") and len(mnt) >= len(best):
            best, kind = mnt, fstype
    return kind


def on_disk(path: Path) -> Path:
    if fs_type(path) in ("tmpfs", "ramfs"):
        pytest.skip(f"{path} is on {fs_type(path)}: the page-cache kernels need a disk")
    return path


def tmpfs_dir() -> str | None:
    for line in Path("/proc/mounts").read_text().splitlines():
        _dev, mnt, fstype, *_ = line.split()
        if fstype == "tmpfs" and os.access(mnt, os.W_OK) and mnt in ("/dev/shm", "/run", "/tmp"):
            return mnt
    return None


def test_scratch_on_tmpfs_is_refused_with_the_fix(tmp_path):
    mnt = tmpfs_dir()
    if not mnt:
        pytest.skip("no writable tmpfs mounted here")
    scratch = Path(mnt) / f"perflab-test-{os.getpid()}"
    scratch.mkdir()
    try:
        p = kernel("--variant=cold", env={"PERFLAB_SCRATCH_DIR": str(scratch)})
        assert p.returncode == 77 and "tmpfs" in p.stderr and "PERFLAB_SCRATCH_DIR" in p.stderr
    finally:
        scratch.rmdir()


def test_a_scratch_dir_that_does_not_exist_is_refused_not_created(tmp_path):
    scratch = tmp_path / "typo" / "dir"
    p = kernel("--variant=cold", env={"PERFLAB_SCRATCH_DIR": str(scratch)})
    assert p.returncode == 77 and "not an existing directory" in p.stderr, p.stderr
    assert not (tmp_path / "typo").exists()


def test_dentry_without_opt_in_is_skipped_naming_the_flag(monkeypatch, tmp_path):
    monkeypatch.setenv("PERFLAB_SCRATCH_DIR", str(tmp_path))
    v = runner.run_claim(claim("cache.dentry"), settings({"allow_drop_caches": 0}, host={}))
    assert v.outcome is Outcome.SKIPPED, v.summary
    assert "--param allow_drop_caches=1" in v.summary
    assert not list(tmp_path.glob("perflab-dentry-*"))


def test_test_files_leave_nothing_behind_even_when_killed(tmp_path):
    """The page-cache file is O_TMPFILE (no name); a dentry tree left by a killed run is
    removed by the next one."""
    env = {"PERFLAB_SCRATCH_DIR": str(on_disk(tmp_path))}
    p = subprocess.Popen([str(process.kernel_path("pagecache")), "--variant=cold", "--batches=1000", "--reads=1000"],
                         env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert list(tmp_path.iterdir()) == []
    stale = tmp_path / "perflab-dentry-999999999"  # beyond pid_max: no such process
    (stale / "a" / "b" / "c").mkdir(parents=True)
    (stale / "a" / "b" / "c" / "f").write_text("")
    r = kernel("--variant=dentry-cached", "--target-ns=1000", "--batches=1", env=env)
    assert r.returncode == 0, r.stderr
    assert list(tmp_path.iterdir()) == []


# --- the loopback cache-server row, against fake servers (none runs in CI) -------------------------
KEY = b"perflab-ladder"


def fake_server(redis: bool):
    """A one-connection memcached (text protocol) or Redis (RESP): takes the kernel's SET
    of a 4 KiB value, then answers its GETs with it."""
    import socket
    import threading

    if redis:
        set_head = b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$4096\r\n" % (len(KEY), KEY)
        set_tail, ack = b"\r\n$2\r\nEX\r\n$2\r\n60\r\n", b"+OK\r\n"
        get = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(KEY), KEY)
        reply = lambda v: b"$4096\r\n" + v + b"\r\n"  # noqa: E731
    else:
        set_head, set_tail, ack = b"set %s 0 60 4096\r\n" % KEY, b"\r\n", b"STORED\r\n"
        get = b"get %s\r\n" % KEY
        reply = lambda v: b"VALUE %s 0 4096\r\n" % KEY + v + b"\r\nEND\r\n"  # noqa: E731
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def exact(conn, n):
        out = b""
        while len(out) < n:
            data = conn.recv(n - len(out))
            if not data:
                raise EOFError
            out += data
        return out

    def serve():
        conn, _ = srv.accept()
        with conn:
            try:
                got = exact(conn, len(set_head) + 4096 + len(set_tail))
                assert got.startswith(set_head) and got.endswith(set_tail)
                value = got[len(set_head):len(set_head) + 4096]
                conn.sendall(ack)
                while True:
                    assert exact(conn, len(get)) == get
                    conn.sendall(reply(value))
            except (EOFError, OSError):
                return

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, srv.getsockname()[1], t


@pytest.mark.parametrize("redis", [False, True])
def test_cache_server_get_speaks_the_protocol(redis):
    srv, port, t = fake_server(redis)
    try:
        p = kernel(f"--variant={'redis' if redis else 'memcached'}-get", f"--port={port}", "--target-ns=1000",
                   "--batches=2")
        assert p.returncode == 0, p.stderr
        rec = __import__("json").loads(p.stdout)
        assert rec["port"] == port and rec["value_bytes"] == 4096 and len(rec["per_op_ns"]) == 2
    finally:
        srv.close()
        t.join(timeout=5)


def test_cache_server_absent_is_unsupported():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    p = kernel("--variant=memcached-get", f"--port={port}")
    assert p.returncode == 77 and "no cache server" in p.stderr
