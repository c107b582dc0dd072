"""ffmpeg/ffprobe discovery and the start-up error when one is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from plextuner.binaries import resolve, resolve_binaries
from plextuner.config import load_settings
from plextuner.errors import MissingBinaryError


def test_configured_path_and_path_lookup(tmp_path: Path) -> None:
    """An explicit path must be executable; a bare name is looked up on PATH."""
    exe = tmp_path / "ffprobe"
    exe.write_text("#!/bin/sh\n")
    assert resolve("ffprobe", str(exe)) is None
    exe.chmod(0o755)
    assert resolve("ffprobe", str(exe)) == str(exe)
    assert resolve("ffprobe", "definitely-not-a-binary-xyz") is None
    sh = shutil.which("sh")
    assert resolve("sh", "sh") == sh


def test_missing_ffprobe_is_a_clear_startup_error(tmp_path: Path) -> None:
    """With the ffprobe engine on and no ffprobe, start-up fails naming every fix."""
    settings = load_settings(
        None, {"ffprobe": str(tmp_path / "nope"), "data_dir": str(tmp_path)}, env={}
    )
    with pytest.raises(MissingBinaryError, match=r"apt-get install ffmpeg.*plextuner\[ffmpeg\]"):
        resolve_binaries(settings)
    native = settings.model_copy(
        update={"postvalidate": settings.postvalidate.model_copy(update={"engine": "native"})}
    )
    assert resolve_binaries(native).ffprobe == str(tmp_path / "nope")


def test_cli_refresh_exits_1_without_ffprobe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`plextuner refresh` reports the missing binary in one line, exit 1, no traceback."""
    from plextuner.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\nffprobe: {tmp_path / 'missing-ffprobe'}\n")
    assert main(["refresh", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "ffprobe not found" in err and "Traceback" not in err


def test_header_args() -> None:
    """User-Agent gets its own option; other headers go in one CRLF-joined -headers value."""
    from plextuner.binaries import header_args

    assert header_args(()) == []
    assert header_args((("Referer", "http://r/"), ("User-Agent", "UA"))) == [
        "-user_agent",
        "UA",
        "-headers",
        "Referer: http://r/\r\n",
    ]
