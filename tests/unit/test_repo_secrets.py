"""No credential is committed: a scan of every tracked file outside tests/data."""

from __future__ import annotations

import math
import re
import subprocess
from collections import Counter
from pathlib import Path

from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(
    r"(?i)<[^>]*>|example|placeholder|change-?me|\$\{|\$[A-Z_]|xxxx|dummy|"
    r"redact|\*\*\*|your[-_ ]|_file|secretKeyRef|/run/secrets"
)
URL_USERINFO = re.compile(r"[a-z][a-z0-9+.-]*://([^/\s:@'\"]+):([^/\s@'\"]+)@")
ASSIGNMENT = re.compile(
    r"(?i)\b(password|passwd|pass|token|secret|api[_-]?key)\b[\"']?\s*[:=]\s*[\"']?([^\s\"'&,}]{6,})"
)
LONG_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{32,}")
SKIP_DIRS = ("tests/", "bench/")  # fixtures and fakes carry made-up test credentials on purpose


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        skip_or_fail("not a git checkout")
    return [
        ROOT / line
        for line in out.splitlines()
        if not line.startswith(SKIP_DIRS) and not line.endswith((".dtd", ".lock"))
    ]


def entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


def findings(text: str) -> list[str]:
    hits = []
    for line in text.splitlines():
        if PLACEHOLDER.search(line):
            continue
        for m in URL_USERINFO.finditer(line):
            hits.append(f"URL userinfo: {m.group(0)}")
        for m in ASSIGNMENT.finditer(line):
            value = m.group(2)
            if not re.fullmatch(r"[a-z_.]+|\d+|null|none|true|false", value, re.IGNORECASE):
                hits.append(f"{m.group(1)}= value")
        for m in LONG_TOKEN.finditer(line):
            token = m.group(0)
            if entropy(token) > 4.3 and not re.fullmatch(r"[a-z_/-]+|[0-9a-f]{40}", token):
                hits.append(f"high-entropy string {token[:6]}…")
    return hits


def test_scanner_catches_planted_secrets() -> None:
    """The scanner itself flags each kind it looks for."""
    assert findings("url: http://bob:hunter2pw@provider.tv/get.php")
    assert findings("password = 'Tr0ub4dor&3x'")
    assert findings("token: 9f8Q2xLmZ0pV7rT1kY5wN3bH6cJ4dG8sA2eU")
    assert not findings("password_file: /run/secrets/plextuner/pass")


def test_no_credentials_committed() -> None:
    """Tracked files outside tests/ and bench/ carry no credential."""
    problems = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        problems += [f"{path.relative_to(ROOT)}: {hit}" for hit in findings(text)]
    assert not problems, "\n".join(problems)
