#!/usr/bin/env bash
# Installs the system programs bargan needs that pip cannot provide.
#   scripts/ensure_system_deps.sh          Rubber Band (time-stretching)
#   scripts/ensure_system_deps.sh --test   also Chromium (the report's browser test)
# As root it uses apt-get; otherwise it names the missing packages and fails.
set -euo pipefail
missing=()
command -v rubberband >/dev/null 2>&1 || missing+=(rubberband-cli)
if [ "${1:-}" = "--test" ]; then
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bargan: installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "bargan: missing system package(s): ${missing[*]}." >&2
    echo "Install them, e.g. 'sudo apt-get install ${missing[*]}' (Debian/Ubuntu)." >&2
    exit 1
fi
