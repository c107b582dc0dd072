"""The floor under the ingest ratio: the least a CPython refresh does for the same outputs.

`python -m bench._floor PLAYLIST OUTDIR` reads the bench's playlist, keys its channels, buckets
them by group into 479-channel devices, and writes a JSON state and a guide of channel elements
per device: what `plextuner refresh` publishes for it, with none of what makes the refresh safe
to run on a provider's list. It knows the generator's attribute order (one regex for a whole
entry), checks nothing (no hostile input, no limits, no escaping unless needed), cleans no
names, keeps no numbers or placements between runs, writes no fingerprint, report or index, and
nothing atomically or durably. The bench times it over the 50k and 5k lists as a process, as it
times the baseline; the marginal cost per entry of this toy against the baseline's says how far
under the target's 4x any CPython implementation of the refresh can go.
"""

from __future__ import annotations

import gc
import json
import re
import sys
import time
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import msgspec

from bench.ingest import GROUPS  # the generator's groups, one bucket each as its config
from plextuner.config.models import BucketConfig

PER_DEVICE = BucketConfig.model_fields["max_channels"].default  # a device's channels (479)
_ENTRY = re.compile(
    r'#EXTINF:(-?\d+) tvg-id="([^"]*)" tvg-name="([^"]*)" tvg-logo="([^"]*)" '
    r'group-title="([^"]*)",([^\n]*)\n([^#\n][^\n]*)'
)
_NEEDS_ESCAPE = re.compile(r'[&<>"]')

Entry = tuple[str, str, str, str, str, str, str]  # duration, tvg-id, tvg-name, logo, group, ...


def refresh(playlist: Path, out: Path) -> int:
    """The toy refresh; the number of channels published."""
    entries: list[Entry] = _ENTRY.findall(playlist.read_text(encoding="utf-8"))
    channels: dict[str, tuple[Entry, list[str]]] = {}
    for e in entries:
        key = "id:" + e[1].casefold() if e[1] else "name:" + e[5].casefold()
        known = channels.get(key)
        if known is None:
            channels[key] = (e, [e[6]])
        else:
            known[1].append(e[6])
    rules = [(f"b{i}", re.compile(f"^{g}$")) for i, g in enumerate(GROUPS)]
    by_group: dict[str, str | None] = {}
    buckets: dict[str, list[tuple[str, tuple[Entry, list[str]]]]] = {}
    for key, channel in channels.items():
        group = channel[0][4]
        if group not in by_group:
            by_group[group] = next((name for name, rule in rules if rule.search(group)), None)
        bucket = by_group[group]
        if bucket is not None:
            buckets.setdefault(bucket, []).append((key, channel))
    encoder = msgspec.json.Encoder()
    states: list[bytes] = []
    published = 0
    for bucket, members in buckets.items():
        for start in range(0, len(members), PER_DEVICE):
            device = f"{bucket}-{start // PER_DEVICE}"
            rows = [
                (str(1000 + i), key, e[5].strip(), e[1], e[3], e[4], sources)
                for i, (key, (e, sources)) in enumerate(members[start : start + PER_DEVICE])
            ]
            published += len(rows)
            states.append(encoder.encode({"name": device, "entries": rows}))
            _guide(out / f"{device}.xml", rows)
    (out / "state.json").write_bytes(b"\n".join(states))
    return published


def _guide(path: Path, rows: list[tuple[str, str, str, str, str, str, list[str]]]) -> None:
    body = "".join(
        [
            f'<channel id="{r[0]}"><display-name>{r[2]}</display-name>'
            f'<icon src="{r[4]}"/></channel>\n'
            for r in rows
        ]
    )
    if _NEEDS_ESCAPE.search(body.replace('"', "")):  # rare: only then each value escaped
        body = "".join(
            [
                f'<channel id="{r[0]}"><display-name>{escape(r[2])}</display-name>'
                f"<icon src={quoteattr(r[4])}/></channel>\n"
                for r in rows
            ]
        )
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<tv>\n{body}</tv>\n', "utf-8")


def main(playlist: str, out: str) -> None:
    gc.disable()  # as the refresh: no collections over its acyclic objects
    start = time.perf_counter()
    channels = refresh(Path(playlist), Path(out))
    print(json.dumps({"wall": time.perf_counter() - start, "channels": channels}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
