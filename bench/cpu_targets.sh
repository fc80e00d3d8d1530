#!/usr/bin/env bash
# Issue 5's CPU targets in one table: each figure measured side by side in this run.
#
#   bench/cpu_targets.sh [--main-steps N] [--quick]
#
#  1. clip-tiny training step vs PyTorch (bench/compare_torch.sh, "as installed" column):
#     speed ratio (target >= 2.0), model GFLOP/s / sgemm GFLOP/s (target >= 0.60), and
#     peak RSS PyTorch / mmgrad (target >= 2.0, i.e. mmgrad at most half).
#  2. clip-b32 step at batch 8 vs PyTorch: speed ratio (target >= 1.5).
#  3. The main command's preset (shapes-small) now against "before issue 5": commit 196fddf,
#     the last before the issue's first change, built once into build-before-issue5/ (needs
#     git history; about 2 minutes). N training steps each, alternated twice, best samples/s
#     of each (target >= 2.0). Also printed, as earlier runs reported it: this binary with
#     the issue's switchable work turned off (OpenBLAS for f32 GEMMs, a pool that sleeps at
#     once, composed attention: MMGRAD_GEMM=blas MMGRAD_POOL_SPIN=0 MMGRAD_FUSED_ATTENTION=0),
#     which understates the gain (what cannot be switched off runs on both sides), and the
#     narrower GEMM + pool only figure. Without git history the switches are the "before".
# Every run uses OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs, Haswell on AVX2 ones (compare_torch.sh checks both
# sides use the same core). About 12 minutes on 2 cores; --quick runs fewer steps.
set -euo pipefail
cd "$(dirname "$0")/.."

main_steps=200
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --main-steps) main_steps=$2; shift 2 ;;
    --quick) quick=1; main_steps=60; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "cpu_targets: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
# A CPU-only build (as bench/compare_torch.sh): the CUDA libraries would add about 150 MiB of
# resident memory to every figure.
bench_build=${MMGRAD_BENCH_BUILD:-build-cpu}
export MMGRAD_BENCH_BUILD=$bench_build
if [ ! -f "$bench_build/build.ninja" ]; then scripts/setup.sh "$bench_build" -Dcuda=disabled -Dtests=false; fi
ninja -C "$bench_build" apps/mmgrad bench/bench_clip_step >/dev/null
# The OpenBLAS kernel for this CPU, as compare_torch.sh picks it (Debian's 0.3.21 does not
# recognise these CPUs by itself).
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
if [[ " $flags " == *" avx512f "* ]]; then export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE_BENCH:-SkylakeX}
elif [[ " $flags " == *" avx2 "* ]]; then export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE_BENCH:-Haswell}
fi
export MMGRAD_BLAS_OVERRIDE_CORETYPE=1

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

# "as installed: mmgrad is 3.66x as fast ...; peak RSS torch / mmgrad = 1.49 (...); mmgrad model/sgemm GFLOP/s = 0.89"
field() { sed -n "s/^as installed: .*$1 \([0-9.]*\).*/\1/p" "$2" | head -1; }

echo "# clip-tiny vs PyTorch (bench/compare_torch.sh)"
if [ $quick -eq 1 ]; then tiny_args=(--steps 3 --rounds 1); else tiny_args=(); fi
bash bench/compare_torch.sh "${tiny_args[@]}" > "$log/tiny.txt"
echo "# clip-b32 at batch 8 vs PyTorch"
bash bench/compare_torch.sh --preset clip-b32 --batch 8 --steps 3 --rounds 1 > "$log/b32.txt"

tiny_speed=$(sed -n 's/^as installed: mmgrad is \([0-9.]*\)x.*/\1/p' "$log/tiny.txt")
tiny_rss=$(field "peak RSS torch \/ mmgrad =" "$log/tiny.txt")
tiny_ratio=$(field "mmgrad model\/sgemm GFLOP\/s =" "$log/tiny.txt")
b32_speed=$(sed -n 's/^as installed: mmgrad is \([0-9.]*\)x.*/\1/p' "$log/b32.txt")

