"""Package names loaded with their module on first use (PEP 562): a process that needs one
model of a package does not import the rest of it (see plextuner.buckets, plextuner.ingest)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def names_of(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """The package's `__getattr__`: `where` maps each name to its submodule; a name, once
    loaded, is set on the package (later lookups do not come here)."""

    def load(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return load
