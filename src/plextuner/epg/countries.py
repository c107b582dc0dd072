"""Countries named in playlist groups, channel names and guide ids, as ISO 3166 alpha-2 codes.

A country is the strongest tie-breaker guide matching has: "Nickelodeon" in a UK group must never
take the Australian feed. Codes and names come from pycountry (ISO 3166); IPTV spellings that ISO
does not use (`UK`, `USA`, `LATAM`-free short names) are added here.
"""

from __future__ import annotations

import functools
import re

from plextuner.ingest.models import fold

# IPTV and guide-site spellings that are not ISO codes or names.
_ALIASES = {
    "uk": "gb",
    "usa": "us",
    "america": "us",
    "united states of america": "us",
    "great britain": "gb",
    "britain": "gb",
    "holland": "nl",
    "turkiye": "tr",
    "russia": "ru",
    "korea": "kr",
    "south korea": "kr",
    "iran": "ir",
    "vietnam": "vn",
    "czech republic": "cz",
    "czechia": "cz",
    "uae": "ae",
    "ksa": "sa",
    "ger": "de",
    "deutschland": "de",
    "espana": "es",
    "italia": "it",
    "brasil": "br",
    "mexico": "mx",
    "polska": "pl",
    "nederland": "nl",
    "sverige": "se",
    "norge": "no",
    "danmark": "dk",
    "suomi": "fi",
    "schweiz": "ch",
    "suisse": "ch",
    "osterreich": "at",
    "belgique": "be",
    "belgie": "be",
    "ned": "nl",
    "por": "pt",
    "sui": "ch",
    "den": "dk",
    "gre": "gr",
    "cro": "hr",
    "ksv": "xk",
    "kosovo": "xk",
    "ex yu": "",
    "exyu": "",
}
# Two- and three-letter words that are codes but far more often something else in a channel name.
_NOT_CODES = frozenset(
    {"tv", "hd", "sd", "fm", "am", "my", "go", "mx1", "max", "one", "fox", "bbc"}
)


@functools.cache
def _tables() -> tuple[dict[str, str], dict[str, str]]:
    import pycountry  # at the first country asked (~2 ms): a refresh without a guide asks none

    codes: dict[str, str] = {}
    names: dict[str, str] = {}
    for c in pycountry.countries:
        a2 = c.alpha_2.lower()
        codes[a2] = a2
        codes[c.alpha_3.lower()] = a2
        for attr in ("name", "common_name"):
            value = getattr(c, attr, None)
            if value:
                names[fold(value)] = a2
    for alias, a2 in _ALIASES.items():
        (codes if len(alias) <= 3 and " " not in alias else names)[alias] = a2
    for word in _NOT_CODES:
        codes.pop(word, None)
    return codes, names


def country_of_code(code: str) -> str | None:
    """`UK`, `GB`, `GBR`, `usa` → ISO alpha-2; None for anything else (or a blank alias)."""
    return _tables()[0].get(code.strip().casefold()) or None


def country_of_name(name: str) -> str | None:
    return _tables()[1].get(fold(name).strip()) or None


_LEAD_CODE = re.compile(r"^\W*([A-Za-z]{2,3})(?:\W|$)")


@functools.lru_cache(maxsize=4096)  # a playlist has few distinct groups
def country_of_group(group: str) -> str | None:
    """A group title's country: a leading code (`UK | Sports`, `|DE| Film`, `USA Movies`) or a
    country's name anywhere (`United Kingdom - News`, `Sports (Germany)`)."""
    if not group:
        return None
    m = _LEAD_CODE.match(group)
    if m and (found := country_of_code(m.group(1))):
        return found
    folded = fold(group)
    words = re.findall(r"[a-z]+", folded)
    for size in (4, 3, 2, 1):  # longest names first: "united states of america" before "america"
        for i in range(len(words) - size + 1):
            found = country_of_name(" ".join(words[i : i + size]))
            if found:
                return found
    return None
