#!/usr/bin/env bash
# Fuzzing (issue 9): builds fuzz/ with clang, libFuzzer, AddressSanitizer and UBSan in
# build-fuzz/, replays each target's committed corpus (fuzz/corpus/<target>/), then fuzzes
# each target and prints one line per target: executions, speed, corpus growth, findings.
#
#   scripts/fuzz.sh                       every target for 60 s
#   scripts/fuzz.sh --seconds 20          every target for 20 s (what CI runs)
#   scripts/fuzz.sh --runs 1000000 image  one million executions of fuzz_image
#   scripts/fuzz.sh --no-build ...        skip the build (several campaigns side by side)
#   scripts/fuzz.sh --timeout 60 ...      seconds one input may take (default 10; raise it on a
#                                         loaded machine, where wall-clock time stretches)
#
# New inputs a run finds go to build-fuzz/corpus/<target>/ (never into the repository: copy
# the interesting ones into fuzz/corpus/ by hand, with a fix). A crash, sanitizer report,
# leak, hang over 10 s (--timeout) or memory over 2 GiB leaves its input in build-fuzz/findings/ and
# fails the script; reproduce with build-fuzz/fuzz/fuzz_<target> FILE.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
runs=""
build=1
timeout=10
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --timeout) timeout=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  targets=($(ls fuzz/corpus))
fi

# Only the fuzz programs (and the library under them) are built here.
fuzz_programs=$(for t in "${targets[@]}"; do printf 'fuzz/fuzz_%s ' "$t"; done)
[ $build -eq 0 ] || CXX=clang++ CC=clang scripts/setup.sh --with-clang --targets "$fuzz_programs" build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
  -Db_lundef=false -Dbuildtype=debugoptimized -Dcuda=disabled -Dmpi=disabled -Dnccl=disabled -Dpython=disabled \
  -Dtests=false -Dbenchmarks=false -Dexamples=false

export ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
mkdir -p build-fuzz/findings
status=0
printf '%-15s %12s %9s %14s %s\n' target executions "exec/s" "corpus" result
for t in "${targets[@]}"; do
  exe=build-fuzz/fuzz/fuzz_$t
  if [ ! -x "$exe" ]; then echo "fuzz.sh: no fuzz target '$t' (targets: $(ls fuzz/corpus | tr '\n' ' '))" >&2; exit 2; fi
  mkdir -p build-fuzz/corpus/$t
  log=build-fuzz/findings/$t.log
  limit=(-max_total_time="$seconds")
  if [ -n "$runs" ]; then limit=(-runs="$runs"); fi
  result=ok
  # The first folder receives new inputs; the committed corpus is only read.
  if ! "$exe" "${limit[@]}" -timeout="$timeout" -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix=build-fuzz/findings/$t- build-fuzz/corpus/$t fuzz/corpus/$t >"$log" 2>&1; then
    result="FINDING (see $log)"
    status=1
  fi
  execs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$log")
  speed=$(awk '/stat::average_exec_per_sec:/ {print $2}' "$log")
  seeds=$(ls fuzz/corpus/$t | wc -l)
  found=$(ls build-fuzz/corpus/$t | wc -l)
  printf '%-15s %12s %9s %14s %s\n' "$t" "${execs:-?}" "${speed:-?}" "$seeds + $found" "$result"
done
exit $status
