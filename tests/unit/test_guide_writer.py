"""Placeholders rendered from a template are byte-identical to element-built ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from plextuner import placeholders as placeholders_module
from plextuner.buckets.models import Device
from plextuner.epg.bodies import BodyRenderer
from plextuner.epg.model import Programme
from plextuner.epg.writer import (
    Placeholders,
    channel_xml,
    placeholders,
    programme_xml,
    write_guide,
)
from plextuner.epg.xmltext import programme_body
from plextuner.ingest.models import Channel
from plextuner.placeholders import fmt_time
from plextuner.state.aggregate import read_guide
from plextuner.xmlescape import _NOT_XML, NEEDS_ESCAPE, xml_attr, xml_text
from tests.unit.test_epg import WINDOW, entry


def device(name: str, first: int) -> Device:
    d = Device(name, name, name, "12345678", 5004, 2)
    d.entries = [entry(str(first + i), f'Kids <{i}> & "Co"') for i in range(3)]
    return d


@pytest.mark.parametrize(
    ("names", "block"),
    [('Kids <{}> & "Co"', 3600), ("News {} HD", 1800)],  # escaped; plain (the fast path)
)
def test_template_equals_elements(
    tmp_path: Path, names: str, block: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(placeholders_module, "NOTE_FROM", 0)  # noted however few
    d = device("a", 100)
    d.entries = [entry(str(100 + i), names.format(i)) for i in range(3)]
    lo, hi = WINDOW
    built = {e.number: placeholders(e.channel.name, lo, hi, block) for e in d.entries}
    templ = {e.number: Placeholders(e.channel.name, lo, hi, block) for e in d.entries}
    n1 = write_guide(tmp_path / "1.xml", d, built, {}, generated=lo)  # type: ignore[arg-type]
    n2 = write_guide(tmp_path / "2.xml", d, templ, {}, generated=lo)  # type: ignore[arg-type]
    assert n1 == n2 > 0
    assert (tmp_path / "1.xml").read_bytes() == read_guide(tmp_path / "2.xml")
    assert b"<programme" not in (tmp_path / "2.xml").read_bytes()  # noted, rendered when read
    titles = [t.text for t in etree.fromstring(read_guide(tmp_path / "2.xml")).iterfind(".//title")]
    assert titles[0] == names.format(0)


@given(
    st.text(st.one_of(st.sampled_from("&<>\"'\t\n\r\x01\ufffe é"), st.characters()), max_size=16)
)
@settings(max_examples=400, deadline=None)
def test_text_and_attributes_escaped_as_lxml_writes_them(value: str) -> None:
    """Escaped or not (the fast path: nothing to escape), a value is written as lxml writes it,
    what XML cannot carry left out."""
    kept = _NOT_XML.sub("", value)
    element = etree.Element("e", {"a": kept})
    element.text = kept or None
    body = xml_text(value)
    expected = f"<e a={xml_attr(value)}>{body}</e>" if body else f"<e a={xml_attr(value)}/>"
    assert etree.tostring(element, encoding="unicode") == expected


def _lxml_channel(number: str, channel: Channel, icon: str) -> str:
    ch = etree.Element("channel", {"id": number + ".plextuner"})
    for name in dict.fromkeys(n for n in (channel.name, number, channel.tvg_id) if n):
        etree.SubElement(ch, "display-name").text = name
    if channel.logo or icon:
        etree.SubElement(ch, "icon", {"src": channel.logo or icon})
    return etree.tostring(ch, encoding="unicode")


_XML_CHARS = st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\ufffe\uffff")
_HOSTILE = st.text(
    st.one_of(st.sampled_from("&<>\"'\t\n\r]]>&amp; é€😀"), _XML_CHARS.filter(lambda c: c >= " ")),
    max_size=12,
)


_NUMBERS = st.sampled_from(["1000", "7", ""])  # names may be a number: display-names repeat


@given(
    st.one_of(_HOSTILE, _NUMBERS),
    st.one_of(_HOSTILE, _NUMBERS),
    _HOSTILE,
    _HOSTILE,
    st.sampled_from(["1000", "7"]),
)
@settings(max_examples=600, deadline=None)
def test_channel_string_equals_the_lxml_element(
    name: str, tvg: str, logo: str, icon: str, number: str
) -> None:
    """The string-built `<channel>` is byte for byte what lxml writes for the same values."""
    channel = Channel("k", name, tvg, "G", "p", logo=logo)
    assert channel_xml(number, channel, icon) == _lxml_channel(number, channel, icon)


_PLAIN = st.text(st.sampled_from("ab1 ./:-"), max_size=6)  # the common case: nothing to escape


@given(
    st.lists(
        st.tuples(
            st.one_of(_PLAIN, _NUMBERS),
            st.one_of(_PLAIN, _NUMBERS),
            _PLAIN,
            st.one_of(_PLAIN, st.none()),
            st.sampled_from(["1000", "7", "12.1"]),
        ),
        max_size=6,
    ),
    st.booleans(),
    st.sampled_from(["xmltv", "number"]),
    st.one_of(st.none(), _HOSTILE),
)
@settings(max_examples=400, deadline=None)
def test_a_devices_channel_block_equals_its_channels_one_by_one(
    rows: list[tuple[str, str, str, str | None, str]],
    with_icons: bool,
    id_style: str,
    hostile: str | None,
) -> None:
    """`channels_xml` (one escape check for the device, the common case spelled out) writes
    what `channel_xml` writes for each entry, escaped values or not."""
    from plextuner.buckets.models import LineupEntry
    from plextuner.epg.writer import channels_xml

    d = Device("d", "d", "D", "1", 1, 1)
    icons: dict[str, str] = {}
    for i, (name, tvg, logo, icon, number) in enumerate(rows):
        shown = hostile if hostile is not None and i == 0 else name
        d.entries.append(LineupEntry(number, Channel(f"k{i}", shown, tvg, "G", "p", logo=logo)))
        if icon is not None and with_icons:
            icons[number] = icon
    one_by_one = "".join(
        channel_xml(e.number, e.channel, icons.get(e.number, ""), id_style) for e in d.entries
    )
    assert channels_xml(d, icons, id_style) == one_by_one.encode()


@pytest.mark.parametrize(
    "odd", ["\ufffe", "\uffff", "\ud800", "\x01", "\t", "\n", "&", ">", '"', "<"]
)
@pytest.mark.parametrize("where", ["name", "tvg_id", "logo"])
def test_one_odd_character_anywhere_sends_the_device_down_the_escaped_path(
    odd: str, where: str
) -> None:
    """The fast path counts the markup's own special characters: a single one more in any value
    (or a character XML cannot carry, which it drops) and the device is written escaped."""
    from plextuner.buckets.models import LineupEntry
    from plextuner.epg.writer import channels_xml

    d = Device("d", "d", "D", "1", 1, 1)
    for i in range(3):
        fields = {"name": f"Name {i}", "tvg_id": f"id{i}.tv", "logo": f"http://l/{i}.png"}
        if i == 1:
            fields[where] = fields[where][:2] + odd + fields[where][2:]
        channel = Channel(f"k{i}", fields["name"], fields["tvg_id"], "G", "p", logo=fields["logo"])
        d.entries.append(LineupEntry(str(10 + i), channel))
    one_by_one = "".join(channel_xml(e.number, e.channel, "") for e in d.entries)
    written = channels_xml(d, {})
    assert written == one_by_one.encode()
    etree.fromstring(b"<tv>" + written + b"</tv>")


def test_text_xml_cannot_carry_is_dropped() -> None:
    """A character XML 1.0 forbids (lxml would refuse the whole guide) is left out."""
    channel = Channel("k", "A\ufffeB\x01C", "", "G", "p")
    xml = channel_xml("7", channel, "")
    assert "<display-name>ABC</display-name>" in xml
    etree.fromstring(xml)


def test_the_escape_check_covers_every_character_escaped_or_dropped() -> None:
    """The fast path's one-class check flags exactly the characters an attribute escapes or XML
    cannot carry, over every code point (else a value would be written unescaped)."""
    special = re.compile('[&<>"\t\n\r]|' + _NOT_XML.pattern)
    for point in range(0x110000):
        char = chr(point)
        assert (NEEDS_ESCAPE.search(char) is None) == (special.search(char) is None), hex(point)


def test_what_xml_cannot_carry_is_its_char_production_left_out() -> None:
    """XML 1.0's Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]."""
    for point in range(0x110000):
        allowed = (
            point in (0x9, 0xA, 0xD)
            or 0x20 <= point <= 0xD7FF
            or 0xE000 <= point <= 0xFFFD
            or 0x10000 <= point <= 0x10FFFF
        )
        assert (_NOT_XML.search(chr(point)) is None) == allowed, hex(point)


