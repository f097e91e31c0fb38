"""The one place where text from outside perflab is made safe for a terminal.

Process names, argv, thread names, paths, user names, a user's own arguments echoed in
an error: any of them may hold control characters. Printed raw, ``ESC ] 0 ; ... BEL``
retitles the window, ``ESC [ 2 J`` clears the screen, and a newline forges a table row,
so that one user can rewrite what root sees when root inspects that user's process.

``safe(text)`` shows every such character as a visible escape, the convention of GNU
``ls -b`` / ``ls --quoting-style=escape`` (ls(1), GNU coreutils: "print C-style escapes
for nongraphic characters"; coreutils' lib/quotearg.c): ``\\a \\b \\t \\n \\v \\f \\r``
for those seven, a backslash doubled (so that an escape in the output always means the
input held that character, never the four characters ``\\033``), and every other
nongraphic character as a backslash and three octal digits per byte of its UTF-8
encoding (ESC -> ``\\033``, DEL -> ``\\177``, the C1 CSI U+009B -> ``\\302\\233``, as
``ls -b`` prints them in a UTF-8 locale). Nongraphic here means:

- the C0 controls U+0000..U+001F and DEL U+007F, the C1 controls U+0080..U+009F (the
  Unicode general category Cc; a terminal may act on C1 CSI U+009B like ``ESC [``);
- U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR (``ls -b`` escapes them too;
  Python's str.splitlines() breaks lines at them);
- the bidirectional embedding, override and isolate controls U+202A..U+202E and
  U+2066..U+2069, which reorder how the rest of a line is displayed (CVE-2021-42574,
  "Trojan Source"). ``ls`` prints these as they are; this goes one step further;
- lone surrogates: ``os.fsdecode`` and ``bytes.decode(errors="surrogateescape")`` turn a
  byte that is not UTF-8 into U+DC80..U+DCFF, shown here as that byte (``\\377``, as
  ``ls -b`` shows the byte); any other lone surrogate (which cannot even be encoded to
  print) as its three bytes under "surrogatepass".

Everything else, including printable non-ASCII text (``é``, ``名前``), is kept. The
function is pure and total: any str (or bytes, decoded as os.fsdecode does) in, a str
with no control character out, equal to its input whenever that was already safe.

Apply it once, where outside text meets a terminal, never twice (a doubled backslash
would double again). JSON output needs none of it: json.dumps escapes every control
character itself.
"""

from __future__ import annotations

import os
import re
from typing import Any

_C_ESCAPES = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r", "\\": "\\\\"}

_UNSAFE = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    ch = match.group()
    c_escape = _C_ESCAPES.get(ch)
    if c_escape is not None:
        return c_escape
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape's stand-in for the byte code - 0xDC00
        return f"\\{code - 0xDC00:03o}"
    return "".join(f"\\{b:03o}" for b in ch.encode("utf-8", "surrogatepass"))


def safe(text: str | bytes) -> str:
    """`text` with every control character shown as an escape (module docstring)."""
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    return _UNSAFE.sub(_escape, text)


_PLAIN = frozenset({int, float, bool, type(None)})  # nothing to escape, nothing inside


def safe_tree(value: Any) -> Any:
    """A copy of `value` (dicts, lists, tuples, strings, numbers...) with safe() applied
    to every string in it, keys included: for a renderer that prints from a whole
    snapshot, so that no field can be forgotten."""
    if isinstance(value, str):
        return safe(value)
    if isinstance(value, dict):
        return {safe_tree(k): safe_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        # numbers are returned as they are without a call each (a snapshot's groups of
        # 10,000 thread IDs: 0.1 s of calls otherwise)
        items = [v if type(v) in _PLAIN else safe_tree(v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return value
