#!/usr/bin/env bash
# The whole test suite: install, build (default build with OpenBLAS, and the constrained
# build with blas=none, cuda=disabled and mpi=disabled), run every test; then the sanitizer
# builds (scripts/sanitizers.sh: ASan+UBSan over the suite, TSan over the threaded parts)
# and a short fuzzing run of every parser (scripts/fuzz.sh, FUZZ_SECONDS each, default 20);
# print one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."

# python3-torch for the PyTorch parity test, MPI for dist/, pybind11 and pytest for python/,
# chromium to render report.html
scripts/setup.sh --with-torch --with-mpi --with-python --with-browser build
scripts/setup.sh build-noblas -Dblas=none -Dcuda=disabled -Dmpi=disabled -Dpython=disabled -Dbenchmarks=false

status=0
meson test -C build --print-errorlogs --num-processes 1 || status=1
meson test -C build-noblas --print-errorlogs --num-processes 1 || status=1
scripts/sanitizers.sh || status=1
scripts/fuzz.sh --seconds "${FUZZ_SECONDS:-20}" || status=1

# One closing line for CI, counting GoogleTest cases over the four builds.
counts=$(awk '/^\[  PASSED  \] [0-9]+ test/ {p += $4}
              /^\[  FAILED  \] [0-9]+ test/ {f += $4}
              /^\[  SKIPPED \] [0-9]+ test/ {s += $4}
              END {print p+0, f+0, s+0}' build/meson-logs/testlog.txt build-noblas/meson-logs/testlog.txt \
                build-asan/meson-logs/testlog.txt build-tsan/meson-logs/testlog.txt)
read -r passed failed skipped <<< "$counts"
if [ $status -ne 0 ] && [ $failed -eq 0 ]; then failed=1; fi  # a suite crashed before reporting
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
