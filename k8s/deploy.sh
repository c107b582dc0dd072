#!/usr/bin/env bash
# One-shot deploy: creates or updates the Secret from your environment (or prompts, without echo),
# then applies an overlay. Never prints a secret.
#
#   PLEXTUNER_M3U_URL=...  PLEXTUNER_PLEX_TOKEN=...  k8s/deploy.sh [overlay]   (default: service)
#
# Variables: PLEXTUNER_M3U_URL, or PLEXTUNER_XTREAM_USER + PLEXTUNER_XTREAM_PASS for an Xtream
# account (see docs/kubernetes.md for the matching config), PLEXTUNER_PLEX_TOKEN (optional),
# PLEXTUNER_ADMIN_TOKEN (optional; generated when empty), PLEXTUNER_NAMESPACE (default plextuner),
# KUBECTL (default kubectl).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
overlay="${1:-service}"
namespace="${PLEXTUNER_NAMESPACE:-plextuner}"
kubectl="${KUBECTL:-kubectl}"

if [[ ! -d "$here/overlays/$overlay" ]]; then
  echo "deploy.sh: unknown overlay '$overlay' (see $here/overlays/)" >&2
  exit 2
fi

ask_secret() {
  # ask_secret VAR "prompt": keeps an exported value, else reads it from the terminal silently.
  local var="$1" prompt="$2" value="${!1:-}"
  if [[ -z "$value" && -t 0 ]]; then
    read -r -s -p "$prompt: " value
    echo >&2
  fi
  printf -v "$var" '%s' "$value"
}

if [[ -z "${PLEXTUNER_XTREAM_USER:-}" ]]; then
  ask_secret PLEXTUNER_M3U_URL "Provider playlist URL (with credentials)"
fi
ask_secret PLEXTUNER_PLEX_TOKEN "Plex token (empty to skip)"
if [[ -z "${PLEXTUNER_M3U_URL:-}" && -z "${PLEXTUNER_XTREAM_USER:-}" ]]; then
  echo "deploy.sh: set PLEXTUNER_M3U_URL or PLEXTUNER_XTREAM_USER/PASS (or run in a terminal)" >&2
  exit 2
fi
if [[ -n "${PLEXTUNER_XTREAM_USER:-}" ]]; then
  ask_secret PLEXTUNER_XTREAM_PASS "Xtream password"
fi
if [[ -z "${PLEXTUNER_ADMIN_TOKEN:-}" ]]; then
  PLEXTUNER_ADMIN_TOKEN="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
fi

# The namespace first, so the Secret has somewhere to live.
"$kubectl" create namespace "$namespace" --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null

# Values go through files in a private temp dir, never through argv (visible in `ps`) or stdout.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
umask 077
printf '%s' "${PLEXTUNER_M3U_URL:-}" >"$tmp/m3u-url"
printf '%s' "${PLEXTUNER_XTREAM_USER:-}" >"$tmp/xt-user"
printf '%s' "${PLEXTUNER_XTREAM_PASS:-}" >"$tmp/xt-pass"
printf '%s' "${PLEXTUNER_PLEX_TOKEN:-}" >"$tmp/plex-token"
printf '%s' "$PLEXTUNER_ADMIN_TOKEN" >"$tmp/admin-token"

"$kubectl" -n "$namespace" create secret generic plextuner-secrets \
  --from-file=m3u-url="$tmp/m3u-url" \
  --from-file=xt-user="$tmp/xt-user" \
  --from-file=xt-pass="$tmp/xt-pass" \
  --from-file=plex-token="$tmp/plex-token" \
  --from-file=admin-token="$tmp/admin-token" \
  --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
echo "deploy.sh: secret plextuner-secrets updated in namespace $namespace"

"$kubectl" apply -k "$here/overlays/$overlay"
echo "deploy.sh: applied overlay '$overlay'. Plex address: see docs/kubernetes.md"
