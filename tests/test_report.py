"""perflab report: what each claim's figures hold (figures.py, on the recorded runs of two
machines), the HTML and Markdown pages, and bad input (one line, nothing written)."""

from __future__ import annotations

import dataclasses
import html
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import cli
from perflab.core.record import read_lines
from perflab.engine import registry
from perflab.results.report import figures
from recorded import AMD, INTEL_V1, imported, one_line_error, records, write_records

pytest.importorskip("matplotlib", reason="the report's plots need the extra perflab[report]")

RULES = {c.id: c.rule for c in registry.all_claims()}


def verdicts(path: Path) -> dict:
    return {v.claim: v for v in read_lines(path.read_text().splitlines(), str(path))}


def plan(v, key="k"):
    return figures.plan(v, RULES.get(v.claim), key)


def panels(p: figures.Plan):
    return [panel for fig in p.figures + p.controls for panel in fig.panels]


# ---- what is drawn -----------------------------------------------------------------------------


def test_fork_draws_thp_and_4k_side_by_side_log_log_with_fits():
    v = verdicts(AMD)["fork.cost-grows-with-memory"]
    fig = plan(v).figures[0]
    assert [p.title for p in fig.panels] == ["fork 4k", "fork THP"] and fig.sharey
    for p in fig.panels:
        assert p.xlog and p.ylog and p.xlabel == "parent memory touched (MiB)" and p.ylabel.endswith("(ns)")
        assert [label for _, label in p.hlines] == ["fork empty parent"]  # the single point as a reference
    exponent = v.series_named("fork 4k").growth_exponent
    [fit] = fig.panels[0].fits
    assert f"exponent {exponent.value:.2f}" in fit.label and fit.band
    # the fitted line runs over the top decade only, through the points' geometric mean
    xs = [p.x for p in v.series_named("fork 4k").points]
    assert fit.xs[0] >= max(xs) / 10 and fit.xs[-1] == max(xs)


def test_cache_ladder_carries_the_host_cache_sizes():
    p = panels(plan(verdicts(AMD)["cache.cpu-ladder"]))[0]
    assert p.xbytes and p.xlog and p.ylog
    assert p.vlines == [(32768.0, "L1d 32 KiB"), (1048576.0, "L2 1 MiB"), (33554432.0, "L3 32 MiB")]
    intel = panels(plan(verdicts(INTEL_V1)["cache.cpu-ladder"]))[0]
    assert [label for _, label in intel.vlines] == ["L1d 48 KiB", "L2 2 MiB", "L3 480 MiB"]
    assert not panels(plan(verdicts(AMD)["io.select-linear"]))[0].vlines  # only cache.* claims


def test_the_decision_is_drawn_with_the_registered_rules_regions():
    v = verdicts(AMD)["io.epoll-flat"]
    p = plan(v)
    [strip] = p.decision
    rule = RULES["io.epoll-flat"]
    assert (strip.supported, strip.refuted) == (rule.supported, rule.refuted) and not p.decision_note
    assert (strip.value, strip.ci) == (v.decision.value, v.decision.ci)
    assert p.aa is not None and p.aa.supported.lo == pytest.approx(1 / 1.1)
    # fork.vfork-constant's rule version 2 changed how a sweep capped by memory decides (the
    # recorded run was not capped): the version-1 record gets no regions and says so; as decided
    # by today's version, a rule of parts is drawn with each part's regions
    vfork = verdicts(AMD)["fork.vfork-constant"]
    assert RULES["fork.vfork-constant"].version > 1
    assert not plan(vfork).decision and "version 1" in plan(vfork).decision_note
    vfork.decision.rule_version = RULES["fork.vfork-constant"].version
    assert [s.supported for s in plan(vfork).decision] == [r.supported for r in RULES["fork.vfork-constant"].parts]
    # the recorded run was decided by version 1 of io.select-linear's rule, revision 2 changed
    # it: its regions are not the ones it was decided by, so none are drawn, and it says so
    older = plan(verdicts(AMD)["io.select-linear"])
    assert RULES["io.select-linear"].version > 1
    assert not older.decision and "version 1" in older.decision_note


