#!/usr/bin/env bash
# Installs the Debian packages videoshare needs when they are missing.
# Usage: scripts/ensure-deps.sh PACKAGE...   (ffmpeg, nodejs, npm, chromium,
#        chromium-driver, python3, postgresql)
# Run as root (or with sudo available). Only Debian's own packages, through
# apt-get; the Makefile then installs the pinned hls.js with `npm ci`.
set -euo pipefail

# The command that proves each package is installed.
probe() {
  case "$1" in
    ffmpeg) command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null ;;
    chromium) command -v chromium >/dev/null ;;
    chromium-driver) command -v chromedriver >/dev/null ;;
    python3) command -v python3 >/dev/null ;;
    nodejs) command -v node >/dev/null ;;
    npm) command -v npm >/dev/null ;;
    # The server binaries, not a running service: scripts/ensure-postgres.sh
    # starts its own throwaway cluster with the newest initdb found here.
    postgresql) compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ;;
    *) dpkg -s "$1" >/dev/null 2>&1 ;;
  esac
}

missing=()
for pkg in "$@"; do
  probe "$pkg" || missing+=("$pkg")
done

# chromium and chromium-driver must be the same Debian version: when either
# is missing, install (or upgrade) both together.
for pkg in "${missing[@]}"; do
  if [[ "$pkg" == chromium || "$pkg" == chromium-driver ]]; then
    for both in chromium chromium-driver; do
      [[ " ${missing[*]} " == *" $both "* ]] || missing+=("$both")
    done
    break
  fi
done

if ((${#missing[@]})); then
  echo "videoshare: installing ${missing[*]} with apt-get" >&2
  sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || { echo "videoshare: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "videoshare: cargo is missing; install Rust with rustup" >&2; exit 1; }
