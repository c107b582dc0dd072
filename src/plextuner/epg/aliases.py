"""The aliases file: names the matcher should treat as one channel.

One channel per line, its names joined by ` = `; `#` starts a comment:

    BBC One = BBC 1 = BBC1 London
    Das Erste = ARD
"""

from __future__ import annotations

from pathlib import Path

from plextuner.errors import EpgError

MAX_BYTES = 4 * 1024 * 1024


def parse_aliases(text: str) -> list[list[str]]:
    groups: list[list[str]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        names = [n.strip() for n in line.split(" = ") if n.strip()]
        if len(names) > 1:
            groups.append(names)
    return groups


def load_aliases(path: Path) -> list[list[str]]:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as err:
        raise EpgError(f"aliases file {path}: {err.strerror or err}") from None
    if len(data) > MAX_BYTES:
        raise EpgError(f"aliases file {path}: larger than {MAX_BYTES} bytes")
    return parse_aliases(data.decode("utf-8", errors="replace"))
