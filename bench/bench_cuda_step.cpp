// The MODELS.md benchmark step (as bench_clip_step) on CUDA: the model and the batch are
// moved to cuda:0, nothing else changes. Then, in the same run, the cuBLAS ceiling: every
// GEMM of the step at its own shape (attention's per-head products as one strided batch),
// run bare through the CUDA backend's matmul (with --precision bf16: on bf16 operands),
// count-weighted. MFU = model FLOP/s / ceiling.
//
//   bench_cuda_step [--preset clip-tiny|clip-b32] [--batch N] [--steps N] [--precision f32|tf32|bf16] [--graph]
//
// --graph: forward and backward recorded once as a CUDA graph (train/step_graph.h, the
// cuda_graph run key) and replayed each step; the optimizer runs eagerly after it, as in
// training. The kernel profile then covers only the eager part (a replay is one launch).
// --precision: how the f32 GEMMs run (backends/cuda/cuda.h); bf16 is the mixed-precision
// setting (bf16 tensor-core GEMMs under bf16 autocast, as `mmgrad train` runs it, everything
// else f32; --no-autocast: the GEMMs round their f32 operands themselves). With MMGRAD_CUDA_PROFILE=1 the
// GPU time per kernel over the timed steps is printed too.
//
// Prints ms per step (median of --steps after 3 warm-up steps; each step ends with a
// device synchronisation), samples/s, model TFLOP/s, ceiling TFLOP/s, MFU and peak device
// memory (the caching allocator's peak of live bytes). The last line is "RESULT key=value".
#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "autograd/autocast.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "bench/bench_common.h"
#include "models/clip.h"
#include "models/objectives.h"
#include "train/optimizer.h"
#include "train/step_graph.h"

#ifdef MMGRAD_HAVE_CUDA
#include "backends/cuda/bf16_operand.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/kernels.h"
#endif

using namespace mmgrad;

