"""Writes docs/configuration.md from the settings models (every key, type, default, env name).

Run `python scripts/gen_config_docs.py` after changing config/models.py; a test fails when stale.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from plextuner.config import ENV_PREFIX, Settings

HEADER = """# Configuration reference

Generated from `src/plextuner/config/models.py` by `scripts/gen_config_docs.py`; do not edit.

Precedence: CLI flags > environment > config file (YAML or TOML, by extension) > defaults.
Environment names take the `PLEX_TUNER_` prefix with nested keys joined by `__`
(`PLEX_TUNER_EPG__DAYS=5`). Lists (`providers`, `buckets`) can be given as JSON in one variable
(`PLEX_TUNER_BUCKETS='[{"name":"news"}]'`). Every secret key also has a `<key>_file` twin reading
the value from a file, as Kubernetes mounts Secrets. Durations accept seconds or
`30s`/`30m`/`6h`/`1d`.
Unknown keys and invalid values are reported with their key path; the process exits 2.

Single-provider shortcuts (kept from the tool this replaces): `PLEX_TUNER_M3U_URL` (or `…_FILE`),
`PLEX_TUNER_PROVIDER_URL` / `PLEX_TUNER_PROVIDER_USER` / `PLEX_TUNER_PROVIDER_PASS` (each also as
`…_FILE`), `PLEX_TUNER_XMLTV_URL`, `PLEX_TUNER_POSTVALIDATE_WORKERS`. `PLEX_TUNER_CONFIG` names the
config file when `--config` is not given.

`plextuner check-config` prints the effective configuration with every secret redacted.
"""


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation))
    if origin is list:
        return f"list[{_type_name(get_args(annotation)[0])}]"
    if origin is not None and getattr(origin, "__name__", "") == "Literal":
        return " or ".join(f"`{a}`" for a in get_args(annotation))
    if str(origin) == "typing.Literal":
        return " or ".join(f"`{a}`" for a in get_args(annotation))
    if origin is not None and str(origin).endswith("Annotated"):
        return _type_name(get_args(annotation)[0])
    name = getattr(annotation, "__name__", str(annotation))
    return {"NoneType": "null", "SecretStr": "secret", "float": "number"}.get(name, name)


def _default(field: Any) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
    elif field.default_factory is not None:
        value = field.default_factory()
    else:
        return "required"
    if isinstance(value, BaseModel):
        return "(section)"
    return "`" + (str(value) if value is not None else "null") + "`"


def _rows(model: type[BaseModel], prefix: str, env: str, out: list[str]) -> list[type[BaseModel]]:
    nested = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        annotation = field.annotation
        sub = next(
            (
                a
                for a in (annotation, *get_args(annotation))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            None,
        )
        env_name = f"{env}{key.upper()}" if env else "—"
        desc = (field.description or "").replace("|", "\\|")
        if sub is not None and get_origin(annotation) is not list:
            env_cell = f"`{env_name}__…`" if env else "—"
            out.append(
                f"| `{prefix}{key}` | section | | {env_cell} | {desc or sub.__doc__ or ''} |"
            )
            nested.append(sub)
            _rows(sub, f"{prefix}{key}.", f"{env_name}__" if env else "", out)
            continue
        if sub is not None:
            out.append(
                f"| `{prefix}{key}` | list of {sub.__name__} | `[]` | "
                f"`{env_name}` (JSON) | {desc} |"
            )
            _rows(sub, f"{prefix}{key}[].", "", out)
            continue
        out.append(
            f"| `{prefix}{key}` | {_type_name(annotation)} | {_default(field)} | "
            f"{'`' + env_name + '`' if env else '—'} | {desc} |"
        )
    return nested


def render() -> str:
    rows = ["| key | type | default | environment | meaning |", "|---|---|---|---|---|"]
    _rows(Settings, "", ENV_PREFIX, rows)
    return HEADER + "\n" + "\n".join(rows) + "\n"


def main() -> int:
    target = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
