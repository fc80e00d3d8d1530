#!/usr/bin/env bash
# Installs what is missing (Debian packages, as root), configures and builds mmgrad.
# Usage: scripts/setup.sh [--with-torch] [--with-mpi] [--with-python] [--with-browser] [build-dir] [meson options...]
# Sourced by scripts/main.sh and scripts/test.sh; safe to run again (only does what is needed).
# --with-torch (scripts/test.sh) also installs Debian's python3-torch when /usr/bin/python3
# cannot import torch: the PyTorch parity test (tests/models/test_torch_parity.cpp) needs it;
# and python3-pil for the resize comparison against Pillow (tests/data/test_image_transform.cpp).
# The download is large (about 80 s to install); the build itself never needs it.
# --with-mpi (scripts/test.sh) installs Open MPI (libopenmpi-dev, openmpi-bin) so that the
# data-parallel code is built (meson's mpi=auto) and its 2-rank tests run under mpirun.
# --with-python (scripts/test.sh) installs pybind11, the Python headers, NumPy and pytest, so
# that the Python module is built (meson's python=auto) and python/tests/ runs.
# --with-browser (scripts/test.sh) installs Debian's chromium, which the report test uses to
# render report.html headless.
# --with-clang (scripts/fuzz.sh) installs clang and its runtime libraries (libFuzzer).
# --targets "T1 T2" builds only those ninja targets (the sanitizer builds need a few tests).
set -euo pipefail
cd "$(dirname "$0")/.."

with_torch=0
with_mpi=0
with_python=0
with_browser=0
with_clang=0
targets=""
while [ $# -gt 0 ]; do
  case "$1" in
    --with-torch) with_torch=1; shift ;;
    --with-mpi) with_mpi=1; shift ;;
    --with-python) with_python=1; shift ;;
    --with-browser) with_browser=1; shift ;;
    --with-clang) with_clang=1; shift ;;
    --targets) targets=$2; shift 2 ;;
    *) break ;;
  esac
done

# apt-get update once per run, and only when something is installed.
apt_updated=0
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ $apt_updated -eq 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

packages=(g++ meson ninja-build pkg-config libopenblas-dev libfmt-dev libgtest-dev libstb-dev)
if [ $with_mpi -eq 1 ]; then packages+=(libopenmpi-dev openmpi-bin); fi
if [ $with_python -eq 1 ]; then packages+=(pybind11-dev python3-dev python3-numpy python3-pytest); fi
if [ $with_browser -eq 1 ]; then packages+=(chromium); fi
if [ $with_clang -eq 1 ]; then packages+=(clang libclang-rt-14-dev); fi
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
  apt_install "${missing[@]}"
fi

# A Python module the tests need from Debian: installed when missing and we are root; without
# root, a note that the tests using it will be skipped.
python_module() {  # python_module IMPORTS PACKAGE PURPOSE
  /usr/bin/python3 -c "import $1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: /usr/bin/python3 cannot import $1 and installing $2 needs root; $3 will be skipped" \
         "(sudo apt-get install --no-install-recommends $2)" >&2
    return 0
  fi
  echo "setup: installing $2 for $3"
  apt_install "$2"
  /usr/bin/python3 -c "import $1"  # fails here, with the reason, if the install did not work
}

if [ $with_torch -eq 1 ]; then
  python_module "torch, numpy" python3-torch "the PyTorch parity test (a minute or two)"
  python_module PIL python3-pil "the Pillow resize comparison"
fi

# nvcc for the CUDA backend (meson's cuda=auto builds it when the toolkit is there; a machine
# without a GPU still compiles it, and its tests skip).
if [ -x /usr/local/cuda/bin/nvcc ]; then
  case ":$PATH:" in *:/usr/local/cuda/bin:*) ;; *) export PATH=/usr/local/cuda/bin:$PATH ;; esac
fi

build_dir=${1:-build}
shift || true
if [ ! -f "$build_dir/build.ninja" ]; then
  meson setup "$build_dir" "$@" >/dev/null
elif [ $# -gt 0 ]; then
  # --reconfigure (not `meson configure`): an existing folder then also learns options added
  # to meson_options.txt since it was set up.
  meson setup --reconfigure "$build_dir" "$@" >/dev/null
fi
ninja -C "$build_dir" $targets | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Linking)' || true
ninja -C "$build_dir" $targets >/dev/null  # fails here (with the compiler's output) if the build is broken
