"""Configuration: layers, env nesting, shortcuts, *_FILE secrets, errors with key paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from plextuner.config import load_settings, parse_duration, redacted_dump
from plextuner.errors import ConfigError


class TestDuration:
    @pytest.mark.parametrize(
        ("raw", "seconds"),
        [
            (90, 90.0),
            ("30s", 30.0),
            ("30m", 1800.0),
            ("6h", 21600.0),
            ("1d", 86400.0),
            ("0.5", 0.5),
        ],
    )
    def test_forms(self, raw: object, seconds: float) -> None:
        """Numbers and 30s/30m/6h/1d strings are seconds."""
        assert parse_duration(raw) == seconds

    @pytest.mark.parametrize("raw", ["soon", "-1", "5w", True])
    def test_rejects(self, raw: object) -> None:
        """Anything else is refused."""
        with pytest.raises(ValueError, match="duration"):
            parse_duration(raw)


class TestLayers:
    def test_yaml_then_env_then_overrides(self, tmp_path: Path) -> None:
        """CLI overrides beat env, env beats the file, the file beats defaults."""
        cfg = tmp_path / "c.yaml"
        cfg.write_text("port: 6000\nrefresh_interval: 30m\nepg: {days: 5}\nlog_level: debug\n")
        env = {"PLEX_TUNER_PORT": "7000", "PLEX_TUNER_EPG__DAYS": "4"}
        s = load_settings(cfg, {"log_level": "error"}, env=env)
        assert (s.port, s.refresh_interval, s.epg.days, s.log_level) == (7000, 1800.0, 4, "error")

    def test_toml(self, tmp_path: Path) -> None:
        """A .toml file is read as TOML."""
        cfg = tmp_path / "c.toml"
        cfg.write_text('port = 6001\n[[buckets]]\nname = "news"\nmatch = {group = "^News"}\n')
        s = load_settings(cfg, env={})
        assert s.port == 6001 and s.buckets[0].match.group == "^News"

    def test_shortcuts(self) -> None:
        """The single-provider env shortcuts build providers and guide sources."""
        env = {
            "PLEX_TUNER_M3U_URL": "http://p.invalid/get.php?username=u&password=pw",
            "PLEX_TUNER_PROVIDER_URL": "http://xt.invalid:8080",
            "PLEX_TUNER_PROVIDER_USER": "bob",
            "PLEX_TUNER_PROVIDER_PASS": "hunter22",
            "PLEX_TUNER_XMLTV_URL": "http://g.invalid/x.xml",
            "PLEX_TUNER_POSTVALIDATE_WORKERS": "3",
        }
        s = load_settings(None, env=env)
        assert [p.name for p in s.providers] == ["m3u", "xtream"]
        assert s.providers[1].xtream is not None
        assert s.providers[1].xtream.password is not None
        assert s.providers[1].xtream.password.get_secret_value() == "hunter22"
        assert s.epg.sources == ["http://g.invalid/x.xml"] and s.postvalidate.workers == 3

    def test_secret_files(self, tmp_path: Path) -> None:
        """<KEY>_FILE reads a mounted secret, in the file and from the environment."""
        (tmp_path / "pass").write_text("from-file-pw\n")
        (tmp_path / "tok").write_text("plex-token-xyz")
        env = {
            "PLEX_TUNER_PROVIDER_URL": "http://xt.invalid",
            "PLEX_TUNER_PROVIDER_USER": "bob",
            "PLEX_TUNER_PROVIDER_PASS_FILE": str(tmp_path / "pass"),
            "PLEX_TUNER_PLEX__TOKEN_FILE": str(tmp_path / "tok"),
        }
        s = load_settings(None, env=env)
        xt = s.providers[0].xtream
        assert xt is not None and xt.password is not None
        assert xt.password.get_secret_value() == "from-file-pw"
        assert s.plex.token is not None and s.plex.token.get_secret_value() == "plex-token-xyz"


class TestErrors:
    def test_every_problem_with_key_path(self, tmp_path: Path) -> None:
        """All problems are reported at once, each with its key path."""
        cfg = tmp_path / "c.yaml"
        cfg.write_text(
            "port: 99999\nbogus: 1\nrefresh_interval: soon\n"
            "buckets:\n  - name: Bad Name\n    match: {group: '(['}\n"
            "providers:\n  - name: p\n"
        )
        with pytest.raises(ConfigError) as info:
            load_settings(cfg, env={})
        text = "\n".join(info.value.problems)
        for path in (
            "port:",
            "bogus:",
            "refresh_interval:",
            "buckets.0.name:",
            "buckets.0.match.group:",
            "providers.0:",
        ):
            assert path in text, text

    def test_unknown_env_nested_key(self) -> None:
        """An unknown nested key from the environment is an error too."""
        with pytest.raises(ConfigError, match="epg"):
            load_settings(None, env={"PLEX_TUNER_EPG__NOPE": "1"})

    def test_bad_yaml(self, tmp_path: Path) -> None:
        """Unparsable YAML is a ConfigError naming the file."""
        cfg = tmp_path / "c.yaml"
        cfg.write_text("port: [1,\n")
        with pytest.raises(ConfigError, match=r"c\.yaml"):
            load_settings(cfg, env={})


class TestRedaction:
    def test_dump_hides_every_secret(self, tmp_path: Path) -> None:
        """check-config output carries no secret, no URL credential."""
        cfg = tmp_path / "c.yaml"
        cfg.write_text(
            "providers:\n"
            "  - name: a\n"
            "    m3u_url: http://bob:pw1234@p.invalid/get.php?username=bob&password=pw1234\n"
            "  - name: b\n"
            "    xtream: {url: 'http://x.invalid', username: alice, password: pw5678}\n"
            "epg: {sources: ['http://x.invalid/xmltv.php?username=alice&password=pw5678']}\n"
            "admin_token: admintok123\nplex: {token: plextok123}\n"
        )
        dump = str(redacted_dump(load_settings(cfg, env={})))
        for secret in ("pw1234", "pw5678", "alice", "admintok123", "plextok123", "bob:"):
            assert secret not in dump
        assert "p.invalid" in dump
