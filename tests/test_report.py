"""Terminal rendering keeps data verbatim (no rich markup interpretation)."""

import io

from perflab.report import terminal


def test_brackets_in_data_are_printed_verbatim():
    rec = {"claim": "malloc.x", "outcome": "supported", "summary": "supported: [heap] grew by brk",
           "statement": "the [heap] is its own", "explanation": "see [stack] and [vdso]",
           "rerun": "perflab run malloc.x", "duration_s": 0.1, "decision": None, "controls": {},
           "series": [], "evidence": {"checks": [{"name": "[heap] present", "expected": True,
                                                   "observed": True, "holds": True, "note": "[heap]"}]}}
    out = io.StringIO()
    terminal.render([rec], out)
    text = out.getvalue()
    assert "the [heap] is its own" in text and "check [heap] present: holds" in text and "[vdso]" in text
