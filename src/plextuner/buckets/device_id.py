"""HDHomeRun DeviceIDs: valid check digit (libhdhomerun), stable per bucket name."""

from __future__ import annotations

import hashlib

_T = (0xA, 0x5, 0xF, 0x6, 0x7, 0xC, 0x1, 0xB, 0x9, 0x2, 0x8, 0xD, 0x4, 0x3, 0xE, 0x0)


def _checksum(nibbles: list[int]) -> int:
    n7, n6, n5, n4, n3, n2, n1, n0 = nibbles
    return _T[n7] ^ n6 ^ _T[n5] ^ n4 ^ _T[n3] ^ n2 ^ _T[n1] ^ n0


def is_valid_device_id(device_id: str | int) -> bool:
    value = int(device_id, 16) if isinstance(device_id, str) else device_id
    if value in (0, 0xFFFFFFFF):
        return False
    nibbles = [(value >> shift) & 0xF for shift in range(28, -1, -4)]
    return _checksum(nibbles) == 0


def device_id_for(name: str, salt: int = 0) -> str:
    """`15xxxxxC`: prefix 0x15 avoids the legacy ranges; 20 bits of hash; computed check digit."""
    digest = hashlib.sha256(f"plextuner:{name}:{salt}".encode()).digest()
    body = int.from_bytes(digest[:4], "big") & 0xFFFFF
    value = (0x15 << 24) | (body << 4)
    nibbles = [(value >> shift) & 0xF for shift in range(28, -1, -4)]
    value |= _checksum(nibbles)
    return f"{value:08X}"


def device_ids_for(names: list[str]) -> dict[str, str]:
    """Distinct IDs for all names (a rare hash collision takes the next salt)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        salt = 0
        did = device_id_for(name)
        while did in taken:
            salt += 1
            did = device_id_for(name, salt)
        taken.add(did)
        out[name] = did
    return out
