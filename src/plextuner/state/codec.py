"""JSON for the persisted models, derived from their fields and type hints by msgspec.

A field added to `Channel`, `Source`, `LineupEntry`, `Device` or `ProviderState` is persisted and
loaded with no edit here: msgspec reads the models' fields and type hints (Structs and
dataclasses, enums by value, tuples, optionals, nesting) and encodes/decodes in C, checking
every type on the way in. An old file lacking a new field loads with its default. Measured on a
50k-channel state: encode 0.10 s and decode 0.16 s, against 0.7 s and 0.9 s for the Python codec
derived the same way that this replaced (and 0.3 s for `json.loads` alone, before building any
object).
"""

from __future__ import annotations

import re
import typing
from functools import cache
from typing import Any, TypeVar

import msgspec

from plextuner.errors import StateError

_T = TypeVar("_T")
_ENCODER = msgspec.json.Encoder()
_PATH = re.compile(r"`\$")


def encode(obj: Any) -> Any:
    """JSON-ready data (dicts, lists, scalars) for a tree of models: exactly what the file holds
    (`to_builtins` would keep tuples as tuples)."""
    return msgspec.json.decode(_ENCODER.encode(obj))


def encode_json(obj: Any) -> bytes:
    """The JSON text of a dataclass tree, UTF-8, compact."""
    return _ENCODER.encode(obj)


def decode(cls: type[_T], data: Any) -> _T:
    """A `cls` rebuilt from `encode`'s output; StateError naming the field when it does not fit."""
    try:
        return msgspec.convert(data, cls)
    except msgspec.ValidationError as err:
        raise StateError(f"published state is malformed: {_where(cls, err)}") from err


def decode_json(cls: type[_T], raw: bytes) -> _T:
    """A `cls` read from `encode_json`'s output (one pass, no intermediate dicts)."""
    try:
        return typing.cast(_T, _decoder(typing.cast(Any, cls)).decode(raw))
    except msgspec.ValidationError as err:
        raise StateError(f"published state is malformed: {_where(cls, err)}") from err
    except msgspec.DecodeError as err:
        raise StateError(f"published state is corrupt: {err}") from err


@cache
def _decoder(cls: type[Any]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(cls)


def _where(cls: type[Any], err: msgspec.ValidationError) -> str:
    """msgspec says "… - at `$.entries[0].port`"; name the class instead of `$`."""
    return _PATH.sub(f"`{cls.__name__}", str(err))