def test_a_claim_not_registered_here_draws_no_regions_and_says_so():
    v = dataclasses.replace(verdicts(AMD)["io.select-linear"], claim="elsewhere.select-linear")
    p = plan(v)
    assert not p.decision and "not registered" in p.decision_note
    assert p.figures  # its series are still drawn
    older = verdicts(AMD)["io.poll-linear"]
    older.decision.rule_version = RULES["io.poll-linear"].version + 1
    assert not plan(older).decision and "version" in plan(older).decision_note


def test_parts_are_matched_by_name_never_by_chance():
    """The version-1 record of io.epoll-needs-edge keeps only its edge-triggered part: it
    must get the edge-triggered regions, not the level-triggered part's (the first)."""
    strips = plan(verdicts(AMD)["io.epoll-needs-edge"]).decision
    assert [s.label for s in strips] == ["edge-triggered exponent"]
    assert strips[0].supported == RULES["io.epoll-needs-edge"].part("edge-triggered").supported
    assert strips[0].refuted is None


@pytest.mark.parametrize("path", [AMD, INTEL_V1], ids=["amd", "intel"])
def test_every_axis_names_its_unit_and_decades_are_logarithmic(path):
    for v in verdicts(path).values():
        for p in panels(plan(v)):
            assert re.search(r"\(.+\)$", p.xlabel) and re.search(r"\(.+\)$", p.ylabel), (v.claim, p)
            ys = [y for ln in p.lines for y in ln.ys]
            if ys and min(ys) > 0 and max(ys) / min(ys) >= 10:
                assert p.ylog, (v.claim, p.title, p.ylabel)
            xs = [x for ln in p.lines for x in ln.xs]
            if p.categories is None and xs and min(xs) > 0 and max(xs) / min(xs) >= 100:
                assert p.xlog, (v.claim, p.xlabel)
        for s in plan(v).decision:  # a decision axis over decades is logarithmic too
            ends = [x for r in (s.supported, s.refuted) if r for x in r.numbers()]
            ends += [x for x in [s.value, *(s.ci or ())] if x is not None]
            if ends and min(ends) > 0 and max(ends) / min(ends) >= 30:
                assert s.log, (v.claim, s.label)


# ---- the pages ---------------------------------------------------------------------------------


class Page(HTMLParser):
    """Ids, links, sources, scripts and SVGs of an HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.ids, self.links, self.external, self.tags = set(), [], [], {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if "id" in a:
            self.ids.add(a["id"])
        for k in ("href", "src", "xlink:href"):
            value = a.get(k) or ""
            if value.startswith("#"):
                self.links.append(value[1:])
            elif value:
                self.external.append(value)


@pytest.fixture(scope="module")
def amd_report(tmp_path_factory) -> tuple[Path, str]:
    """The recorded AMD default run (33 claims), imported and reported."""
    tmp = tmp_path_factory.mktemp("report")
    db = tmp / "perflab.db"
    run = imported(db, AMD)
    out = tmp / "report.html"
    p = cli("report", run, "-o", str(out), "--db", str(db))
    assert p.returncode == 0, p.stderr
    assert "wrote" in p.stderr and "33 claim(s)" in p.stderr
    return out, run


def test_the_html_page_is_whole_and_self_contained(amd_report):
    out, run = amd_report
    text = out.read_text()
    page = Page(text)
    vs = verdicts(AMD)
    assert all(f"c0-{claim}" in page.ids for claim in vs)
    assert set(page.links) <= page.ids  # every link lands on the page
    assert not page.external and not page.tags.get("script") and not page.tags.get("img")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)""", text)
    expected = sum(len(p.figures) + len(p.controls) + bool(p.decision) + bool(p.aa)
                   for p in (plan(v) for v in vs.values()))
    assert page.tags["svg"] == expected > 50
    for v in vs.values():  # statement, mechanism and rerun command of each claim are there
        assert html.escape(v.rerun) in text and html.escape(v.statement) in text
    assert "inconclusive" in text and "noisy" not in text.split("<h2>Verdicts</h2>")[0]
    assert len(text.encode()) < 2_000_000


