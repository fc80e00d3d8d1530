#!/usr/bin/env bash
# Data-parallel scaling on this machine: the main command's model (shapes-small, batch 64)
# trained for N steps by
#   1 rank x 1 thread, 1 rank x all cores' threads, and N ranks x (cores / N) threads,
# with samples/s, the speed-up over 1 rank x 1 thread, and the share of the step spent in
# collectives on rank 0 (gradient all-reduce, feature gathers and their backward), with the
# part of it that was not hidden behind backward (the wait after backward).
#
#   bench/dist_scaling.sh [--steps N] [--ranks N]
#
# Uses OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs (the same kernels for every run).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=60
ranks=2
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "dist_scaling: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
command -v mpirun >/dev/null || { echo "dist_scaling: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 1; }
build=${MMGRAD_BENCH_BUILD:-build}
ninja -C "$build" apps/mmgrad >/dev/null
if grep -qm1 avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi
export MMGRAD_BLAS_OVERRIDE_CORETYPE=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cores=$(nproc)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One run: prints "samples/s busy_ms wait_ms" (communication per step).
run() {  # run RANKS THREADS
  local dir="$tmp/r$1x$2"
  local cmd=("$build/apps/mmgrad" train --set steps="$steps" --set checkpoint_every=100000 --set log_every=10
             --run-dir "$dir" --eval-samples 20)
  local out
  if [ "$1" -eq 1 ]; then out=$(MMGRAD_NUM_THREADS=$2 "${cmd[@]}" 2>&1)
  else out=$(mpirun -np "$1" --oversubscribe -x MMGRAD_NUM_THREADS="$2" "${cmd[@]}" 2>&1); fi
  local rate busy wait
  rate=$(sed -n 's/^trained steps .*(\([0-9.]*\) samples\/s).*/\1/p' <<< "$out")
  busy=$(sed -n 's/^communication: \([0-9.]*\) ms per step.*/\1/p' <<< "$out")
  wait=$(sed -n 's/^communication: .*), \([0-9.]*\) ms of it not hidden.*/\1/p' <<< "$out")
  [ -n "$rate" ] || { echo "dist_scaling: run with $1 rank(s) failed:" >&2; echo "$out" >&2; exit 1; }
  echo "$rate ${busy:-0} ${wait:-0}"
  rm -rf "$dir"
}

echo "# shapes-small, batch 64, $steps steps; $cores cores; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-default}"
read -r base _ <<< "$(run 1 1)"
read -r one_all _ <<< "$(run 1 "$cores")"
per_rank=$(( cores / ranks > 0 ? cores / ranks : 1 ))
read -r multi busy wait <<< "$(run "$ranks" "$per_rank")"
printf '%-26s %10s %9s %24s %22s\n' configuration samples/s speed-up "communication per step" "not hidden (waited)"
printf '%-26s %10s %8.2fx %24s %22s\n' "1 rank x 1 thread" "$base" 1 "-" "-"
printf '%-26s %10s %8.2fx %24s %22s\n' "1 rank x $cores threads" "$one_all" "$(echo "$one_all / $base" | bc -l)" "-" "-"
step_ms=$(echo "64 * 1000 / $multi" | bc -l)
printf '%-26s %10s %8.2fx %12.1f ms (%4.1f%%) %12.1f ms (%4.1f%%)\n' "$ranks ranks x $per_rank thread(s)" "$multi" \
       "$(echo "$multi / $base" | bc -l)" "$busy" "$(echo "100 * $busy / $step_ms" | bc -l)" "$wait" \
       "$(echo "100 * $wait / $step_ms" | bc -l)"