def _lxml_programme(cid: str, p: Programme, stop: float) -> str:
    """The element the writer built before it wrote strings: the reference."""
    el = etree.Element(
        "programme", {"start": fmt_time(p.start), "stop": fmt_time(stop), "channel": cid}
    )
    etree.SubElement(el, "title").text = p.title or "Untitled"
    if p.sub_title:
        etree.SubElement(el, "sub-title").text = p.sub_title
    if p.desc:
        etree.SubElement(el, "desc").text = p.desc
    if p.date:
        etree.SubElement(el, "date").text = p.date
    for cat in p.categories:
        etree.SubElement(el, "category").text = cat
    if p.icon:
        etree.SubElement(el, "icon", {"src": p.icon})
    for system, value in p.episode_nums:
        etree.SubElement(el, "episode-num", {"system": system}).text = value
    if p.previously_shown:
        etree.SubElement(el, "previously-shown")
    if p.new:
        etree.SubElement(el, "new")
    return etree.tostring(el, encoding="unicode")


_PLAIN = st.text(st.sampled_from("abc XYZ019-:.é€"), max_size=8)
_VALUE = st.one_of(_PLAIN, _HOSTILE)
# Only `&<>"` among the special characters: the one-pass escape's case.
_MARKUP = st.text(st.sampled_from("ab &<>\"'é€😀;"), max_size=12)


