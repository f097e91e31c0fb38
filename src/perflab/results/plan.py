"""``perflab run --dry-run`` on a terminal: each claim's plan (engine/dryrun.py) as lines
of text. Commands are shown as a shell would need them (shlex.join), every string made
terminal-safe (core/safe.py): a claim file's commands are outside text."""

from __future__ import annotations

import shlex
from typing import Any, TextIO

from perflab.core.safe import safe


def _x(value: Any) -> str:
    return "" if value is None else f" at {value}"


def render(plans: list[dict[str, Any]], out: TextIO) -> None:
    for p in plans:
        def say(text: str) -> None:
            print(safe(text), file=out)

        source = f" ({p['source']})" if p.get("source") else ""
        say(f"{p['claim']}{source}")
        say(f"  statement: {p['statement']}")
        rule = p["rule"]
        say(f"  rule (version {rule['version']}): decided on {rule['quantity']}")
        say(f"    supported: {rule['thresholds']['supported']}; refuted: {rule['thresholds']['refuted']}")
        if not p.get("runnable"):
            say(f"  not runnable here: {p.get('reason')}")
        elif p.get("structural"):
            say(f"  {p['measures']}")
        else:
            for s in p["series"]:
                unit = f"{s['unit']}, by {s['x']}" if s["x"] else s["unit"]
                say(f"  series {s['name']} ({unit}; {s['role']}; each process may take {s['timeout_s']:g} s):")
                for pt in s["points"]:
                    say(f"    {s['x'] + ' = ' + str(pt['x']) + ': ' if s['x'] else ''}{shlex.join(pt['argv'])}")
            if p.get("aa"):
                aa = p["aa"]
                say(f"  A/A control: {aa['series']}{_x(aa['x'])} against itself, {aa['pairs_per_round']} pair(s) "
                    "of processes per round")
            setup = (p.get("facts") or {}).get("setup")
            if setup:
                say(f"  setup, once before sampling (not run now): {shlex.join(setup['argv'])}")
            looks = ", ".join(map(str, p["looks"]))
            say(f"  samples: {p['processes_per_round']} processes per round in a seeded random order; the rule is "
                f"evaluated after rounds {looks} (confidence {p['conf_per_look']:.4g} each) and stops early when "
                f"decided: {p['processes']['fewest']} to {p['processes']['most']} processes")
        say(f"  rerun: {p['rerun']}")
