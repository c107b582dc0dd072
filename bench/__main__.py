"""Run every benchmark module in bench/ (or those named on the command line)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def main(argv: list[str]) -> int:
    names = argv or sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_")
    )
    failed = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        entry = getattr(module, "main", None)
        if entry is None:
            continue
        print(f"\n=== bench.{name} ===", flush=True)
        started = time.monotonic()
        try:
            rc = entry()
        except Exception as err:  # noqa: BLE001 - one broken benchmark must not hide the others
            print(f"bench.{name} crashed: {type(err).__name__}: {err}")
            rc = 1
        print(f"=== bench.{name} done in {time.monotonic() - started:.1f}s (rc={rc or 0}) ===")
        failed += 1 if rc else 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
