#!/usr/bin/env bash
# Installs what is missing (Debian packages, as root), configures and builds mmgrad.
# Usage: scripts/setup.sh [--with-torch] [build-dir] [extra meson options...]
# Sourced by scripts/main.sh and scripts/test.sh; safe to run again (only does what is needed).
# --with-torch (scripts/test.sh) also installs Debian's python3-torch when /usr/bin/python3
# cannot import torch: the PyTorch parity test (tests/models/test_torch_parity.cpp) needs it.
# The download is large (about 80 s to install); the build itself never needs it.
set -euo pipefail
cd "$(dirname "$0")/.."

with_torch=0
if [ "${1:-}" = "--with-torch" ]; then
  with_torch=1
  shift
fi

packages=(g++ meson ninja-build pkg-config libopenblas-dev libfmt-dev libgtest-dev libstb-dev)
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

if [ $with_torch -eq 1 ] && ! /usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: /usr/bin/python3 cannot import torch and installing python3-torch needs root;" \
         "the PyTorch parity test will be skipped (sudo apt-get install --no-install-recommends python3-torch)" >&2
  else
    echo "setup: installing python3-torch for the PyTorch parity test (takes a minute or two)"
    export DEBIAN_FRONTEND=noninteractive
    [ ${#missing[@]} -gt 0 ] || apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-torch >/dev/null
    /usr/bin/python3 -c 'import torch, numpy'  # fails here, with the reason, if the install did not work
  fi
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
