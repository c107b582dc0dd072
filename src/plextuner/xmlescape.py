"""XML escaping as lxml serialises it, for the values our writers put in guides (a leaf: the
guide writer, its helpers and the readers that render placeholders share it)."""

from __future__ import annotations

import re

# Characters XML 1.0 cannot carry (lxml refuses them; provider text may hold them): what its
# Char production leaves out, spelled as the few ranges it is (the negated class of the
# allowed ranges took 6.8 ms to compile, in every process that writes a guide; this 0.6 ms).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;",
     "\t": "&#9;"}
)  # fmt: skip


# Any character an attribute escapes or XML cannot carry (a superset of what text escapes), as
# one class (3x faster than the alternation; a test holds it equal over every code point): a
# channel whose values hold none of them is written without escaping anything.
NEEDS_ESCAPE = re.compile('[\x00-\x1f&<>"\ud800-\udfff\ufffe\uffff]')
_needs_escape = NEEDS_ESCAPE.search


def xml_text(value: str) -> str:
    """Element text escaped as lxml serialises it. Most values need nothing: one class search
    answers that (the deletion and the translation through a table of strings cost ~0.9 us
    a value, a placeholder guide's 50k titles and channel ids 0.1 s of its first write)."""
    if _needs_escape(value) is None:
        return value
    return _NOT_XML.sub("", value).translate(_TEXT_ESCAPES)


def xml_attr(value: str) -> str:
    """A double-quoted attribute value escaped as lxml serialises it."""
    if _needs_escape(value) is None:
        return f'"{value}"'
    return '"' + _NOT_XML.sub("", value).translate(_ATTR_ESCAPES) + '"'


# The characters of NEEDS_ESCAPE beyond `&<>"`: control characters and what XML cannot carry.
RARE = re.compile("[\x00-\x1f\ud800-\udfff\ufffe\uffff]")
