"""Reading a claim file: TOML in (tomllib, the standard library's TOML 1.0 reader), a
Definition out, or every problem found at once, one line each: the file, the line where
it is known, the key, and what was expected. Nothing runs before a file is valid.

The file shape (README, "Writing a claim"); keys may be added, never changed:

    id = "mine.sleep-ratio"            # topic.name, lowercase
    statement = "..."
    kind = "ratio"                     # or "scaling", "threshold"
    metric = "wall"                    # or "cpu"; or { regex = 'took ([0-9.]+) ms', unit = "ms" }
    a = ["sleep", "0.02"]              # ratio: a and b; scaling: argv with {n}, and n = [...];
    b = ["sleep", "0.01"]              # threshold: argv
    supported = [1.8, 2.2]             # the quantity's CI inside: supported
    refuted = [0.0, 1.3]               # inside this one: refuted (inf allowed; no overlap)

Optional: setup (argv run once before sampling), runs (per sample), timeout (seconds per
run), pin (false: let the command use every CPU), baseline and aa_n (scaling), reason,
mechanism, version.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from pathlib import Path
from typing import Any, Callable

from perflab.core.errors import UsageError
from perflab.core.safe import safe
from perflab.userclaims.definition import KINDS, TIMES, Definition, Metric

ID_RE = re.compile(r"[a-z][a-z0-9_-]*\.[a-z0-9][a-z0-9_-]*")
COMMON = ("id", "statement", "kind", "metric", "supported", "refuted", "setup", "runs", "timeout", "pin", "reason",
          "mechanism", "version")
BY_KIND = {"ratio": ("a", "b"), "scaling": ("argv", "n", "baseline", "aa_n"), "threshold": ("argv",)}
REQUIRED = {"ratio": ("a", "b"), "scaling": ("argv", "n"), "threshold": ("argv",)}
MAX_RUNS = 1000  # cmdtime's --runs limit (kernels/cmdtime.c)
MAX_TIMEOUT_S = 7 * 24 * 3600  # cmdtime's --timeout-ms limit
N = "{n}"  # scaling: replaced by each n in the argv's elements (str.replace, not format)

# check_regex(pattern) -> None, or why the kernel's regcomp(3) refuses it
RegexCheck = Callable[[str], "str | None"]


class ClaimFileError(UsageError):
    """One or more claim files are not valid: each problem is one line of the message."""

    def __init__(self, problems: list[str]):
        self.problems = problems  # as found; the message, a line each, is terminal-safe (core/safe.py):
        super().__init__("\n".join(safe(p) for p in problems))  # a file's keys and values are outside text


class _Problems:
    def __init__(self, path: str, text: str):
        self.path, self.lines, self.found = path, text.splitlines(), []

    def line(self, key: str) -> int | None:
        """The line of a top-level key (``key =``, ``"key" =`` or a ``[key]`` table), if any."""
        k = re.escape(key)
        pattern = re.compile(rf"""^\s*(?:{k}|"{k}"|'{k}')\s*=|^\s*\[\s*{k}\s*\]""")
        return next((i for i, text in enumerate(self.lines, 1) if pattern.match(text)), None)

    def add(self, key: str, what: str, line: int | None = None) -> None:
        line = line or self.line(key.split(".")[0].split(" ")[0])
        self.found.append(f"{self.path}:{line}: {key}: {what}" if line else f"{self.path}: {key}: {what}")


def _kind_of(value: Any) -> str:
    return {bool: "a boolean", str: "a string", int: "an integer", float: "a number", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _number(v: Any) -> float | None:
    """A number as a range end: an integer, a float, TOML's inf / -inf, or "inf" / "-inf"."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, str) and v.strip().lower() in ("inf", "+inf", "-inf"):
        return -math.inf if v.strip().startswith("-") else math.inf
    return None


def _text(p: _Problems, data: dict, key: str, required: bool) -> str:
    v = data.get(key)
    if v is None:
        if required:
            p.add(key, "missing (a string)")
        return ""
    if not isinstance(v, str) or (required and not v.strip()):
        p.add(key, f"expected a non-empty string, got {_kind_of(v)}")
        return ""
    return v


