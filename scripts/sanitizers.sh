#!/usr/bin/env bash
# Sanitizer builds (issue 9), run by scripts/test.sh:
#  - build-asan: AddressSanitizer + UndefinedBehaviorSanitizer (gcc), the whole test suite
#    including the fuzz corpus replays. Left out there, and why: CUDA (no GPU in CI, and
#    its tests skip anyway), MPI (Open MPI is not instrumented and reports its own leaks;
#    the 2-rank tests run in the main build), the Python module (needs the ASan runtime
#    preloaded into python3) and the install test (builds an outside project).
#  - build-tsan: ThreadSanitizer on what runs threads: the thread pool and parallel loops
#    (core suite), the data loader (data suite) and a short `mmgrad train` with loader
#    workers, the thread pool and the trainer together. blas=none: OpenBLAS's own threads
#    are not instrumented, and TSan would misreport them.
# Every sanitizer report fails the run (halt_on_error).
set -euo pipefail
cd "$(dirname "$0")/.."

which=${1:-all}
status=0
# -O1 with line tables only (-g1): about half the compile time of -O2 -g, readable stacks.
# -Wno-maybe-uninitialized: under -fsanitize GCC 12 reports it falsely inside libstdc++'s
# <regex> (GCC's manual warns that sanitizers make this warning unreliable).
common=(-Doptimization=1 -Ddebug=false "-Dcpp_args=['-g1','-Wno-maybe-uninitialized']" -Dcuda=disabled -Dmpi=disabled -Dnccl=disabled -Dpython=disabled -Dexamples=false -Dbenchmarks=false)

if [ "$which" = all ] || [ "$which" = asan ]; then
  scripts/setup.sh build-asan -Db_sanitize=address,undefined "${common[@]}"
  # allocator_may_return_null: a failed allocation returns null (as malloc does) so that the
  # out-of-memory tests see mmgrad's own error instead of ASan's abort.
  export ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  tests=$(meson test -C build-asan --list 2>/dev/null | sed -n 's/^mmgrad:[^ ]* \/ //p; s/^mmgrad \/ //p' | grep -vx install)
  meson test -C build-asan --no-rebuild --print-errorlogs --num-processes 1 $tests || status=1
  unset ASAN_OPTIONS UBSAN_OPTIONS
fi

if [ "$which" = all ] || [ "$which" = tsan ]; then
  scripts/setup.sh --targets "tests/test_core tests/test_data apps/mmgrad" build-tsan -Db_sanitize=thread -Dblas=none \
    "${common[@]}"
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:allocator_may_return_null=1
  meson test -C build-tsan --no-rebuild --print-errorlogs --num-processes 1 core data || status=1
  run_dir=$(mktemp -d)
  if ! MMGRAD_NUM_THREADS=2 build-tsan/apps/mmgrad train --run-dir "$run_dir/run" --set steps=6 --set train_size=400 \
       --set eval_size=20 --set workers=2 --set log_every=2 >"$run_dir/train.log" 2>&1; then
    echo "sanitizers.sh: mmgrad train under ThreadSanitizer failed:" >&2
    tail -60 "$run_dir/train.log" >&2
    status=1
  else
    echo "mmgrad train (6 steps, 2 loader workers, 2 threads) under ThreadSanitizer: no report"
  fi
  rm -rf "$run_dir"
fi
exit $status
