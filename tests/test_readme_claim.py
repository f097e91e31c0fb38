"""README's "Writing a claim" works as written: its claim file is valid, its dry run and
its run go as shown, its key table names exactly the keys a claim file may hold, and its
example of a refusal is the validator's own words."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import cli
from perflab.userclaims import files, validate

README = Path(__file__).resolve().parent.parent / "README.md"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## Writing a claim"):text.index("## Adding a claim")]


def example(tmp_path) -> Path:
    (name, body), = re.findall(r"```toml file=(\S+)\n(.*?)```", section(), re.S)
    path = tmp_path / name
    path.write_text(body)
    return path


def test_the_example_is_a_valid_claim_file(tmp_path):
    d = validate.read(example(tmp_path), files.check_regex)
    assert (d.kind, d.supported, d.refuted) == ("ratio", (2, float("inf")), (0, 1.25)) and d.setup[0] == "sh"


def test_the_dry_run_goes_as_shown(tmp_path):
    path = example(tmp_path)
    p = cli("run", "--dry-run", str(path), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "-- gzip -9 -c numbers.txt" in p.stdout and "-- gzip -1 -c numbers.txt" in p.stdout
    assert "setup, once before sampling (not run now): sh -c 'seq 1 50000 > numbers.txt'" in p.stdout
    assert not (tmp_path / "numbers.txt").exists()


def test_the_key_table_names_every_key_and_no_other():
    keys = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", section(), re.M):
        keys |= set(re.findall(r"`([a-z_]+)`", row))
    known = set(validate.COMMON) | {k for ks in validate.BY_KIND.values() for k in ks}
    assert keys == known


def test_the_refusal_shown_is_the_validators(tmp_path):
    shown = re.search(r"`claims/x\.toml:8: (refuted: .*?)`", section(), re.S).group(1)
    path = tmp_path / "x.toml"
    path.write_text('id = "mine.x"\nstatement = "s"\nkind = "ratio"\nmetric = "wall"\na = ["true"]\nb = ["true"]\n'
                    "supported = [1.8, 2.2]\nrefuted = [2.0, inf]\n")
    with pytest.raises(validate.ClaimFileError) as info:
        validate.read(path)
    assert info.value.problems == [f"{path}:8: {' '.join(shown.split())}"]


@pytest.mark.live
def test_the_example_runs_as_shown(tmp_path):
    """gzip is CPU-bound: in a busy moment of a shared machine the A/A control can fail (or
    the interval straddle 2), and the verdict is then inconclusive, never confident."""
    path = example(tmp_path)
    for seed in ("1", "2", "3"):
        p = cli("run", path.name, "--quick", "--json", "--seed", seed, "--db", str(tmp_path / "p.db"), cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        rec = json.loads(p.stdout)
        if rec["outcome"] == "supported":
            break
    assert (tmp_path / "numbers.txt").exists(), rec["summary"]
    if rec["outcome"] == "supported":  # an inconclusive interval straddles the README's bound, its value either side
        assert rec["decision"]["value"] >= 2, rec["summary"]  # the README's supported = [2, inf] (test above)
    assert rec["outcome"] == "supported" or (rec["outcome"], rec["reason"]) in (
        ("inconclusive", "control"), ("inconclusive", "noisy")), rec["summary"]
