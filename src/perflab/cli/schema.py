"""perflab schema: the JSON Schema of one verdict record (a `run --json` line)."""

from __future__ import annotations

import json

from perflab.core.schema import SCHEMA


def add_parser(sub) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of a verdict record (one --json line)")
    p.set_defaults(func=run)


def run(args) -> int:
    print(json.dumps(SCHEMA, indent=2))
    return 0
