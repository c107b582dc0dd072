"""The `plextuner` command. Only this module exits; everything below raises."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from plextuner import __version__, _startup  # noqa: F401 - _startup: before pydantic, see there
from plextuner.config import Settings, load_settings, redacted_dump, secret_values
from plextuner.errors import ConfigError, NothingPublishedError, PlexTunerError
from plextuner.logging import configure_logging
from plextuner.redact import SECRETS

EXIT_OK, EXIT_FAIL, EXIT_CONFIG = 0, 1, 2  # 3 (published, guard held) comes from RefreshOutcome
EXIT_PIPE = 128 + 13  # what a shell reports for a command SIGPIPE ended (`plextuner lineup | head`)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plextuner",
        description="IPTV providers presented to Plex as HDHomeRun network tuners.",
    )
    parser.add_argument("--version", action="version", version=f"plextuner {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--config", type=Path, help="YAML or TOML file [$PLEX_TUNER_CONFIG]")
        return p

    cmd("serve", "run the daemon: HTTP devices, UDP discovery, refresh loop")
    demo = sub.add_parser(
        "demo",
        help="run the daemon on the built-in demo provider",
        description="run the daemon on the built-in demo provider",
    )
    demo.add_argument("--port", type=int, default=None, help="first device port [5004]")
    demo.add_argument("--data-dir", type=Path, default=None, help="state dir [temporary]")
    cmd("refresh", "one pipeline pass: ingest, buckets, guide, probes, publish")
    lineup = cmd("lineup", "print the published lineups")
    lineup.add_argument("--bucket", help="only this bucket (or shard)")
    lineup.add_argument("--json", action="store_true", help="one JSON object")
    gm = cmd("guide-match", "how every channel was matched to the guide, and what almost matched")
    gm.add_argument("--unmatched", action="store_true", help="only unmatched or doubtful ones")
    gm.add_argument("--json", action="store_true", help="one JSON object")
    guide = cmd("guide", "print the published guide as served (/epg.xml, or a device's guide.xml)")
    guide.add_argument("--bucket", help="only this bucket (or shard): its guide.xml")
    guide.add_argument("--output", type=Path, help="write it to this file instead (atomically)")
    cmd("check-config", "validate the config and print it with secrets redacted")
    cmd("doctor", "check config, data dir, binaries, providers, guides, ports and Plex")
    plex = sub.add_parser("plex", help="Plex Media Server actions", description="Plex actions")
    plex_sub = plex.add_subparsers(dest="plex_command", required=True, metavar="ACTION")
    for name, help_ in (
        ("register", "register every device as a Plex DVR"),
        ("reload-guides", "reload our DVRs' guides in batches"),
    ):
        p = plex_sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--config", type=Path, help="YAML or TOML file [$PLEX_TUNER_CONFIG]")
    return parser


def _load(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> Settings:
    """The settings, built once here and passed down; their secrets registered for scrubbing."""
    settings = load_settings(getattr(args, "config", None), overrides)
    SECRETS.add(*secret_values(settings))
    return settings


def _err(message: str) -> None:
    print(f"plextuner: error: {SECRETS.scrub(message)}", file=sys.stderr)


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _load(args)
    print(yaml.safe_dump(redacted_dump(settings), sort_keys=False, allow_unicode=True), end="")
    return EXIT_OK


def cmd_refresh(args: argparse.Namespace) -> int:
    from plextuner.binaries import resolve_binaries
    from plextuner.pipeline import run_refresh
    from plextuner.refresh import default_stages
    from plextuner.summary import refresh_summary

    settings = _load(args)
    configure_logging(settings.log_format, settings.log_level)
    settings = resolve_binaries(settings)
    # A one-shot process: no automatic collections while the refresh allocates its hundreds of
    # thousands of acyclic objects (each full pass walked them all: ~1 s of a 50k refresh).
    # Reference counting frees them; the process exits right after.
    gc.disable()
    try:
        stages = default_stages(settings)  # serving nobody: no guide worker, no GIL yielding
        outcome = asyncio.run(run_refresh(settings, stages=stages, serving=False))
    except NothingPublishedError as err:
        _err(f"nothing published, previous lineups kept: {err}")
        return EXIT_FAIL
    print(refresh_summary(outcome))
    if getattr(args, "hard_exit", False):
        _LEFT_TO_EXIT.append(outcome)  # 50k channels freed one by one took ~0.05 s
    return outcome.exit_code


def cmd_lineup(args: argparse.Namespace) -> int:
    from plextuner.state.published import load_state
    from plextuner.summary import lineup_json, lineup_text

    settings = _load(args)
    state = load_state(settings.paths)
    if state is None or not state.devices:
        _err(f"nothing published in {settings.data_dir}; run `plextuner refresh` first")
        return EXIT_FAIL
    if args.bucket and not any(args.bucket in (d.name, d.bucket) for d in state.devices):
        _err(f"no published bucket named {args.bucket!r}")
        return EXIT_FAIL
    if args.json:
        print(json.dumps(lineup_json(state, args.bucket), ensure_ascii=False, indent=2))
    else:
        print(lineup_text(state, args.bucket))
    return EXIT_OK


def cmd_guide_match(args: argparse.Namespace) -> int:
    from plextuner.epg.report import needs_attention, render_text
    from plextuner.fileio import read_json

    settings = _load(args)
    report = read_json(settings.paths.guide_matches)
    if not isinstance(report, dict) or not report.get("devices"):
        _err(f"no guide matches in {settings.data_dir}; run `plextuner refresh` first")
        return EXIT_FAIL
    if args.json:
        if args.unmatched:
            for device in report["devices"]:
                device["rows"] = [r for r in device["rows"] if needs_attention(r)]
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(render_text(report, args.unmatched))
    return EXIT_OK


def cmd_guide(args: argparse.Namespace) -> int:
    """The guide as `/epg.xml` or a device's `guide.xml` serves it: the files under guides/
    hold a big lineup's placeholder programmes as a note, rendered when read (placeholders.py),
    so a tool reading them directly misses those; this prints what the daemon would send."""
    from plextuner.fileio import write_atomic
    from plextuner.state.aggregate import chunks, open_aggregate, open_guide
    from plextuner.state.published import load_state

    settings = _load(args)
    state = load_state(settings.paths)
    if state is None or not state.devices:
        _err(f"nothing published in {settings.data_dir}; run `plextuner refresh` first")
        return EXIT_FAIL
    devices = state.devices
    if args.bucket:
        devices = [d for d in devices if args.bucket in (d.name, d.bucket)]
        if not devices:
            _err(f"no published bucket named {args.bucket!r}")
            return EXIT_FAIL
    paths = [settings.paths.guide(d.name) for d in devices]
    # One device: its guide.xml; more (all, or a bucket's shards): them as /epg.xml joins them
    agg = open_guide(paths[0]) if len(paths) == 1 else open_aggregate(paths)
    if agg is None:
        _err(f"no guide written in {settings.data_dir} yet; run `plextuner refresh` first")
        return EXIT_FAIL
    try:
        if args.output is not None:
            write_atomic(args.output, chunks(agg), mode=0o644)  # StateError: exit 1, no file
        else:
            out = sys.stdout.buffer
            for chunk in chunks(agg):
                out.write(chunk)
            out.flush()
    finally:
        agg.close()
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from plextuner.binaries import resolve_binaries
    from plextuner.service import serve

    settings = _load(args)
    configure_logging(settings.log_format, settings.log_level)
    return asyncio.run(serve(resolve_binaries(settings)))


def cmd_demo(args: argparse.Namespace) -> int:
    from plextuner.demo.run import run_demo

    return run_demo(port=args.port, data_dir=args.data_dir)


def cmd_doctor(args: argparse.Namespace) -> int:
    from plextuner.doctor import report_invalid_config, run_doctor

    try:
        settings = _load(args)
    except ConfigError as err:
        return report_invalid_config(err)
    return run_doctor(settings)


def cmd_plex(args: argparse.Namespace) -> int:
    from plextuner.plex.commands import run_plex_command

    settings = _load(args)
    configure_logging(settings.log_format, settings.log_level)
    return asyncio.run(run_plex_command(args.plex_command, settings))


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "check-config": cmd_check_config,
    "refresh": cmd_refresh,
    "lineup": cmd_lineup,
    "guide-match": cmd_guide_match,
    "guide": cmd_guide,
    "serve": cmd_serve,
    "demo": cmd_demo,
    "doctor": cmd_doctor,
    "plex": cmd_plex,
}


# One-shot commands that end holding a big heap (a 50k-channel refresh: ~300k objects): as the
# process they leave with `os._exit` once their output is flushed, instead of freeing every
# object one by one and tearing the interpreter down (~0.1 s). Their files are written and
# synced before they return; they start no process or thread that outlives them.
_HARD_EXIT = frozenset({"refresh", "lineup"})
_LEFT_TO_EXIT: list[object] = []  # what such a command would free on return: left to the exit


def run() -> None:
    """The `plextuner` console script."""
    raise SystemExit(main(hard_exit=True))


def main(argv: Sequence[str] | None = None, *, hard_exit: bool = False) -> int:
    args = _parser().parse_args(argv)
    args.hard_exit = hard_exit and args.command in _HARD_EXIT
    code = _dispatch(args)
    if args.hard_exit:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command](args)
    except ConfigError as err:
        print("plextuner: invalid configuration:", file=sys.stderr)
        for problem in err.problems:
            print(f"  {SECRETS.scrub(problem)}", file=sys.stderr)
        return EXIT_CONFIG
    except PlexTunerError as err:
        _err(str(err))
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): what was done stays done, and no traceback. The
        # rest of the output goes nowhere, so the flush on the way out cannot fail again.
        with contextlib.suppress(OSError, ValueError):  # (a stdout with no descriptor)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return EXIT_PIPE
