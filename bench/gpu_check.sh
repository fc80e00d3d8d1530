#!/usr/bin/env bash
# The one script for a machine with an NVIDIA GPU: builds mmgrad with CUDA, runs the CUDA
# tests (backend, every op against the CPU, float64 gradchecks on the GPU, clip-tiny on GPU
# vs CPU), then the clip-tiny and clip-b32 training-step benchmarks next to the same steps
# in PyTorch (eager; f32, TF32 and bf16 autocast), a kernel profile of each, short
# shapes-small training runs on the GPU in f32 and with bf16 matmuls (loss curves side by
# side), and prints one table. Logs go to $OUT (default gpu_check_out/).
#
#   bench/gpu_check.sh [--quick]      # --quick: tests and clip-tiny only
#
# Needs nvcc (/usr/local/cuda/bin), meson, ninja, a C++20 compiler, and python3 with torch
# for the PyTorch side (skipped with a note when missing). Budget: under 8 minutes on an
# H100/H200 (most of it the build).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
# Logs are written to LOGS; failing tests' logs and the summaries are copied to OUT at the end
# (the device tool brings back at most 8 files).
LOGS=$(mktemp -d)
export PATH=/usr/local/cuda/bin:$PATH
quick=0
[ "${1:-}" = "--quick" ] && quick=1
t_start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t_start )) s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')
stamp "configure (gpu_arch=${arch:-90})"
if [ ! -f build-gpu/build.ninja ]; then
  meson setup build-gpu -Dcuda=enabled -Dgpu_arch="${arch:-90}" >"$LOGS/setup.log" 2>&1 || { tail -30 "$LOGS/setup.log"; exit 1; }
fi
stamp "build"
targets=(tests/test_backends tests/test_models tests/test_ops tests/test_autograd tests/test_train bench/bench_cuda_step apps/mmgrad)
grep -q "build tests/dist_probe" build-gpu/build.ninja 2>/dev/null && targets+=(tests/dist_probe)
ninja -C build-gpu "${targets[@]}" >"$LOGS/build.log" 2>&1 || { grep -E "error|FAILED" "$LOGS/build.log" | head -40; exit 1; }
stamp "built"

status=0
run_test() {  # run_test NAME BINARY FILTER
  if "build-gpu/tests/$2" --gtest_filter="$3" >"$LOGS/$1.log" 2>&1; then
    echo "PASS $1: $(grep -E '^\[  PASSED  \]' "$LOGS/$1.log") $(grep -E '^\[  SKIPPED \] [0-9]' "$LOGS/$1.log")"
  else
    status=1
    echo "FAIL $1"
    grep -E -A3 "Failure|threw" "$LOGS/$1.log" | head -40
    cp "$LOGS/$1.log" "$OUT/"
  fi
}
run_test cuda_backend test_backends 'Cuda.*:SumOfSquares.Cuda*:LinearOnCuda.*'
# Mixed precision's GEMMs on operands rounded to bf16 (every layout, the linear layer), and the
# column-reduction kernel (bias gradients) at the models' sizes.
run_test bf16_gemm test_backends 'Bf16GemmCuda.*'
run_test reduce_columns test_backends 'ReduceOnCuda.*'
# CUDA graphs: replay on new inputs, the graph's private memory, errors inside a capture and a
# replay; then whole training runs recorded and replayed against the same runs done eagerly.
run_test cuda_graph test_backends 'CudaGraph.*'
run_test step_graph test_train 'StepGraph.*'
run_test cuda_model test_models 'CudaModel*'
run_test op_parity test_ops 'Ops/OpDeviceParity*:OpParityDevices*'
run_test op_gradcheck test_ops 'Ops/OpGradcheckDevice*'
# The fused attention kernels (attention.cu) at the models' sizes against the CPU's.
run_test fused_attention test_autograd 'FusedAttention.Cuda*'
# bf16 autocast on the CPU and the GPU against the f64 products of the rounded operands.
run_test autocast test_autograd 'Autocast.*'
# The multi-tensor AdamW (one launch per 40 parameters) against the CPU's.
run_test fused_adamw test_train 'AdamW.Cuda*'
# Issue 7's NCCL path as a 1-rank check: the collectives on cuda:0, then a few training
# steps whose gradients go through NCCL's bucketed all-reduce.
if [ -x build-gpu/tests/dist_probe ]; then
  if build-gpu/tests/dist_probe nccl >"$LOGS/nccl.log" 2>&1 &&
     build-gpu/apps/mmgrad train --set device=cuda --set dist_backend=nccl --set steps=20 --set log_every=10 \
       --run-dir "$LOGS/run-nccl" --eval-samples 20 >>"$LOGS/nccl.log" 2>&1; then
    echo "PASS nccl: $(grep -E '^nccl ok' "$LOGS/nccl.log"); $(grep -E '^step 20/' "$LOGS/nccl.log")"
  else
    status=1
    echo "FAIL nccl"
    tail -20 "$LOGS/nccl.log"
    cp "$LOGS/nccl.log" "$OUT/"
  fi
