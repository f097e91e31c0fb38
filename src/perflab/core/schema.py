"""The JSON Schema (draft 2020-12) of one record: a ``perflab run --json`` line.

``perflab schema`` prints it; the tests validate every JSON line perflab writes against
it (with the ``jsonschema`` package). It describes record version ``SCHEMA_VERSION``
(core/record.py); a line without ``schema_version`` is version 1, which ``perflab``
reads and upgrades but this schema does not describe.
"""

from __future__ import annotations

from typing import Any

from perflab.core.record import SCHEMA_VERSION, Outcome, Reason

NUMBER_OR_NULL = {"type": ["number", "null"]}
INTERVAL = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
FIT = {
    "type": "object",
    "required": ["value", "ci"],
    "properties": {"value": {"type": "number"}, "ci": INTERVAL, "conf": NUMBER_OR_NULL},
}
X = {"type": ["number", "string", "null"], "description": "the swept value; a label; null for a single point"}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"https://perflab.invalid/schema/record-{SCHEMA_VERSION}.json",
    "title": "perflab verdict record",
    "description": "One claim's verdict on one machine: outcome, evidence, controls, host, provenance.",
    "type": "object",
    "required": ["schema_version", "claim", "outcome", "reason", "summary", "series", "decision", "controls",
                 "evidence", "host", "run_id", "duration_s", "source_hash", "perflab_version"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "claim": {"type": "string", "pattern": r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_.-]+$"},
        "statement": {"type": "string"},
        "outcome": {"enum": [o.value for o in Outcome]},
        "reason": {"enum": [*(r.value for r in Reason), None],
                   "description": "why an inconclusive is inconclusive; null for every other outcome"},
        "action": {"type": "string", "description": "what would change an inconclusive verdict"},
        "summary": {"type": "string"},
        "explanation": {"type": "string"},
        "rerun": {"type": "string"},
        "params": {"type": "object"},
        "series": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "x", "unit", "role", "points"],
                "properties": {
                    "name": {"type": "string"},
                    "x": {"type": ["string", "null"]},
                    "unit": {"type": "string"},
                    "role": {"enum": ["evidence", "control"]},
                    "points": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["x", "median", "ci", "n"],
                            "properties": {
                                "x": X,
                                "median": {"type": "number"},
                                "ci": INTERVAL,
                                "n": {"type": "integer", "minimum": 1},
                                "samples": {"type": "array", "items": {"type": "number"},
                                            "description": "one value per fresh process (with --samples)"},
                                "rounds": {"type": "array", "items": {"type": ["integer", "null"]},
                                           "description": "the round of the run each sample was taken in"},
                            },
                            "additionalProperties": False,
                        },
                    },
                    "growth_exponent": FIT,
                    "affine_fit": {"type": "object", "required": ["a", "b", "r2"],
                                   "properties": {"a": FIT, "b": FIT, "r2": {"type": "number"}}},
                },
                "additionalProperties": False,
            },
        },
        "decision": {
            "type": ["object", "null"],
            "required": ["quantity", "value", "ci", "thresholds", "outcome", "reason", "inconclusive", "rule"],
            "properties": {
                "quantity": {"type": "string"},
                "value": NUMBER_OR_NULL,
                "ci": {"oneOf": [INTERVAL, {"type": "null"}]},
                "thresholds": {"type": "object", "required": ["supported", "refuted"]},
                "outcome": {"enum": [Outcome.SUPPORTED.value, Outcome.REFUTED.value, Outcome.INCONCLUSIVE.value]},
                "reason": {"type": "string"},
                "inconclusive": {"enum": [*(r.value for r in Reason), None]},
                "rule": {"type": "object", "required": ["version"],
                         "properties": {"version": {"type": "integer", "minimum": 1}}},
            },
        },
        "controls": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["kind", "passed"],
                "properties": {"kind": {"enum": ["negative", "positive"]}, "passed": {"type": ["boolean", "null"]}},
            },
        },
        "evidence": {
            "type": "object",
            "properties": {
                "rounds": {"type": "integer"},
                "looks": {"type": "array"},
                "stopped_early": {"type": "boolean"},
                "samples": {"type": "integer"},
                "conf_per_look": {"type": "number"},
                "n_boot": {"type": "integer"},
                "seed": {"type": "integer"},
                "cpu": {"type": "integer"},
                "facts": {"type": "object", "description": "what the plan read from the host for the rule"},
                "rule": {"type": "object", "description": "what the rule found that is not a threshold"},
                "derived": {"type": "object"},
                "checks": {"type": "array", "items": {
                    "type": "object", "required": ["name", "expected", "observed", "holds", "note"],
                    "properties": {"holds": {"type": ["boolean", "null"]}}}},
                "observed": {"type": "object", "description": "a structural claim's raw observations"},
                "stderr": {"type": "string"},
            },
        },
        "host": {
            "type": "object",
            "properties": {
                "hostname": {"type": ["string", "null"]},
                "cpu_model": {"type": ["string", "null"]},
                "cores_online": {"type": ["integer", "null"]},
                "cpus_allowed": {"type": ["array", "null"], "items": {"type": "integer"}},
                "caches": {"type": "array"},
                "kernel": {"type": ["string", "null"]},
                "rlimit_nofile": {"type": ["object", "null"]},
                "mem_available_bytes": {"type": ["integer", "null"]},
            },
        },
        "run_id": {"type": "string"},
        "duration_s": {"type": "number", "minimum": 0},
        "source_hash": {"type": "string"},
        "perflab_version": {"type": "string"},
        "samples": {
            "type": "array",
            "description": "with --samples: one entry per fresh process, its kernel record verbatim",
            "items": {
                "type": "object",
                "required": ["series", "x", "round", "value", "record"],
                "properties": {"series": {"type": "string"}, "x": X, "round": {"type": "integer"},
                               "value": {"type": "number"}, "cpu": {"type": ["integer", "null"]},
                               "record": {"type": "object"}},
            },
        },
    },
    "allOf": [
        {"if": {"properties": {"outcome": {"const": Outcome.INCONCLUSIVE.value}}},
         "then": {"properties": {"reason": {"enum": [r.value for r in Reason]}}},
         "else": {"properties": {"reason": {"const": None}}}},
    ],
}