def _programmes(value: st.SearchStrategy[str]) -> st.SearchStrategy[Programme]:
    return st.builds(
        Programme,
        channel=st.just("x"),
        start=st.integers(0, 2**31).map(float),
        stop=st.none(),
        title=value,
        sub_title=value,
        desc=value,
        categories=st.lists(value, max_size=3).map(tuple),
        episode_nums=st.lists(st.tuples(value, value), max_size=2).map(tuple),
        icon=value,
        date=value,
        new=st.booleans(),
        previously_shown=st.booleans(),
    )


@given(_programmes(_VALUE), st.sampled_from(["1000.plextuner", "7", "a&b"]))
@settings(max_examples=400, deadline=None)
def test_programme_string_equals_the_lxml_element(p: Programme, cid: str) -> None:
    """The string-built `<programme>` is byte for byte what lxml writes for the same values,
    plain (the fast path) or hostile."""
    stop = p.start + 1800
    assert programme_xml(cid, p, stop) == _lxml_programme(cid, p, stop)


@given(_programmes(_MARKUP), st.sampled_from(["1000.plextuner", 'a&"b']))
@settings(max_examples=300, deadline=None)
def test_programme_string_with_only_markup_characters_equals_the_lxml_element(
    p: Programme, cid: str
) -> None:
    """Values whose only special characters are `&<>"` (a description with `&`: most of a real
    guide) take the one-pass escape; still byte for byte what lxml writes."""
    stop = p.start + 1800
    assert programme_xml(cid, p, stop) == _lxml_programme(cid, p, stop)


@given(st.lists(_programmes(st.one_of(_VALUE, _MARKUP)), min_size=1, max_size=6))
@settings(max_examples=300, deadline=None)
def test_pieced_bodies_equal_the_programme_string(programmes: list[Programme]) -> None:
    """The spill's renderer, which remembers the pieces it rendered (and escapes each value
    alone), writes what `programme_body` writes, the first time and from its memory: against
    the lxml element through the test above. The list repeats values across programmes."""
    renderer = BodyRenderer()
    for p in [*programmes, *programmes]:
        assert renderer.render(p) == programme_body(p)


def test_the_fingerprint_follows_every_field_the_guide_shows() -> None:
    """A guide is skipped when its fingerprint is unchanged: one taken over the channel elements
    as written must still move with each number, name, tvg-id, logo, icon and placeholder."""
    from msgspec.structs import replace

    from plextuner.epg.fingerprint import guide_fingerprint
    from plextuner.epg.writer import channels_xml

    lo, hi = WINDOW

    def made(d: Device, icons: dict[str, str], title: str = "T") -> str:
        filler = {e.number: Placeholders(title, lo, hi, 3600) for e in d.entries}
        return guide_fingerprint(d, filler, channels_xml(d, icons), "ctx")  # type: ignore[arg-type]

    base = device("a", 100)
    first = made(base, {})
    assert made(device("a", 100), {}) == first
    seen = {first}
    for change in ("number", "name", "tvg_id", "logo", "icon", "title"):
        d = device("a", 100)
        e = d.entries[1]
        icons: dict[str, str] = {}
        if change == "number":
            e.number = "999"
        elif change == "icon":
            icons = {e.number: "http://i.invalid/x.png"}
        elif change != "title":
            e.channel = replace(e.channel, **{change: "changed"})
        got = made(d, icons, "U" if change == "title" else "T")
        assert got not in seen, change
        seen.add(got)


@pytest.mark.parametrize("mixed", [False, True])
def test_the_fingerprint_follows_the_placeholder_window(mixed: bool) -> None:
    """Placeholders' fingerprint moves with the slots they fill and their length, not with a
    window that slides within its first slot (the clock); every entry with placeholders of one
    window (the shortcut) or some entry without any (the spans), alike."""
    from plextuner.epg.fingerprint import guide_fingerprint
    from plextuner.epg.writer import channels_xml

    lo = 1_800_000_000 - 1_800_000_000 % 3600 + 600  # ten minutes into a slot
    hi = lo + 48 * 3600
    d = device("a", 100)
    channels = channels_xml(d, {})

    def made(start: float, end: float, block: float) -> str:
        filler = {e.number: Placeholders(e.channel.name, start, end, block) for e in d.entries}
        if mixed:
            del filler[d.entries[1].number]
        return guide_fingerprint(d, filler, channels, "ctx")  # type: ignore[arg-type]

    first = made(lo, hi, 3600)
    assert made(lo + 60, hi + 60, 3600) == first  # the same slots
    changed = {made(lo, hi + 3600, 3600), made(lo + 3600, hi + 3600, 3600), made(lo, hi, 1800)}
    assert first not in changed and len(changed) == 3
