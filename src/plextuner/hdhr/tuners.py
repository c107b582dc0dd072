"""Tuner state as HDHomeRun clients read it: `/status.json`, `/tuners.html`, TCP `/tunerN/*`.

Built from the stream engine's live sessions on each request (a session knows its device,
tuner, channel, client and byte count).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from plextuner.buckets.models import Device
from plextuner.hdhr.control import TunerView


def device_tuners(device: Device, sessions: Iterable[Mapping[str, Any]]) -> list[TunerView]:
    """Every tuner of `device`, with the session that holds it (if any)."""
    by_tuner = {int(s.get("tuner", -1)): s for s in sessions if s.get("device") == device.name}
    out = []
    for index in range(device.tuners):
        s = by_tuner.get(index)
        if s is None:
            out.append(TunerView(device.name, index))
        else:
            out.append(
                TunerView(
                    device.name,
                    index,
                    str(s.get("channel")),
                    str(s.get("name", "")),
                    str(s.get("client", "")),
                    int(s.get("bps", 0)),
                )
            )
    return out


def all_tuners(devices: Iterable[Device], sessions: Sequence[Mapping[str, Any]]) -> list[TunerView]:
    """The tuners of every device in device order (the TCP control numbering)."""
    return [t for d in devices for t in device_tuners(d, sessions)]


def status_json(tuners: list[TunerView]) -> list[dict[str, object]]:
    """A device's `/status.json`: `{"Resource": "tunerN"}` when idle; a tuned tuner adds the
    channel, signal (always perfect: it is IP), its rate and the client it streams to."""
    out: list[dict[str, object]] = []
    for t in tuners:
        item: dict[str, object] = {"Resource": f"tuner{t.index}"}
        if t.channel is not None:
            item |= {
                "VctNumber": t.channel,
                "VctName": t.name,
                "Frequency": 0,
                "SignalStrengthPercent": 100,
                "SignalQualityPercent": 100,
                "SymbolQualityPercent": 100,
                "NetworkRate": t.bps,
                "TargetIP": t.client,
            }
        out.append(item)
    return out


def tuners_html(device: Device, tuners: list[TunerView]) -> str:
    """The older firmware's `/tuners.html`, still scraped by some dashboards."""
    rows = "".join(
        f"<tr><td>Tuner {t.index} Channel</td><td>"
        + ("not in use" if t.channel is None else escape(f"{t.channel} {t.name}"))
        + "</td></tr>"
        for t in tuners
    )
    return (
        "<!DOCTYPE html><html><head><title>Tuner Status</title></head><body>"
        f"<h1>{escape(device.friendly_name)}</h1><table>{rows}</table></body></html>\n"
    )
