"""`plextuner doctor` names what is wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plextuner.cli import main
from tests.conftest import free_port, require_tool
from tests.fakes.provider import PASSWORD, USER, FakeProvider, make_world

pytestmark = pytest.mark.integration


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider(make_world(count=30)).start()
    yield fake
    fake.stop()


def config(tmp_path: Path, provider: FakeProvider, password: str, guide: str) -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data_dir: {tmp_path / 'data'}\nhost: 127.0.0.1\nport: {free_port()}\ndiscovery_port: 0\n"
        f"providers:\n  - name: xt\n    xtream: {{url: '{provider.base}', username: '{USER}', "
        f"password: '{password}'}}\n"
        f"  - name: list\n    m3u_url: '{provider.m3u_url}'\n"
        f"epg: {{sources: ['{guide}']}}\n"
    )
    return cfg


def test_all_good(
    provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A healthy setup passes every check, exit 0."""
    require_tool("ffmpeg")
    cfg = config(tmp_path, provider, PASSWORD, f"{provider.base}/xmltv.php")
    assert main(["doctor", "--config", str(cfg)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "[FAIL]" not in out and "provider xt connections free" in out


def test_wrong_password_and_dead_guide(
    provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong password and an unreachable guide are named, with fixes; nothing secret printed."""
    cfg = config(
        tmp_path, provider, "wrong-pass-9876", "http://127.0.0.1:9/xmltv.php?password=zzsecret"
    )
    assert main(["doctor", "--config", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] provider xt account" in out and "authentication failed" in out
    assert "[FAIL] guide http://127.0.0.1:9/xmltv.php" in out
    assert out.count("fix:") >= 2
    assert "wrong-pass-9876" not in out and "zzsecret" not in out and PASSWORD not in out


def test_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid config is the first failed check."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("port: -5\n")
    assert main(["doctor", "--config", str(cfg)]) == 1
    assert capsys.readouterr().out.startswith("[FAIL] config valid")
