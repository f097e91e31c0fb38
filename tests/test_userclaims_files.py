"""Claim files are read in the issue's shape and refused, before anything runs, with one
line per problem: the file, the line where known, the key and what was expected."""

from __future__ import annotations

import math
import textwrap

import pytest

from conftest import cli
from perflab.core.errors import UsageError
from perflab.engine import registry
from perflab.userclaims import files
from perflab.userclaims.build import claim
from perflab.userclaims.validate import ClaimFileError, read

# The file shape of issue 14, verbatim: users will have written files like it.
ISSUE_EXAMPLE = '''\
id = "mine.sleep-ratio"            # a claim id of the user's choosing
statement = "sleeping 20 ms takes twice as long as sleeping 10 ms"
kind = "ratio"                     # quantity: metric(a) / metric(b)
metric = "wall"                    # or { regex = 'took ([0-9.]+) ms', unit = "ms" }
a = ["sleep", "0.02"]
b = ["sleep", "0.01"]
supported = [1.8, 2.2]             # supported when the quantity's CI lies inside
refuted = [0.0, 1.3]               # refuted when it lies inside this one
'''


def write(tmp_path, text: str, name: str = "claim.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ClaimFileError) as info:
        read(path, files.check_regex)
    assert all(p.startswith(str(path)) for p in info.value.problems), info.value.problems
    return info.value.problems


def variant(old: str, new: str) -> str:
    assert old in ISSUE_EXAMPLE
    return ISSUE_EXAMPLE.replace(old, new)


def test_the_issues_shape_is_read_as_written(tmp_path):
    d = read(write(tmp_path, ISSUE_EXAMPLE))
    assert (d.id, d.kind, d.metric.wall) == ("mine.sleep-ratio", "ratio", True)
    assert d.commands == {"a": ("sleep", "0.02"), "b": ("sleep", "0.01")}
    assert (d.supported, d.refuted) == ((1.8, 2.2), (0.0, 1.3))
    assert d.directory == str(tmp_path.resolve()) and d.timeout_s == 60 and d.pin and d.runs is None


def test_the_regex_metric_and_open_ranges(tmp_path):
    text = variant('metric = "wall"', """metric = { regex = 'took ([0-9.]+) ms', unit = "ms" }""")
    text = text.replace("supported = [1.8, 2.2]", "supported = [1.8, inf]").replace(
        "refuted = [0.0, 1.3]", 'refuted = ["-inf", 1.3]')
    d = read(write(tmp_path, text), files.check_regex)
    assert (d.metric.regex, d.metric.unit) == ("took ([0-9.]+) ms", "ms")
    assert d.supported == (1.8, math.inf) and d.refuted == (-math.inf, 1.3)


@pytest.mark.parametrize("old,new,expected", [
    ('kind = "ratio"', 'kind = "latency"', ":3: kind: unknown kind 'latency': expected one of ratio, scaling, threshold"),
    ('b = ["sleep", "0.01"]\n', "", ": b: missing (a command as a list of strings"),
    ('refuted = [0.0, 1.3]', 'refuted = [2.0, inf]',
     ":8: refuted: [2, inf] overlaps supported [1.8, 2.2] (a value in [2, 2.2] would be both): they cannot both hold"),
    ('refuted = [0.0, 1.3]', 'refuted = [0.0, 1.8]', "(they share 1.8): they cannot both hold"),
    ('supported = [1.8, 2.2]', 'supported = [2.2, 1.8]', ":7: supported: [2.2, 1.8]: the lower end is above the upper"),
    ('supported = [1.8, 2.2]', 'supported = [1.8]', ":7: supported: expected a range [lo, hi] of two numbers"),
    ('supported = [1.8, 2.2]', 'supported = [nan, 2.2]', ":7: supported: expected a range [lo, hi]"),
    ('a = ["sleep", "0.02"]', 'a = "sleep 0.02"', ":5: a: expected a list of strings (an argv, run without a shell)"),
    ('a = ["sleep", "0.02"]', 'a = []', ":5: a: expected a non-empty list of strings"),
    ('metric = "wall"', 'metric = "gpu"', ':4: metric: expected "wall", "cpu" or { regex ='),
    ('metric = "wall"', "metric = { regex = 'took ([0-9' , unit = \"ms\" }",
     ":4: metric.regex: not a POSIX extended regular expression (regex(7))"),
    ('metric = "wall"', "metric = { regex = 'x' }", ":4: metric.unit: missing"),
    ('id = "mine.sleep-ratio"', 'id = "Mine Sleep"', ":1: id: 'Mine Sleep': expected topic.name"),
    ('kind = "ratio"', 'kind = "ratio"\nn = [1, 2]', ":4: n: belongs to kind scaling, not ratio"),
    ('kind = "ratio"', 'kind = "ratio"\ntimeout = 0', ":4: timeout: expected seconds one run may take"),
    ('kind = "ratio"', 'kind = "ratio"\nruns = 0', ":4: runs: expected an integer in [1, 1000]"),
    ('kind = "ratio"', 'kind = "ratio"\nsetup = "make"', ":4: setup: expected a list of strings"),
])
def test_each_problem_is_one_line_naming_file_line_and_key(tmp_path, old, new, expected):
    found = problems(tmp_path, variant(old, new))
    assert len(found) == 1 and expected in found[0], found


def test_a_misspelt_key_is_named_and_what_it_leaves_missing_too(tmp_path):
    found = problems(tmp_path, variant("supported = [1.8, 2.2]", "suported = [1.8, 2.2]"))
    assert found == [f"{tmp_path / 'claim.toml'}:7: suported: unknown key (did you mean 'supported'?)",
                     f"{tmp_path / 'claim.toml'}: supported: missing (a range [lo, hi] of the decision quantity; "
                     "inf allowed)"]


def test_a_toml_syntax_error_has_its_line(tmp_path):
    (found,) = problems(tmp_path, variant('kind = "ratio"', "kind = "))
    assert ":3: TOML syntax error: " in found and "(column" in found


def test_a_missing_kind_and_every_problem_at_once(tmp_path):
    found = problems(tmp_path, 'id = "x"\nstatement = ""\n')
    keys = [p.split(": ")[1] for p in found]
    assert keys == ["kind", "id", "statement", "supported", "refuted"], found


def test_outside_text_in_a_problem_is_terminal_safe(tmp_path):
    """Shown once made safe (ls -b's escapes), also when a directory's problems are gathered."""
    write(tmp_path, variant('kind = "ratio"', 'kind = "ratio"\n"ev\\u001b[2Jil" = 1'))
    with pytest.raises(ClaimFileError) as info:
        files.load([str(tmp_path)])
    text = str(info.value)
    assert "\x1b" not in text and "ev\\033[2Jil: unknown key" in text and "\\\\" not in text, text


@pytest.mark.parametrize("extra,expected", [
    ('argv = ["dd", "count=9"]\nn = [1, 10]', "argv: no element holds {n}"),
    ('argv = ["dd", "count={n}"]\nn = [1, 2, 100]', "n: 1 size(s) in the top decade (n >= 10)"),
    ('argv = ["dd", "count={n}"]\nn = [10, 20, 20]', "n: a size is listed twice"),
    ('argv = ["dd", "count={n}"]\nn = [0, 10, 20]', "n: expected a list of positive numbers"),
    ('argv = ["dd", "count={n}"]\nn = [10, 20]\nbaseline = 10', "baseline: 10 is not below the smallest n"),
    ('argv = ["dd", "count={n}"]\nn = [10, 20]\naa_n = 15', "aa_n: 15 is not one of n"),
    ('argv = ["dd", "count={n}"]', "n: missing"),
])
def test_scaling_problems(tmp_path, extra, expected):
    text = f'id = "mine.s"\nstatement = "s"\nkind = "scaling"\n{extra}\nsupported = [0.8, 1.25]\nrefuted = [-inf, 0.5]\n'
    found = problems(tmp_path, text)
    assert len(found) == 1 and expected in found[0], found


def test_scaling_defaults(tmp_path):
    text = ('id = "mine.s"\nstatement = "s"\nkind = "scaling"\nargv = ["dd", "count={n}"]\nn = [1e3, 100, 2000, 5000]\n'
            'supported = [0.8, 1.25]\nrefuted = [-inf, 0.5]\n')
    d = read(write(tmp_path, text))
    assert d.n == (100, 1000.0, 2000, 5000) and d.aa_n == 1000.0  # the cheapest point of the top decade
    c = claim(d)
    assert c.aa == ("command", 1000.0)


def test_a_directory_reports_every_files_problems_and_duplicate_ids(tmp_path):
    write(tmp_path, ISSUE_EXAMPLE, "a.toml")
    write(tmp_path, ISSUE_EXAMPLE, "b.toml")
    write(tmp_path, variant('kind = "ratio"', 'kind = "nope"'), "c.toml")
    with pytest.raises(ClaimFileError) as info:
        files.load([str(tmp_path)])
    found = info.value.problems
    assert any("c.toml:3: kind: unknown kind 'nope'" in p for p in found)
    assert any("b.toml: id: 'mine.sleep-ratio' is also the id of" in p and "a.toml" in p for p in found)


def test_perflabs_own_ids_are_taken(tmp_path):
    path = write(tmp_path, variant('id = "mine.sleep-ratio"', 'id = "io.epoll-flat"'))
    with pytest.raises(ClaimFileError, match="io.epoll-flat' is already a claim"):
        registry.select([str(path)])


def test_paths_that_are_not_there(tmp_path):
    with pytest.raises(UsageError, match="no such claim file or directory"):
        registry.select([str(tmp_path / "missing.toml")])
    with pytest.raises(UsageError, match=r"no claim files \(\*.toml\)"):
        registry.select([str(tmp_path)])
    with pytest.raises(UsageError, match="unknown claim or topic: nothing-here"):
        registry.select(["nothing-here"])


def test_selection_by_file_directory_and_claims_dir(tmp_path, monkeypatch):
    write(tmp_path, ISSUE_EXAMPLE, "ratio.toml")
    write(tmp_path, variant('id = "mine.sleep-ratio"', 'id = "mine.other"'), "other.toml")
    assert [c.id for c in registry.select([str(tmp_path / "ratio.toml")])] == ["mine.sleep-ratio"]
    assert [c.id for c in registry.select([str(tmp_path)])] == ["mine.other", "mine.sleep-ratio"]
    assert [c.id for c in registry.select(["mine"], claims_dirs=[str(tmp_path)])] == ["mine.other", "mine.sleep-ratio"]
    monkeypatch.chdir(tmp_path)
    assert [c.id for c in registry.select(["ratio.toml", "io.epoll-flat"])] == ["mine.sleep-ratio", "io.epoll-flat"]
    (c,) = registry.select(["ratio.toml"])
    assert c.source == str((tmp_path / "ratio.toml").resolve()) and c.kernel == "cmdtime"


@pytest.mark.parametrize("old,new,key", [
    ('kind = "ratio"', "kind = ", "TOML syntax error"),
    ('kind = "ratio"', 'kind = "latency"', "kind: unknown kind"),
    ('b = ["sleep", "0.01"]\n', "", "b: missing"),
    ('refuted = [0.0, 1.3]', 'refuted = [2.0, inf]', "refuted: [2, inf] overlaps supported"),
])
def test_the_command_line_refuses_before_anything_runs(tmp_path, old, new, key):
    """exit 2, one line per problem naming the file, no traceback, no database, and the
    setup command (which would leave a file) never ran."""
    text = variant(old, new) + 'setup = ["touch", "setup-ran"]\n'
    path = write(tmp_path, text)
    db = tmp_path / "perflab.db"
    for args in (["run", str(path), "--quick"], ["run", "--dry-run", str(path)], ["list", str(path)]):
        p = cli(*args, "--db", str(db)) if args[0] == "run" else cli(*args)
        assert p.returncode == 2, p.stderr
        assert "Traceback" not in p.stderr and p.stderr.startswith(f"perflab: {path}") and key in p.stderr, p.stderr
    assert not db.exists() and not (tmp_path / "setup-ran").exists()
