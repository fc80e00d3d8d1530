#!/usr/bin/env bash
# `meson install` into a temporary root, then two programs outside the project build against
# the installed library as a user's project would: g++ with `pkg-config --cflags --libs
# mmgrad`, and a meson project with dependency('mmgrad'). Both compile
# examples/autograd_basics.cpp (#include <mmgrad/mmgrad.h>) and run it.
#   test_install.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

meson install -C "$build" --destdir "$root" --no-rebuild --quiet >/dev/null
pc=$(find "$root" -name mmgrad.pc | head -1)
[ -n "$pc" ] || { echo "no mmgrad.pc was installed"; exit 1; }
lib=$(dirname "$(find "$root" -name 'libmmgrad.so*' | head -1)")
[ -f "$(dirname "$pc")/../../../include/mmgrad/mmgrad/mmgrad.h" ] || [ -n "$(find "$root" -path '*include/mmgrad/mmgrad/mmgrad.h')" ] ||
  { echo "mmgrad/mmgrad.h was not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$root LD_LIBRARY_PATH=$lib
echo "installed: $(find "$root" -type f | wc -l) files; pkg-config: $(pkg-config --modversion mmgrad)"

# 1. g++ and pkg-config
# shellcheck disable=SC2046
g++ -O1 "$src/examples/autograd_basics.cpp" $(pkg-config --cflags mmgrad) -o "$root/with_pkg_config" \
    $(pkg-config --libs mmgrad)
"$root/with_pkg_config" | tail -1

# 2. a meson project
mkdir -p "$root/consumer"
cp "$src/examples/autograd_basics.cpp" "$root/consumer/main.cpp"
cat > "$root/consumer/meson.build" <<'MESON'
project('consumer', 'cpp', default_options : ['cpp_std=c++20'])
executable('consumer', 'main.cpp', dependencies : dependency('mmgrad'))
MESON
meson setup "$root/consumer/build" "$root/consumer" >/dev/null
ninja -C "$root/consumer/build" >/dev/null
"$root/consumer/build/consumer" | tail -1
echo "install: a pkg-config build and a meson project both built and ran against the installed mmgrad"
