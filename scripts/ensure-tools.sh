#!/usr/bin/env bash
# Installs the Debian packages the tests use, when we can (root on Debian); otherwise names what is
# missing so the tests that need it skip loudly (or fail, under CI=true).
set -euo pipefail

# tool -> Debian package
declare -A PKG=(
  [ffmpeg]=ffmpeg
  [ffprobe]=ffmpeg
  [hdhomerun_config]=hdhomerun-config
  [xmllint]=libxml2-utils
  [shellcheck]=shellcheck
  [promtool]=prometheus
  [chromium]=chromium
  [tv_validate_file]=xmltv-util
  [openssl]=openssl
)
# `ensure-tools.sh bench`: the benchmarks' tools too (wrk drives bench/hdhr_lineup.py)
if [ "${1:-}" = bench ]; then
  PKG[wrk]=wrk
fi

missing=()
for tool in "${!PKG[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${PKG[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-tools: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi

echo "ensure-tools: WARNING missing Debian packages: ${missing[*]}" >&2
echo "ensure-tools: tests (or benchmarks) needing them will be SKIPPED (and FAIL when CI=true)." >&2
exit 0
