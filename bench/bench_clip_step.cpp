// One training step of ../shared/spec/MODELS.md's benchmark: forward of both towers, CLIP
// loss (+ ITM through the fusion model with cyclic negatives when it has fusion layers),
// backward, one AdamW step (lr 1e-4, weight decay 0.1). Random inputs: images N(0, 1), token
// ids uniform, the end-of-text token at a uniform position in [1, context).
//
//   bench_clip_step [--preset clip-tiny|clip-b32] [--batch N] [--steps N] [--sgemm-reps N]
//
// Prints ms per step (median of --steps after 2 warm-up steps), samples/s, model GFLOP/s
// (the FLOPs of every GEMM of forward + backward, bench_common.h's clip_step_gemms) and peak
// resident memory. Then, in the same run, a plain sgemm at the model's own shapes: every GEMM
// of the step run as a bare sgemm call (cblas_sgemm with OpenBLAS, mmgrad's builtin GEMM in
// a blas=none build; attention's per-head products as a loop of calls), each the median of
// --sgemm-reps runs, weighted by how often it occurs per step. Its GFLOP/s and the ratio
// model GFLOP/s / sgemm GFLOP/s (= sgemm time / step time: the share of the GEMM speed
// that the whole step reaches) follow. The last line ("RESULT key=value ...") is for
// bench/compare_torch.sh.
#include <sys/resource.h>

#include <cstring>
#include <random>
#include <string>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "backends/cpu/gemm.h"
#include "bench/bench_common.h"
#include "models/clip.h"
#include "models/objectives.h"
#include "train/optimizer.h"

#ifdef MMGRAD_HAVE_OPENBLAS
#include <cblas.h>
#endif

using namespace mmgrad;

namespace {

#ifdef MMGRAD_HAVE_OPENBLAS
constexpr const char* kSgemm = "cblas_sgemm";
#else
constexpr const char* kSgemm = "builtin gemm";
#endif

// Milliseconds of one occurrence of `s` (its `batch` products) as bare sgemm calls: the
// median of `reps` runs after one warm-up run.
double sgemm_ms(const bench::GemmShape& s, int reps, std::mt19937& rng) {
  const int64_t sa = s.M * s.K, sb = s.K * s.N, sc = s.M * s.N;
  std::vector<float> a(static_cast<size_t>(sa * s.batch)), b(static_cast<size_t>(sb * s.batch)),
      c(static_cast<size_t>(sc * s.batch));
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& x : a) x = dist(rng);
  for (float& x : b) x = dist(rng);
  const int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
  auto run = [&] {
    for (int64_t i = 0; i < s.batch; ++i) {
      const float* A = a.data() + i * sa;
      const float* B = b.data() + i * sb;
      float* C = c.data() + i * sc;
#ifdef MMGRAD_HAVE_OPENBLAS
      cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                  static_cast<int>(s.M), static_cast<int>(s.N), static_cast<int>(s.K), 1.0f, A, static_cast<int>(lda),
                  B, static_cast<int>(ldb), 0.0f, C, static_cast<int>(s.N));
#else
      cpu::gemm(s.M, s.N, s.K, 1.0f, A, s.ta ? 1 : lda, s.ta ? lda : 1, B, s.tb ? 1 : ldb, s.tb ? ldb : 1, 0.0f, C,
                s.N, 1);
#endif
    }
  };
  return bench::median_ms(run, reps, 1);
}

}  // namespace

int main(int argc, char** argv) {
  ensure_blas_kernels(argc, argv);
  std::string preset = "clip-tiny";
  int64_t batch = -1, steps = 7, sgemm_reps = 3;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--preset") && i + 1 < argc) preset = argv[++i];
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--sgemm-reps") && i + 1 < argc) sgemm_reps = std::atoll(argv[++i]);
    else {
      fmt::print(stderr, "usage: {} [--preset clip-tiny|clip-b32] [--batch N] [--steps N] [--sgemm-reps N]\n",
                 argv[0]);
      return 2;
    }
  }
  bench::print_header("training step (MODELS.md benchmark)");
  nn::ModelConfig c = nn::preset(preset);
  if (batch <= 0) batch = c.batch_size;
  Generator gen(0);
  nn::ClipModel model(c, gen);
  train::AdamW opt(model.named_parameters(), 0.1);

  Tensor images = randn({batch, 3, c.image_size, c.image_size}, DType::F32, Device::cpu(), &gen);
  Tensor tokens = bench::random_clip_tokens(c, batch, gen, Device::cpu());
  // The benchmark's objectives: CLIP, plus ITM with one cyclic negative per sample.
  const nn::ObjectiveWeights weights{1.0, model.fusion_model ? 1.0 : 0.0, 0.0, /*hard_negatives=*/false};

  auto step = [&] {
    opt.zero_grad();
    nn::compute_losses(model, images, tokens, weights, gen).total.backward();
    opt.step(1e-4);
  };
  const double ms = bench::median_ms(step, static_cast<int>(std::max<int64_t>(steps, 1)), 2);
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);  // before the sgemm reference allocates its buffers
  const double rss_mib = ru.ru_maxrss / 1024.0;
  const std::vector<bench::GemmShape> gemms = bench::clip_step_gemms(c, batch);
  const double flops = bench::total_flops(gemms);
  const double model_gflops = flops / ms * 1e-6;

  // The plain-sgemm reference at the step's own shapes, count-weighted.
  std::mt19937 rng(1234);
  double sgemm_total_ms = 0;
  for (const bench::GemmShape& s : gemms)
    sgemm_total_ms += static_cast<double>(s.count) * sgemm_ms(s, static_cast<int>(std::max<int64_t>(sgemm_reps, 1)), rng);
  const double sgemm_gflops = flops / sgemm_total_ms * 1e-6;

  fmt::print("{:<10} {:>6} {:>12} {:>10} {:>12} {:>10} {:>12} {:>8} {:>10}\n", "preset", "batch", "params", "ms/step",
             "samples/s", "GFLOP/s", "sgemm GF/s", "ratio", "peak RSS");
  fmt::print("{:<10} {:>6} {:>12} {:>10.1f} {:>12.1f} {:>10.1f} {:>12.1f} {:>8.2f} {:>6.0f} MiB\n", preset, batch,
             model.num_parameters(), ms, batch / ms * 1e3, model_gflops, sgemm_gflops, model_gflops / sgemm_gflops,
             rss_mib);
  fmt::print("# model GFLOP per step (all {} GEMM shapes of forward + backward): {:.3f}\n", gemms.size(),
             flops * 1e-9);
  fmt::print("# plain sgemm ({}) at those shapes, count-weighted: {:.1f} ms per step's worth, {:.1f} GFLOP/s; "
             "ratio = model GFLOP/s / sgemm GFLOP/s\n",
             kSgemm, sgemm_total_ms, sgemm_gflops);
  fmt::print("RESULT impl=mmgrad preset={} batch={} params={} threads={} ms_per_step={:.3f} samples_per_s={:.2f} "
             "gflop_per_step={:.6f} model_gflops={:.3f} sgemm_gflops={:.3f} peak_rss_mib={:.1f}\n",
             preset, batch, model.num_parameters(), num_threads(), ms, batch / ms * 1e3, flops * 1e-9, model_gflops,
             sgemm_gflops, rss_mib);
  return 0;
}
