"""JSON for the persisted dataclasses, derived from their fields and type hints.

A field added to `Channel`, `Source`, `LineupEntry`, `Device` or `ProviderState` is persisted and
loaded with no edit here: the codec for each class is built once from `dataclasses.fields` and
the type hints (enums by value, tuples, optionals, nested dataclasses), then reused, so a 50k
channel state costs about what hand-written code did. Fields equal to their default are left
out, so files stay small and an old file lacking a new field loads with its default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from enum import Enum
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from plextuner.errors import StateError

_T = TypeVar("_T")
Fn = Callable[[Any], Any]
_ABSENT = object()


def _identity(value: Any) -> Any:
    return value


def encode(obj: Any) -> Any:
    """JSON-ready data for a dataclass tree."""
    return _encoder(typing.cast(Any, type(obj)))(obj)


def decode(cls: type[_T], data: Any) -> _T:
    """A `cls` rebuilt from `encode`'s output; StateError naming the field when it does not fit."""
    try:
        return typing.cast(_T, _decoder(typing.cast(Any, cls), cls.__name__)(data))
    except (TypeError, ValueError, KeyError) as err:
        raise StateError(f"published state is malformed: {err}") from err


# --- encoders ------------------------------------------------------------------------------------


@cache
def _encoder(tp: Any) -> Fn:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        enc = _encoder(inner)
        return lambda v: None if v is None else enc(v)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_encoder(tp)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return lambda v: v.value
    if origin in (list, tuple):
        item = _encoder(args[0]) if args else _identity
        if item is _identity:
            return list
        return lambda v: [item(x) for x in v]
    if origin is dict:
        value = _encoder(args[1])
        return lambda v: {str(k): value(x) for k, x in v.items()}
    return _identity


def _dataclass_encoder(tp: type) -> Fn:
    hints = get_type_hints(tp)
    plan = [
        (f.name, _default(f), _encoder(hints[f.name])) for f in dataclasses.fields(tp) if f.init
    ]

    def enc(obj: Any) -> dict[str, Any]:
        out = {}
        for name, default, field_enc in plan:
            value = getattr(obj, name)
            if value is not default and value != default:
                out[name] = field_enc(value)
        return out

    return enc


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _ABSENT


# --- decoders ------------------------------------------------------------------------------------


@cache
def _decoder(tp: Any, where: str) -> Fn:
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return _identity
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        dec = _decoder(inner, where)
        return lambda v: None if v is None else dec(v)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_decoder(tp, where)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp
    if origin in (list, tuple):
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            item = _decoder(args[0], f"{where}[]")
            return lambda v: origin(item(x) for x in _expect(v, list, where))
        parts = [_decoder(a, f"{where}[]") for a in args]
        return lambda v: tuple(d(x) for d, x in zip(parts, _expect(v, list, where), strict=True))
    if origin is dict:
        value = _decoder(args[1], f"{where}.*")
        return lambda v: {str(k): value(x) for k, x in _expect(v, dict, where).items()}
    return _scalar(tp, where)


def _dataclass_decoder(tp: type, where: str) -> Fn:
    hints = get_type_hints(tp)
    # Plain str/int fields are checked inline (no call per field): the bulk of a 50k state.
    plan = [
        (
            f.name,
            hints[f.name] if hints[f.name] in (str, int) else None,
            _decoder(hints[f.name], f"{where}.{f.name}"),
        )
        for f in dataclasses.fields(tp)
        if f.init
    ]

    def dec(data: Any) -> Any:
        raw = _expect(data, dict, where)
        kwargs = {}
        for name, plain, field_dec in plan:
            if name not in raw:
                continue
            value = raw[name]
            if plain is not None and type(value) is plain:
                kwargs[name] = value
            else:
                kwargs[name] = field_dec(value)
        return tp(**kwargs)

    return dec


def _scalar(tp: Any, where: str) -> Fn:
    name = getattr(tp, "__name__", str(tp))

    def check(v: Any) -> Any:
        if tp is float and isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, tp) and (tp is bool or not isinstance(v, bool)):
            return v
        raise TypeError(f"{where}: expected {name}, got {type(v).__name__}")

    return check


def _expect(data: Any, kind: type[_T], where: str) -> _T:
    if not isinstance(data, kind):
        raise TypeError(f"{where}: expected {kind.__name__}, got {type(data).__name__}")
    return data
