"""Ingest + bucket + publish of a 50,000-stream playlist vs a one-regex-per-#EXTINF baseline.

Targets (issue 2): at most 4x the baseline, ≤ 1 s wall, RSS growth ≤ 150 MB.
Each side runs in a fresh child process so peak RSS is its own.
"""

from __future__ import annotations

import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STREAMS = 50_000
GROUPS = ["Sports", "News", "Movies", "Kids", "Music", "Docs", "Ünïcode", "Local"]


def generate(path: Path, count: int = STREAMS) -> None:
    rnd = random.Random(1)
    lines = ['#EXTM3U url-tvg="http://guide.invalid/xmltv.php"']
    for i in range(count):
        group = GROUPS[i % len(GROUPS)]
        tvg = f"ch{i // 2}.tv" if rnd.random() < 0.8 else ""
        lines.append(
            f'#EXTINF:-1 tvg-id="{tvg}" tvg-name="{group} {i}" '
            f'tvg-logo="http://logo.invalid/{i}.png" '
            f'group-title="{group}",{group} Channel {i} (1080p)'
        )
        lines.append(f"http://cdn{i % 7}.invalid:8080/live/user/pass/{i}.ts")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


_BASELINE = re.compile(r"#EXTINF:(-?\d+)(.*),(.*)")


def run_baseline(path: Path) -> int:
    count = 0
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("#EXTINF") and _BASELINE.match(line):
                count += 1
    return count


def run_ours(path: Path, data_dir: Path) -> int:
    from plextuner.buckets import NumberMap, build_devices
    from plextuner.config import load_settings
    from plextuner.datadir import DataDir
    from plextuner.ingest import merge_entries, parse_m3u
    from plextuner.state.published import PublishedState, save_state

    cfg = data_dir / "config.yaml"
    buckets = "".join(
        f"  - {{name: b{i}, match: {{group: '^{g}$'}}}}\n" for i, g in enumerate(GROUPS)
    )
    cfg.write_text(f"data_dir: {data_dir}\nbuckets:\n{buckets}", encoding="utf-8")
    settings = load_settings(cfg, env={})
    entries, _ = parse_m3u(path.read_bytes(), str(path), "bench")
    channels = merge_entries(entries)
    numbers = NumberMap()
    result = build_devices(channels, settings, numbers)
    numbers.save(data_dir / "numbers.json")
    save_state(DataDir(data_dir), PublishedState(devices=result.devices))
    return sum(len(d.entries) for d in result.devices)


def child(kind: str, path: str, data_dir: str) -> None:
    if kind != "baseline":  # imports are start-up cost, not ingest cost
        import plextuner.buckets
        import plextuner.config
        import plextuner.ingest
        import plextuner.state.published  # noqa: F401
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    n = run_baseline(Path(path)) if kind == "baseline" else run_ours(Path(path), Path(data_dir))
    wall = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "wall": wall,
                "items": n,
                "rss_growth_mb": (rss_after - rss_before) / 1024,
                "rss_peak_mb": rss_after / 1024,
            }
        )
    )


def measure(kind: str, path: Path, data_dir: Path) -> dict[str, float]:
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-m", "bench.ingest", "--child", kind, str(path), str(data_dir)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        runs.append(json.loads(out.stdout))
    best = min(runs, key=lambda r: r["wall"])
    best["rss_growth_mb"] = max(r["rss_growth_mb"] for r in runs)
    return best


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.m3u"
        generate(path)
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        size = path.stat().st_size
        base = measure("baseline", path, data_dir)
        ours = measure("ours", path, data_dir)
    ratio = ours["wall"] / base["wall"]
    print(f"playlist: {STREAMS} streams, {size / 1e6:.1f} MB")
    print(f"baseline (regex per #EXTINF): {base['wall'] * 1000:.0f} ms, {base['items']} entries")
    print(
        f"ingest+bucket+publish:        {ours['wall'] * 1000:.0f} ms, {ours['items']} channels, "
        f"RSS growth {ours['rss_growth_mb']:.0f} MB (peak {ours['rss_peak_mb']:.0f} MB)"
    )
    ok = ratio <= 4 and ours["wall"] <= 1.0 and ours["rss_growth_mb"] <= 150
    print(
        f"ratio {ratio:.2f}x (target <= 4x), wall target <= 1 s, RSS target <= 150 MB: "
        f"{'PASS' if ok else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(main())