def _argv(p: _Problems, data: dict, key: str, required: bool) -> tuple[str, ...] | None:
    v = data.get(key)
    example = 'e.g. ["sleep", "0.02"]'
    if v is None:
        if required:
            p.add(key, f"missing (a command as a list of strings, {example})")
        return None
    if isinstance(v, str):
        p.add(key, f"expected a list of strings (an argv, run without a shell), got a string {v!r}: {example}")
        return None
    if not isinstance(v, list) or not v or not all(isinstance(a, str) for a in v):
        p.add(key, f"expected a non-empty list of strings (an argv), {example}")
        return None
    if not v[0]:
        p.add(key, "the program (its first element) is empty")
        return None
    if any("\0" in a for a in v):
        p.add(key, "an argument holds a NUL character, which execve(2) cannot pass")
        return None
    return tuple(v)


def _range(p: _Problems, data: dict, key: str) -> tuple[float, float] | None:
    v = data.get(key)
    if v is None:
        p.add(key, "missing (a range [lo, hi] of the decision quantity; inf allowed)")
        return None
    ends = [_number(x) for x in v] if isinstance(v, list) else []
    if len(ends) != 2 or None in ends:
        p.add(key, f"expected a range [lo, hi] of two numbers (inf or -inf for an open end), got {v!r}")
        return None
    lo, hi = ends
    if lo > hi:
        p.add(key, f"[{_num(lo)}, {_num(hi)}]: the lower end is above the upper, so no value can lie in it")
        return None
    return lo, hi


def _num(v: float) -> str:
    return "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:g}"


def _metric(p: _Problems, data: dict, check_regex: RegexCheck | None) -> Metric:
    v = data.get("metric", "wall")
    expected = """expected "wall", "cpu" or { regex = 'took ([0-9.]+) ms', unit = "ms" }"""
    if v in TIMES:
        return Metric(time=v)
    if not isinstance(v, dict):
        p.add("metric", f"{expected}, got {v!r}")
        return Metric()
    for k in v:
        if k not in ("regex", "unit"):
            p.add(f"metric.{k}", f"unknown key ({expected})")
    regex, unit = v.get("regex"), v.get("unit")
    ok = True
    for k, val in (("regex", regex), ("unit", unit)):
        if not isinstance(val, str) or not val.strip():
            p.add(f"metric.{k}", "missing (a non-empty string)" if val is None else
                  f"expected a non-empty string, got {_kind_of(val)}")
            ok = False
    if ok and check_regex is not None:
        why = check_regex(regex)
        if why:
            p.add("metric.regex", f"not a POSIX extended regular expression (regex(7)): {why}")
    return Metric(time=None, regex=regex, unit=unit) if ok else Metric()


def _whole(p: _Problems, data: dict, key: str, lo: int, hi: int) -> int | None:
    v = data.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        p.add(key, f"expected an integer in [{lo}, {hi}], got {v!r}")
        return None
    return v


def _sweep(p: _Problems, data: dict, argv: tuple[str, ...] | None) -> tuple[tuple[float, ...], float | None,
                                                                            float | None]:
    """scaling's n, baseline and aa_n."""
    if argv is not None and not any(N in a for a in argv):
        p.add("argv", f"no element holds {N}: nothing would vary with n")
    v = data.get("n")
    ns: tuple[float, ...] = ()
    if v is not None:
        nums = [_number(x) for x in v] if isinstance(v, list) else [None]
        if not v or None in nums or not all(isinstance(x, (int, float)) and 0 < x < math.inf for x in v):
            p.add("n", f"expected a list of positive numbers (the sizes {N} takes), got {v!r}")
        elif len(set(v)) != len(v):
            p.add("n", f"a size is listed twice: {v!r}")
        else:
            ns = tuple(sorted(v))
            top = [x for x in ns if x >= ns[-1] / 10]
            if len(top) < 2:
                p.add("n", f"{len(top)} size(s) in the top decade (n >= {ns[-1] / 10:g}): the growth exponent is "
                           "fitted there and needs at least 2 (4 or more decide better)")
    baseline = data.get("baseline")
    if baseline is not None:
        if isinstance(baseline, bool) or not isinstance(baseline, (int, float)) or not 0 <= baseline < math.inf:
            p.add("baseline", f"expected a number >= 0 (the n whose cost is the fixed part), got {baseline!r}")
            baseline = None
        elif ns and baseline >= ns[0]:
            p.add("baseline", f"{baseline:g} is not below the smallest n ({ns[0]:g}): it measures the fixed part")
    aa_n = data.get("aa_n")
    if aa_n is not None and ns and aa_n not in ns:
        p.add("aa_n", f"{aa_n!r} is not one of n: the A/A control runs at one of the sweep's sizes")
        aa_n = None
    if aa_n is None and ns:
        aa_n = min(x for x in ns if x >= ns[-1] / 10)  # where the exponent is decided, at its cheapest
    return ns, baseline, aa_n


