"""Write the generated parts of README.md and docs/claims/*.md from the decision rules.

Usage:  python tools/gen_docs.py          # rewrite them
        python tools/gen_docs.py --check  # exit 1 and name the files that are out of date

The text between the markers of perflab.results.ruledoc is generated; the rest of each
file is written by hand. tests/test_rules_as_data.py runs the --check.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from perflab.engine import registry  # noqa: E402
from perflab.results import ruledoc  # noqa: E402


def builtin_claims():
    """The catalogue: claims of perflab's own modules (not third-party plug-ins)."""
    return [c for c in registry.all_claims() if "/perflab/claims/" in c.source.replace("\\", "/")]


def main(argv: list[str]) -> int:
    stale = []
    for path, text in ruledoc.expected_files(ROOT, builtin_claims()).items():
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if old != text:
            stale.append(path.relative_to(ROOT))
            if "--check" not in argv:
                path.write_text(text, encoding="utf-8")
    if stale and "--check" in argv:
        print("out of date (run python tools/gen_docs.py): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
