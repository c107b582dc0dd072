"""A guide as XUI (the Xtream UI panels' successor) writes its xmltv cron file: read from its
PHP (`epg_*.xml`, what its xmltv.php serves): an element a line, indented by tabs; the
programmes a channel at a time (its `epg_data` rows by channel); `start_timestamp` and
`stop_timestamp` between the times and the channel; a space before the start tag's `>`;
htmlspecialchars with ENT_XML1 | ENT_QUOTES (`&apos;`, `&quot;`); an empty description for a
programme without one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

BYTES_A_PROGRAMME = 260  # about, to size the file


def generate_xui(path: Path, megabytes: int, channels: int, minutes: int) -> None:
    """`channels` channels, a programme every `minutes` from an hour ago, about `megabytes`
    MB; one channel in seven without descriptions."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    fmt = "%Y%m%d%H%M%S +0000"
    slots = megabytes * 1024 * 1024 // channels // BYTES_A_PROGRAMME
    times = []
    for slot in range(slots):
        t0 = start + timedelta(minutes=minutes * slot)
        t1 = t0 + timedelta(minutes=minutes)
        stamps = f'start_timestamp="{int(t0.timestamp())}" stop_timestamp="{int(t1.timestamp())}"'
        times.append(f'start="{t0.strftime(fmt)}" stop="{t1.strftime(fmt)}" {stamps}')
    with path.open("w", encoding="utf-8") as fh:
        fh.write(
            '<?xml version="1.0" encoding="utf-8" ?><!DOCTYPE tv SYSTEM "xmltv.dtd">\n'
            '<tv generator-info-name="panel">\n'
        )
        for c in range(channels):
            fh.write(
                f'\t<channel id="ch{c}.tv">\n\t\t<display-name>Channel {c}</display-name>\n'
                f'\t\t<icon src="http://i.invalid/{c}.png" />\n\t</channel>\n'
            )
        for c in range(channels):
            show = "Show" if c % 5 else "Don&apos;t Miss"
            fh.write(
                "".join(
                    f'\t<programme {times[slot]} channel="ch{c}.tv" >\n'
                    f"\t\t<title>{show} {slot % 50}</title>\n"
                    + (
                        "\t\t<desc></desc>\n"
                        if c % 7 == 0
                        else f"\t\t<desc>Channel {c}: the &quot;best&quot; of {slot} &amp; more"
                        ", a description long enough to look real.</desc>\n"
                    )
                    + "\t</programme>\n"
                    for slot in range(slots)
                )
            )
        fh.write("</tv>")