def read(path: Path, check_regex: RegexCheck | None = None) -> Definition:
    """The file's Definition; ClaimFileError with every problem otherwise."""
    shown = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ClaimFileError([f"{shown}: cannot read the claim file: {exc.strerror}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClaimFileError([f"{shown}: not UTF-8 (TOML is UTF-8): byte {exc.start}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", str(exc))
        where, msg = (f":{m.group(1)}", f"{str(exc)[:m.start()]} (column {m.group(2)})") if m else ("", str(exc))
        raise ClaimFileError([f"{shown}{where}: TOML syntax error: {msg}"]) from None
    p = _Problems(shown, text)
    kind = data.get("kind")
    if kind is None:
        p.add("kind", f"missing (one of {', '.join(KINDS)})")
    elif kind not in KINDS:
        p.add("kind", f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    allowed = COMMON + (BY_KIND[kind] if kind in KINDS else tuple(dict.fromkeys(k for ks in BY_KIND.values()
                                                                              for k in ks)))
    for key in data:
        if key not in allowed:
            owner = next((k for k, ks in BY_KIND.items() if key in ks), None)
            near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
            p.add(key, f"belongs to kind {owner}, not {kind}" if owner else
                  "unknown key" + (f" (did you mean {near[0]!r}?)" if near else f" (known: {', '.join(allowed)})"))
    cid = _text(p, data, "id", True)
    if cid and not ID_RE.fullmatch(cid):
        p.add("id", f"{cid!r}: expected topic.name in lowercase letters, digits, '-' and '_' (e.g. mine.sleep-ratio)")
    statement = _text(p, data, "statement", True)
    metric = _metric(p, data, check_regex)
    commands = {}
    if kind in KINDS:
        for key in BY_KIND[kind]:
            if key in ("a", "b", "argv"):
                commands[key] = _argv(p, data, key, key in REQUIRED[kind])
        if kind == "scaling" and data.get("n") is None:
            p.add("n", f"missing (a list of the sizes {N} takes in argv)")
    ns, baseline, aa_n = _sweep(p, data, commands.get("argv")) if kind == "scaling" else ((), None, None)
    supported, refuted = _range(p, data, "supported"), _range(p, data, "refuted")
    if supported and refuted and supported[0] <= refuted[1] and refuted[0] <= supported[1]:
        lo, hi = max(supported[0], refuted[0]), min(supported[1], refuted[1])
        shared = f"they share {_num(lo)}" if lo == hi else f"a value in [{_num(lo)}, {_num(hi)}] would be both"
        p.add("refuted", f"[{_num(refuted[0])}, {_num(refuted[1])}] overlaps supported "
                         f"[{_num(supported[0])}, {_num(supported[1])}] ({shared}): they cannot both hold")
    setup = _argv(p, data, "setup", False)
    runs = _whole(p, data, "runs", 1, MAX_RUNS)
    version = _whole(p, data, "version", 1, 10**6) or 1
    timeout = data.get("timeout", 60.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT_S:
        p.add("timeout", f"expected seconds one run may take, a number in (0, {MAX_TIMEOUT_S}], got {timeout!r}")
        timeout = 60.0
    pin = data.get("pin", True)
    if not isinstance(pin, bool):
        p.add("pin", f"expected true or false, got {pin!r}")
    reason, mechanism = _text(p, data, "reason", False), _text(p, data, "mechanism", False)
    if p.found:
        raise ClaimFileError(p.found)
    full = path.resolve()
    return Definition(id=cid, statement=statement, kind=kind, metric=metric, commands=commands,
                      supported=supported, refuted=refuted, n=ns, baseline=baseline, aa_n=aa_n, setup=setup,
                      runs=runs, timeout_s=float(timeout), pin=bool(pin), reason=reason, mechanism=mechanism,
                      version=version, path=str(full), directory=str(full.parent))