# "Before issue 5" is the code itself as it was: commit 196fddf, the last one before the
# issue's first change (871c6b7), built once into build-before-issue5/ from git's history.
# Without the history (an exported tree) the switches stand in for it, which understates the
# gain: everything of the issue that cannot be switched off then runs on both sides.
before_commit=196fddf
before_app=""
if git rev-parse --verify -q "$before_commit^{commit}" >/dev/null 2>&1; then
  before_dir=build-before-issue5
  if [ ! -x "$before_dir/build/apps/mmgrad" ]; then
    echo "# building commit $before_commit (before issue 5) into $before_dir/ (once, about 2 minutes)"
    rm -rf "$before_dir" && mkdir -p "$before_dir/src"
    if ! { git archive "$before_commit" | tar -x -C "$before_dir/src" &&
           meson setup "$before_dir/build" "$before_dir/src" -Dcuda=disabled -Dtests=false -Dbenchmarks=false \
             >"$log/before_build.log" 2>&1 &&
           ninja -C "$before_dir/build" apps/mmgrad >>"$log/before_build.log" 2>&1; }; then
      echo "# commit $before_commit did not build here (the switches stand in for it):"
      tail -5 "$log/before_build.log" | sed 's/^/#   /'
      rm -rf "$before_dir"
    fi
  fi
  [ -x "$before_dir/build/apps/mmgrad" ] && before_app=$before_dir/build/apps/mmgrad
fi
echo "# shapes-small, $main_steps steps each, alternated twice, best samples/s of each:"
echo "#   before = ${before_app:-(no build of it) this binary with MMGRAD_GEMM=blas MMGRAD_POOL_SPIN=0 MMGRAD_FUSED_ATTENTION=0}"
rate() {  # samples/s of one short training run: rate APP [VAR=VALUE...]
  local app=$1
  shift
  env "$@" "$app" train --set steps="$main_steps" --set checkpoint_every=100000 \
    --run-dir "$log/run" --eval-samples 20 2>&1 | sed -n 's/^trained steps .*(\([0-9.]*\) samples\/s).*/\1/p'
  rm -rf "$log/run"
}
now_app=$bench_build/apps/mmgrad
best_before=0 best_switched=0 best_narrow=0 best_now=0
for round in 1 2; do
  commit_figure=""
  if [ -n "$before_app" ]; then
    b=$(rate "$before_app")
    best_before=$(python3 -c "print(max($best_before, $b))")
    commit_figure="commit $before_commit $b, "
  fi
  s=$(rate "$now_app" MMGRAD_GEMM=blas MMGRAD_POOL_SPIN=0 MMGRAD_FUSED_ATTENTION=0)
  g=$(rate "$now_app" MMGRAD_GEMM=blas MMGRAD_POOL_SPIN=0)
  n=$(rate "$now_app" MMGRAD_GEMM=builtin)
  echo "#   round $round: ${commit_figure}now with the switches off $s, GEMM + pool only off $g, now $n samples/s"
  best_switched=$(python3 -c "print(max($best_switched, $s))")
  best_narrow=$(python3 -c "print(max($best_narrow, $g))")
  best_now=$(python3 -c "print(max($best_now, $n))")
done
if [ -z "$before_app" ]; then best_before=$best_switched; fi
main_speed=$(python3 -c "print(f'{$best_now / $best_before:.2f}')")
switched_speed=$(python3 -c "print(f'{$best_now / $best_switched:.2f}')")
narrow_speed=$(python3 -c "print(f'{$best_now / $best_narrow:.2f}')")

echo
printf '%-58s %10s %10s %6s\n' "target" "required" "measured" "met"
row() { printf '%-58s %10s %10s %6s\n' "$1" ">= $2" "$3" "$(python3 -c "print('yes' if $3 >= $2 else 'NO')")"; }
row "clip-tiny step, speed vs PyTorch (x)" 2.0 "$tiny_speed"
row "clip-tiny model GFLOP/s / sgemm GFLOP/s at its shapes" 0.60 "$tiny_ratio"
row "clip-tiny peak RSS, PyTorch / mmgrad (x)" 2.0 "$tiny_rss"
row "clip-b32 step at batch 8, speed vs PyTorch (x)" 1.5 "$b32_speed"
row "shapes-small samples/s, now / before issue 5 (x)" 2.0 "$main_speed"
echo "(shapes-small now / this binary with the GEMM, pool and attention switched back: ${switched_speed}x;"
echo " with only the GEMM and the pool switched back: ${narrow_speed}x)"
echo "(PyTorch as installed with the same threads and OpenBLAS core; compare_torch.sh's full tables:"
echo " bench/compare_torch.sh [--preset clip-b32 --batch 8])"