def test_hostile_record_text_stays_text(tmp_path, db):
    recs = records(AMD)
    v = next(r for r in recs if r["claim"] == "io.select-linear")
    v["statement"] = '<script>alert(1)</script> "quoted" \u202e reversed'
    v["series"][0]["name"] = "$\\frac{1}{0}$ <b>bold</b> \u202e\x1b[2J"
    v["rerun"] = "perflab run io.select-linear `rm -rf ~`"
    run = imported(db, write_records(tmp_path / "evil.jsonl", [v]))
    out = tmp_path / "evil.html"
    p = cli("report", run, "-o", str(out), "--db", str(db))
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>bold</b>" not in text and "\u202e" not in text and "\x1b" not in text
    assert "\\frac{1}{0}" in text  # drawn as text, not parsed as mathematics
    md = tmp_path / "evil.md"
    assert cli("report", run, "--format", "md", "-o", str(md), "--db", str(db)).returncode == 0
    body = md.read_text()
    assert "<script>" not in body and "\\<" not in body and "&lt;script&gt;" in body
    assert "````" not in body and "```\nperflab run io.select-linear `rm -rf ~`\n```" in body


FEW = ("cache.cpu-ladder", "fork.cost-grows-with-memory", "io.select-linear", "space.user-layout", "clone.fork-is-clone")


def few(path: Path, tmp_path: Path) -> Path:
    """A handful of a recorded run's claims (a sweep, side by side, categories, checks)."""
    return write_records(tmp_path / f"few-{path.name}", [r for r in records(path) if r["claim"] in FEW])


def test_markdown_with_png_plots_beside_it(tmp_path, db):
    run = imported(db, few(INTEL_V1, tmp_path))
    md = tmp_path / "out" / "intel.md"
    md.parent.mkdir()
    p = cli("report", run, "--format", "md", "-o", str(md), "--db", str(db))
    assert p.returncode == 0, p.stderr
    body = md.read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", body)
    folder = tmp_path / "out" / "intel-plots"
    assert images and sorted(Path(i).name for i in images) == sorted(f.name for f in folder.iterdir())
    for rel in images:
        data = (md.parent / rel).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    anchors = re.findall(r"\]\(#([^)]+)\)", body)
    assert len(anchors) == len(FEW) and "## io\\.select\\-linear" in body
    # written again: the folder is replaced whole
    (folder / "stale.png").write_bytes(b"old")
    assert cli("report", run, "--format", "md", "-o", str(md), "--db", str(db)).returncode == 0
    assert not (folder / "stale.png").exists()
    (folder / "notes.txt").write_text("mine")  # not a report's: refused, before any work
    one_line_error(cli("report", run, "--format", "md", "-o", str(md), "--db", str(db)), 1, "not a report's plots")
    assert (folder / "notes.txt").read_text() == "mine"


