"""Where a guide's bytes stand: inside a comment, CDATA section or processing instruction, or
outside them (see prefilter.py: only what lies outside is cut or read from its bytes)."""

from __future__ import annotations

import itertools
import re

_MARKUP = re.compile(rb"<[!?]")
_OPENERS = {b"<!--": b"-->", b"<![CDATA[": b"]]>", b"<?": b"?>"}
_CARRY = max(map(len, _OPENERS)) - 1  # a token cut by a block's end is at most this much of it


class Markup:
    """Whether the stream, as far as it was read, stands inside a comment, CDATA section or
    processing instruction: fed every byte in order, tokens cut by a block's end included. In
    well-formed XML `<` starts markup only outside them (never in an attribute or text), so
    this is exact there; on a malformed file it errs on either side only where the parser will
    refuse the file anyway."""

    def __init__(self) -> None:
        self.closer: bytes | None = None  # what ends the construct we are in
        self._carry = b""
        self._fed = 0  # bytes fed
        self.opened_at = 0  # where (in the bytes fed) the construct we are in opened

    @property
    def outside(self) -> bool:
        return self.closer is None and not self._carry

    @property
    def open_for(self) -> int:
        """Bytes fed since the construct we are in opened (0: in none)."""
        return self._fed - self.opened_at if self.closer is not None else 0

    def outside_before(self, following: bytes) -> bool:
        """Whether the stream stands outside markup where `following` (which opens none)
        follows: a carried `<` that `<programme` shows opened nothing is outside."""
        if self.outside or self.closer is not None:
            return self.outside
        probe = Markup.resumed(self.state)
        probe.feed(following)
        return probe.outside

    @property
    def state(self) -> tuple[bytes | None, bytes] | None:
        """Where the stream stands, for `resumed` (None: outside)."""
        return None if self.outside else (self.closer, self._carry)

    @classmethod
    def resumed(cls, state: tuple[bytes | None, bytes] | None) -> Markup:
        """A `Markup` that stands where `state` (of another) stood."""
        markup = cls()
        if state is not None:
            markup.closer, markup._carry = state
        return markup

    def feed(self, block: bytes) -> None:
        text, pos = self._carry + block, 0
        base = self._fed - len(self._carry)  # where `text` begins in the bytes fed
        self._fed += len(block)
        # Where each opener is next (-1: nowhere), found again only once passed: looked for
        # from every construct's end, the absent ones scanned the whole block each time (a
        # guide with a CDATA section in every title took 59x a bare iterparse)
        nexts = {opener: text.find(opener) for opener in _OPENERS}
        while True:
            if self.closer is not None:
                end = text.find(self.closer, pos)
                if end < 0:
                    break
                pos, self.closer = end + len(self.closer), None
                continue
            for opener, at in nexts.items():
                if 0 <= at < pos:
                    nexts[opener] = text.find(opener, pos)
            found = [(at, opener) for opener, at in nexts.items() if at >= 0]
            if not found:
                break
            at, opener = min(found)
            pos, self.closer = at + len(opener), _OPENERS[opener]
            self.opened_at = base + at
        # No whole token lies past `pos`: keep the longest end that may begin one.
        tokens = _OPENERS if self.closer is None else (self.closer,)
        self._carry = b""
        for size in range(min(_CARRY, len(text) - pos), 0, -1):
            if any(token.startswith(text[-size:]) for token in tokens):
                self._carry = text[-size:]
                break


def has_markup(block: bytes, start: int = 0) -> bool:
    """Whether a comment, CDATA section or PI may start in `block` from `start` (two
    `memchr`s for most)."""
    return (block.find(b"!", start) >= 0 or block.find(b"?", start) >= 0) and _MARKUP.search(
        block, start
    ) is not None


def unmarked(block: bytes) -> bytes:
    """`block` (which starts outside any markup) with its comments between programmes dropped
    and its CDATA sections written as text (see both)."""
    if b"!" not in block:  # (a memchr: both open with one; their two searches ~0.3 ms a block)
        return block
    if b"<!--" in block:
        block = comments_dropped(block)
    if b"<![CDATA[" in block:
        block = cdata_as_text(block)
    return block


# A CDATA section in an element's text, after its start tag or other text (never in a tag: a
# `<` cannot stand in an attribute value); the first `]]>` ends it, as it ends it for the parser
# (its text taken a run of other bytes at a time, not tried for the end at every byte: 2x)
_CDATA = re.compile(rb">([^<>]*+)<!\[CDATA\[((?:[^\]]++|\](?!\]>))*+)\]\]>")


def cdata_as_text(block: bytes) -> bytes:
    """`block` (which starts outside any markup) with each CDATA section written as the text it
    stands for, escaped: what the parser reads from it, without the markup that sent a whole
    block to the parser (a lean guide with its titles in CDATA: 4.6x a bare iterparse). Line
    breaks stay where they were; a section this does not take stays a section."""
    if b"<!--" in block or b"<?" in block:
        return block  # only CDATA here: no section opened inside a comment is one
    if block.rfind(b"]]>") < block.rfind(b"<![CDATA["):
        return block  # one left open: each try would look for its end to the block's end
    if b"\x00" in block:  # (no XML holds one: the parser's to refuse)
        return _CDATA.sub(_as_text, block)
    # As `sub` with `_as_text` would, in C: one split, the sections escaped together (joined
    # by a NUL, which none holds), one join; a call a section was 1.4x a guide without them
    parts = _CDATA.split(block)
    texts = b"\x00".join(parts[2::3])
    texts = texts.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")
    pieces = zip(parts[0::3], itertools.repeat(b">"), parts[1::3], texts.split(b"\x00"))
    return b"".join(itertools.chain.from_iterable(pieces)) + parts[-1]


def _as_text(match: re.Match[bytes]) -> bytes:
    text = match.group(2).replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")
    return b">" + match.group(1) + text


# A comment, its text free of `--` (the parser refuses that; so does this); taken only between
# two programmes (or before the block's first: a block begins after one)
_COMMENT = re.compile(rb"<!--([^-]*+(?:-[^-]++)*+)-->")
_LOOK_BACK = 256  # white space before a comment looked through for the programme's end


def comments_dropped(block: bytes) -> bytes:
    """`block` (which starts outside any markup) without the comments that stand between its
    programmes, their line breaks kept: the parser drops them (`remove_comments`), and one sent
    its whole block to the parser (a lean guide with a comment every 1,000 programmes: 3.5x a
    bare iterparse). A comment anywhere else stays."""
    return _COMMENT.sub(_between, block)


def _between(match: re.Match[bytes]) -> bytes:
    at = match.start()
    before = match.string[max(0, at - _LOOK_BACK) : at].rstrip(b" \t\n\r")
    if before.endswith(b"</programme>") or (not before and at <= _LOOK_BACK):
        return b"\n" * match.group(1).count(b"\n")
    return match.group(0)
