"""Credential redaction in URLs and free text."""

from __future__ import annotations

from plextuner.redact import SECRETS, host_of, redact_text, redact_url


class TestRedactUrl:
    def test_userinfo_query_and_xtream_path(self) -> None:
        """Userinfo, credential query values and /live/<u>/<p>/ are masked; the host stays."""
        out = redact_url("http://bob:pw@h.invalid:8080/live/bob/pw/12.ts?token=t0k&x=1")
        assert "pw" not in out and "bob" not in out and "t0k" not in out
        assert out.startswith("http://***@h.invalid:8080/live/***/***/12.ts")
        assert "x=1" in out

    def test_text_and_registered_secrets(self) -> None:
        """URLs inside text are redacted and registered secrets vanish anywhere."""
        SECRETS.add("hunter22")
        text = SECRETS.scrub("failed http://h/get.php?password=hunter22: bad; raw hunter22")
        assert "hunter22" not in text
        assert redact_text("see http://a/b?username=u1,") == "see http://a/b?username=***,"

    def test_host_label(self) -> None:
        """Metric labels carry host[:port] only."""
        assert host_of("http://u:p@cdn.invalid:81/live/u/p/1.ts") == "cdn.invalid:81"