int main(int argc, char** argv) {
#ifndef MMGRAD_HAVE_CUDA
  (void)argc;
  (void)argv;
  fmt::print("bench_cuda_step: this build has no CUDA backend (meson -Dcuda=enabled)\n");
  return 0;
#else
  std::string preset = "clip-tiny";
  int64_t batch = 0, steps = 10;
  std::string precision = "f32";
  bool graph = false, no_autocast = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--preset") && i + 1 < argc) preset = argv[++i];
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--precision") && i + 1 < argc) precision = argv[++i];
    else if (!std::strcmp(argv[i], "--graph")) graph = true;
    else if (!std::strcmp(argv[i], "--no-autocast")) no_autocast = true;
    else {
      fmt::print(stderr, "usage: {} [--preset clip-tiny|clip-b32] [--batch N] [--steps N] [--precision f32|tf32|bf16] [--graph] [--no-autocast]\n", argv[0]);
      return 2;
    }
  }
  if (!cuda::available()) {
    fmt::print("bench_cuda_step: skipped, no usable GPU: {}\n", cuda::unavailable_reason());
    return 0;
  }
  cuda::set_matmul_precision(cuda::parse_matmul_precision(precision));
  // As `mmgrad train` does: bf16 matmuls round their operands once in the graph and keep
  // the rounded ones (autograd/autocast.h). --no-autocast leaves the rounding to each GEMM
  // call (backends/cuda/bf16_operand.h), the graph keeping f32 operands.
  const bool autocast_on = precision == "bf16" && cuda::bf16_gemm_operands() && !no_autocast;
  AutocastBf16 autocast(DeviceType::CUDA, autocast_on);
  const Device gpu = Device::cuda(0);
  nn::ModelConfig c = nn::preset(preset);
  if (batch <= 0) batch = c.batch_size;
  Generator gen(0);
  nn::ClipModel model(c, gen);
  model.to(gpu);
  train::AdamW opt(model.named_parameters(), 0.1);

  Tensor images = randn({batch, 3, c.image_size, c.image_size}, DType::F32, gpu, &gen);
  Tensor tokens = bench::random_clip_tokens(c, batch, gen, gpu);
  const nn::ObjectiveWeights weights{1.0, model.fusion_model ? 1.0 : 0.0, 0.0, /*hard_negatives=*/false};

  // Host time to issue one step (the CPU side: autograd, launches) is measured apart from the
  // whole step: when it is close to the step time, the step is launch-bound.
  std::vector<double> enqueue_ms;
  train::StepGraph step_graph(model, weights);
  int eager_steps = 0;
  auto step = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    // With --graph: two eager steps, then the recorded step (as the trainer does).
    if (graph && eager_steps >= 2) {
      (void)step_graph.run({nn::make_loss_inputs(images, tokens, weights, gen)});
    } else {
      nn::compute_losses(model, images, tokens, weights, gen).total.backward();
      ++eager_steps;
    }
    opt.step(1e-4);
    enqueue_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    cuda::synchronize();
  };
  cuda::reset_peak_device_memory();
  const int64_t mallocs_before = cuda::device_memory_stats().malloc_calls;
  const int timed = static_cast<int>(std::max<int64_t>(steps, 1));
  for (int i = 0; i < 3; ++i) step();  // warm-up (outside the profile too)
  cuda::profile_reset();
  const double ms = bench::median_ms(step, timed, 0);
  const std::string profile = cuda::profile_report(timed);
  const auto mem = cuda::device_memory_stats();
  const double peak_mib = static_cast<double>(mem.peak_in_use) / (1 << 20);
  std::sort(enqueue_ms.begin(), enqueue_ms.end());
  const double host_ms = enqueue_ms[enqueue_ms.size() / 2];
  const std::vector<bench::GemmShape> gemms = bench::clip_step_gemms(c, batch);
  const double flops = bench::total_flops(gemms);

  // The cuBLAS ceiling at the step's shapes. With bf16 GEMM operands (the default of mixed
  // precision, backends/cuda/bf16_operand.h) the operands are bf16 already, so the ceiling is
  // cuBLAS's bf16 GEMM alone and the step's rounding passes count against its MFU.
  const bool bf16_ceiling = precision == "bf16" && cuda::bf16_gemm_operands();
  double gemm_ms = 0;
  {
    NoGradGuard no_grad;
    const DType operands = bf16_ceiling ? DType::BF16 : DType::F32;
    for (const bench::GemmShape& s : gemms) {
      Tensor a = s.ta ? randn({s.batch, s.K, s.M}, DType::F32, gpu, &gen).to(operands).transpose(1, 2)
                      : randn({s.batch, s.M, s.K}, DType::F32, gpu, &gen).to(operands);
      Tensor b = s.tb ? randn({s.batch, s.N, s.K}, DType::F32, gpu, &gen).to(operands).transpose(1, 2)
                      : randn({s.batch, s.K, s.N}, DType::F32, gpu, &gen).to(operands);
      const Tensor out = Tensor::empty({s.batch, s.M, s.N}, DType::F32, gpu);
      const double one = bench::median_ms([&] {
        for (int r = 0; r < 10; ++r) cuda::matmul(out, a, b, /*accumulate=*/false);
        cuda::synchronize();
      }, 5, 1) / 10;
      gemm_ms += one * static_cast<double>(s.count);
    }
  }
  const double model_tflops = flops / ms * 1e-9, ceiling_tflops = flops / gemm_ms * 1e-9;
  fmt::print("# training step (MODELS.md benchmark) on cuda:0, f32, GEMMs at {} precision{}\n", precision,
             graph ? fmt::format(", forward and backward replayed as a CUDA graph of {} nodes", step_graph.nodes()) : "");
  fmt::print("{:<10} {:>6} {:>12} {:>10} {:>12} {:>10} {:>12} {:>8} {:>12}\n", "preset", "batch", "params", "ms/step",
             "samples/s", "TFLOP/s", "cuBLAS TF/s", "MFU", "peak mem");
  fmt::print("{:<10} {:>6} {:>12} {:>10.2f} {:>12.1f} {:>10.2f} {:>12.2f} {:>8.2f} {:>8.0f} MiB\n", preset, batch,
             model.num_parameters(), ms, batch / ms * 1e3, model_tflops, ceiling_tflops, model_tflops / ceiling_tflops,
             peak_mib);
  fmt::print("# GEMM FLOP per step: {:.3f} G; the same GEMMs bare through cuBLAS: {:.2f} ms\n", flops * 1e-9, gemm_ms);
  fmt::print("# host time to issue a step: {:.2f} ms (median); cudaMalloc calls during the timed steps: {}; "
             "reserved {:.0f} MiB\n",
             host_ms, mem.malloc_calls - mallocs_before, static_cast<double>(mem.reserved) / (1 << 20));
  if (cuda::profiling()) fmt::print("# GPU time per kernel over the timed steps:\n{}", profile);
  fmt::print("RESULT impl=mmgrad device=cuda preset={} batch={} precision={} gemm_operands={} autocast={} graph={} ms_per_step={:.3f} "
             "samples_per_s={:.2f} model_tflops={:.3f} ceiling_tflops={:.3f} mfu={:.3f} peak_mem_mib={:.1f} host_ms={:.2f}\n",
             preset, batch, precision, bf16_ceiling ? "bf16" : "f32", autocast_on ? 1 : 0, graph ? 1 : 0, ms, batch / ms * 1e3, model_tflops, ceiling_tflops,
             model_tflops / ceiling_tflops, peak_mib, host_ms);
  return 0;
#endif
}
