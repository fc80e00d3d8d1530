#!/usr/bin/env bash
# Installs what is missing (Debian packages, as root), configures and builds mmgrad.
# Usage: scripts/setup.sh [build-dir] [extra meson options...]
# Sourced by scripts/main.sh and scripts/test.sh; safe to run again (only does what is needed).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ meson ninja-build pkg-config libopenblas-dev libfmt-dev libgtest-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: installing packages needs root (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build_dir=${1:-build}
shift || true
if [ ! -f "$build_dir/build.ninja" ]; then
  meson setup "$build_dir" "$@" >/dev/null
elif [ $# -gt 0 ]; then
  meson configure "$build_dir" "$@" >/dev/null
fi
ninja -C "$build_dir" | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Linking)' || true
ninja -C "$build_dir" >/dev/null  # fails here (with the compiler's output) if the build is broken