def test_several_runs_and_files_in_one_report(tmp_path, db):
    run = imported(db, few(AMD, tmp_path))
    out = tmp_path / "two.html"
    p = cli("report", run, str(few(INTEL_V1, tmp_path)), "-o", str(out), "--db", str(db))
    assert p.returncode == 0, p.stderr
    page = Page(out.read_text())
    assert "c0-io.select-linear" in page.ids and "c1-io.select-linear" in page.ids
    assert {"host0", "host1"} <= page.ids


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, db):
    run = imported(db, AMD)
    out = tmp_path / "r.html"
    one_line_error(cli("report", "nosuchrun", "-o", str(out), "--db", str(db)), 2, "no run matches 'nosuchrun'")
    junk = write_records(tmp_path / "junk.jsonl", [{"not": "a record"}])
    one_line_error(cli("report", str(junk), "-o", str(out), "--db", str(db)), 1, "not perflab JSON")
    newer = records(AMD)[:2]
    newer[1]["schema_version"] = 7
    one_line_error(cli("report", str(write_records(tmp_path / "n.jsonl", newer)), "-o", str(out)), 1,
                   "newer than this perflab's")
    one_line_error(cli("report", run, "-o", str(tmp_path / "no" / "such" / "dir.html"), "--db", str(db)), 1,
                   "no directory")
    (tmp_path / "a-dir.html").mkdir()
    one_line_error(cli("report", run, "-o", str(tmp_path / "a-dir.html"), "--db", str(db)), 1, "is a directory")
    one_line_error(cli("report", run, "--format", "md", "-o", "-", "--db", str(db)), 2, "give -o FILE.md")
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))


def test_without_matplotlib_one_line_names_the_extra(tmp_path, db):
    run = imported(db, AMD)
    out = tmp_path / "r.html"
    code = ("import sys; sys.modules['matplotlib'] = None; from perflab.cli.main import main; "
            f"sys.exit(main(['report', {run!r}, '-o', {str(out)!r}, '--db', {str(db)!r}]))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    one_line_error(p, 1, "pip install 'perflab[report]'")
    assert not out.exists()


@pytest.mark.live
def test_a_fresh_run_draws_every_part_of_its_rules(tmp_path, db):
    """Records of this perflab (every part of a rule of parts kept, with its outcome):
    a strip per part with that part's regions, and the page written."""
    claims = ["task.process-switch-dearer", "fork.vfork-constant"]
    p = cli("run", *claims, "--quick", "--json", "--db", str(db))
    assert p.returncode == 0, p.stderr
    fresh = {v.claim: v for v in read_lines(p.stdout.splitlines())}
    for claim in claims:
        strips = plan(fresh[claim]).decision
        rule = RULES[claim]
        assert [s.supported for s in strips] == [r.supported for r in rule.parts], claim
        assert [s.refuted for s in strips] == [r.refuted for r in rule.parts], claim
        assert all(s.outcome in ("supported", "refuted", "inconclusive") for s in strips)
    out = tmp_path / "fresh.html"
    p = cli("report", "last", "-o", str(out), "--db", str(db))
    assert p.returncode == 0, p.stderr
    assert Page(out.read_text()).tags["svg"] >= 4


def test_a_wrapped_label_is_two_lines_not_an_escape():
    from perflab.results.report import draw

    line = figures.Line("s", [1.0, 2.0], [1.0, 2.0], [0.9, 1.9], [1.1, 2.1])
    panel = figures.Panel("", "threads (count)", figures.y_label("1 = malloc resolved into the allocator"), [line])
    svg = draw.svg(figures.Figure("k", "t", [panel]), "k")
    assert "\\n" not in svg and "into the allocator)" in svg


def test_a_user_claims_section_is_drawn_like_a_built_in_one(tmp_path):
    """A claim file's record carries its definition: the report rebuilds its rule and draws
    its decision against the file's ranges, as for a built-in claim (issue 14)."""
    import perflab
    from perflab.results.report import content
    from perflab.results.sources import Source
    from perflab.userclaims.build import from_record

    fixture = Path(__file__).parent / "fixtures" / "claims" / "ratio-true.toml"
    (v,) = perflab.run([str(fixture)], budget="quick", seed=1, db=tmp_path / "p.db")
    assert v.claim not in RULES and v.decision is not None
    (item,) = content.items([Source(v.run_id, [v])])
    [strip] = item.plan.decision
    rule = from_record(v).rule
    assert (strip.supported, strip.refuted) == (rule.supported, rule.refuted) and not item.plan.decision_note
    assert (strip.value, strip.ci) == (v.decision.value, v.decision.ci)