else
  echo "SKIP nccl: this build has no NCCL (dist_probe not built)"
fi
stamp "tests done"

have_torch=1
python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null || { have_torch=0; echo "no PyTorch with CUDA here: the PyTorch column is skipped"; }
results="$LOGS/results.txt"
: >"$results"
bench() {  # bench LABEL COMMAND...
  local label=$1
  shift
  local line
  if line=$("$@" 2>"$LOGS/bench_err.log" | tee -a "$OUT/bench.log" | grep '^RESULT'); then
    echo "$label $line" >>"$results"
  else
    echo "$label FAILED" >>"$results"
    tail -5 "$LOGS/bench_err.log"
  fi
}
presets=("clip-tiny:128")
[ $quick -eq 0 ] && presets+=("clip-b32:256")
for pb in "${presets[@]}"; do
  p=${pb%%:*}
  b=${pb##*:}
  stamp "bench $p batch $b"
  bench "mmgrad-f32 $p" build-gpu/bench/bench_cuda_step --preset "$p" --batch "$b" --steps 10
  [ "$p" = clip-b32 ] && bench "mmgrad-tf32 $p" build-gpu/bench/bench_cuda_step --preset "$p" --batch "$b" --steps 10 --precision tf32
  bench "mmgrad-bf16 $p" build-gpu/bench/bench_cuda_step --preset "$p" --batch "$b" --steps 10 --precision bf16
  # Forward and backward replayed as one CUDA graph (the cuda_graph run key).
  bench "mmgrad-f32-graph $p" build-gpu/bench/bench_cuda_step --preset "$p" --batch "$b" --steps 10 --graph
  bench "mmgrad-bf16-graph $p" build-gpu/bench/bench_cuda_step --preset "$p" --batch "$b" --steps 10 --precision bf16 --graph
  # The same step with attention composed of matmul and softmax kernels: what the fused
  # attention kernels gain (or lose) at this model's sizes.
  # (the fused kernels run only with f32 matmuls: autograd/ops_nn.cpp, fused_attention_pays).
  MMGRAD_FUSED_ATTENTION=0 bench "mmgrad-f32-unfused-attn $p" build-gpu/bench/bench_cuda_step --preset "$p" --batch "$b" --steps 10
  # Attention's head views copied into dense operands before their GEMMs (the composed
  # attention of TF32/bf16), against the pointer-array batched GEMM that reads them in place.
  MMGRAD_CUDA_POINTER_BATCH=0 bench "mmgrad-bf16-copied-heads $p" build-gpu/bench/bench_cuda_step --preset "$p" --batch "$b" --steps 10 --precision bf16
  # bf16 GEMMs as cuBLAS's FAST_16BF compute type on the f32 operands, against the default:
  # operands rounded to bf16 tensors first and bf16 GEMMs (backends/cuda/bf16_operand.h).
  MMGRAD_CUDA_BF16_OPERANDS=0 bench "mmgrad-bf16-fast16bf $p" build-gpu/bench/bench_cuda_step --preset "$p" --batch "$b" --steps 10 --precision bf16
  # bf16 autocast off (autograd/autocast.h): each GEMM rounds its f32 operands itself and the
  # graph keeps f32 operands for backward; what rounding once in the graph gains.
  bench "mmgrad-bf16-no-autocast $p" build-gpu/bench/bench_cuda_step --preset "$p" --batch "$b" --steps 10 --precision bf16 --no-autocast
  # Linear layers without cuBLASLt's bias epilogue: the bias broadcast into the output, then the
  # product accumulated onto it (backends/cuda/matmul_bias.cpp's fallback).
  MMGRAD_CUDA_LT=0 bench "mmgrad-bf16-no-lt-bias $p" build-gpu/bench/bench_cuda_step --preset "$p" --batch "$b" --steps 10 --precision bf16
  # Where the GPU time goes (events around every kernel: slower, so not in the table).
  precision=f32
  [ "$p" = clip-b32 ] && precision=bf16
  MMGRAD_CUDA_PROFILE=1 build-gpu/bench/bench_cuda_step --preset "$p" --batch "$b" --steps 3 --precision $precision \
    2>&1 | sed -n '/GPU time per kernel/,/^total/p' | head -24
  if [ $have_torch -eq 1 ]; then
    bench "torch-f32 $p" python3 bench/torch_clip_step.py --device cuda --preset "$p" --batch "$b" --steps 10
    [ "$p" = clip-b32 ] && bench "torch-tf32 $p" python3 bench/torch_clip_step.py --device cuda --preset "$p" --batch "$b" --steps 10 --tf32
    bench "torch-bf16 $p" python3 bench/torch_clip_step.py --device cuda --preset "$p" --batch "$b" --steps 10 --amp bf16
  fi
done

if [ $quick -eq 0 ]; then
  # The default preset on the GPU in f32 and with bf16 matmuls: the loss curves side by side.
  for prec in f32 bf16; do
    stamp "train shapes-small on cuda, matmul_precision=$prec (300 steps)"
    mkdir -p "$LOGS/run-$prec"
    build-gpu/apps/mmgrad train --set device=cuda --set matmul_precision=$prec --set steps=300 \
      --run-dir "$LOGS/run-$prec" --eval-samples 200 >"$LOGS/train-$prec.log" 2>&1 || { status=1; tail -20 "$LOGS/train-$prec.log"; }
    grep -E "samples/s\)|shape accuracy|colour accuracy" "$LOGS/train-$prec.log"
  done
  # The same f32 run with the step recorded as a CUDA graph: the same curve, faster.
  stamp "train shapes-small on cuda, f32, cuda_graph=true (300 steps)"
  mkdir -p "$LOGS/run-graph"
  build-gpu/apps/mmgrad train --set device=cuda --set cuda_graph=true --set steps=300 \
    --run-dir "$LOGS/run-graph" --eval-samples 200 >"$LOGS/train-graph.log" 2>&1 || { status=1; tail -20 "$LOGS/train-graph.log"; }
  grep -E "cuda_graph:|samples/s\)|shape accuracy|colour accuracy" "$LOGS/train-graph.log"
  cp "$LOGS/run-f32/metrics.jsonl" "$OUT/metrics-f32.jsonl" 2>/dev/null
  python3 - "$LOGS/run-f32/metrics.jsonl" "$LOGS/run-graph/metrics.jsonl" <<'PY'
import json, sys
runs = [[json.loads(l) for l in open(f)] for f in sys.argv[1:3]]
worst = max((abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(*runs) if "loss" in a and "loss" in b), default=-1)
print(f"f32 eager vs f32 cuda_graph: {len(runs[1])} steps, largest relative loss difference {worst:.2e}")
PY
  python3 - "$LOGS/run-f32/metrics.jsonl" "$LOGS/run-bf16/metrics.jsonl" <<'PY'
import json, sys
runs = [[json.loads(l) for l in open(f)] for f in sys.argv[1:3]]
print("step   loss f32  loss bf16  |diff|/f32")
worst = 0.0
for a, b in zip(*runs):
    if a["step"] % 25 == 0:
        d = abs(a["loss"] - b["loss"]) / abs(a["loss"])
        worst = max(worst, d) if a["step"] >= 50 else worst
        print(f"{a['step']:>4} {a['loss']:>10.4f} {b['loss']:>10.4f} {d:>10.4f}")
print(f"largest relative difference from step 50 on: {worst:.4f}")
PY
fi

stamp "table"
python3 - "$results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    parts = line.split()
    label, preset = parts[0], parts[1]
    kv = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
    rows[(label, preset)] = kv
print(f"{'implementation':<26} {'preset':<10} {'batch':>6} {'ms/step':>9} {'samples/s':>10} {'vs torch-f32':>13} {'vs torch-bf16':>14} {'MFU':>6} {'peak MiB':>9}")
for (label, preset), kv in rows.items():
    if "ms_per_step" not in kv:
        print(f"{label:<26} {preset:<10} FAILED"); continue
    ms = float(kv["ms_per_step"])
    def ratio(ref):
        r = rows.get((ref, preset), {})
        return f"{float(r['ms_per_step']) / ms:.2f}x" if "ms_per_step" in r else "-"
    mem = kv.get("peak_mem_mib", kv.get("peak_rss_mib", "-"))
    mfu = kv.get("mfu", "-")
    print(f"{label:<26} {preset:<10} {kv.get('batch','-'):>6} {ms:>9.2f} {float(kv['samples_per_s']):>10.1f} "
          f"{ratio('torch-f32'):>13} {ratio('torch-bf16'):>14} {mfu:>6} {mem:>9}")
print("ratios: the reference's ms/step divided by this row's (above 1: this row is faster)")
PY
stamp "done (status $status)"
exit $status
