// One training step of ../shared/spec/MODELS.md's benchmark: forward of both towers, CLIP
// loss (+ ITM through the fusion model with cyclic negatives when it has fusion layers),
// backward, one AdamW step (lr 1e-4, weight decay 0.1). Random inputs: images N(0, 1), token
// ids uniform, the end-of-text token at a uniform position in [1, context).
//
//   bench_clip_step [--preset clip-tiny|clip-b32] [--batch N] [--steps N]
//
// Prints ms per step (median after 2 warm-up steps), samples/s, model GFLOP/s (matmul FLOPs
// of forward + backward, counted from the config) and peak resident memory.
#include <sys/resource.h>

#include <cstring>
#include <string>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "bench/bench_common.h"
#include "models/clip.h"
#include "models/objectives.h"
#include "train/optimizer.h"

using namespace mmgrad;

namespace {

// Matmul FLOPs of one forward pass (the backward pass costs twice as much).
double forward_flops(const nn::ModelConfig& c, int64_t B) {
  const double Wv = c.vision_width, Wt = c.text_width, E = c.embed_dim, P = c.patch_size;
  const double Nv = c.num_patches() + 1, C = c.context_length;
  double f = 0;
  f += 2.0 * B * (Nv - 1) * 3 * P * P * Wv;                    // patch embedding
  f += c.vision_layers * B * Nv * (24 * Wv * Wv + 4 * Nv * Wv);  // vision layers
  f += c.text_layers * B * C * (24 * Wt * Wt + 4 * C * Wt);      // text layers
  f += 2.0 * B * (Wv + Wt) * E + 2.0 * B * B * E;                // projections, logits
  if (c.fusion_layers > 0) {
    const double pairs = 2.0 * B;  // positives and cyclic negatives
    f += pairs * Nv * 2 * Wv * Wt;  // image_proj
    f += c.fusion_layers * pairs * (C * (28 * Wt * Wt + 4 * C * Wt + 4 * Nv * Wt) + Nv * 4 * Wt * Wt);
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  ensure_blas_kernels(argc, argv);
  std::string preset = "clip-tiny";
  int64_t batch = -1, steps = 7;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--preset") && i + 1 < argc) preset = argv[++i];
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoll(argv[++i]);
    else {
      fmt::print(stderr, "usage: {} [--preset clip-tiny|clip-b32] [--batch N] [--steps N]\n", argv[0]);
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
  std::vector<int64_t> ids = to_vector<int64_t>(randint(0, c.vocab_size - 1, {batch, c.context_length}, DType::I64, Device::cpu(), &gen));
  std::vector<int64_t> eot = to_vector<int64_t>(randint(1, c.context_length, {batch}, DType::I64, Device::cpu(), &gen));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < c.context_length; ++t)
      if (ids[b * c.context_length + t] == c.eot_token_id) ids[b * c.context_length + t] = 0;
    ids[b * c.context_length + eot[b]] = c.eot_token_id;
  }
  Tensor tokens = from_data(ids, {batch, c.context_length});
  // The benchmark's objectives: CLIP, plus ITM with one cyclic negative per sample.
  const nn::ObjectiveWeights weights{1.0, model.fusion_model ? 1.0 : 0.0, 0.0, /*hard_negatives=*/false};

  auto step = [&] {
    opt.zero_grad();
    nn::compute_losses(model, images, tokens, weights, gen).total.backward();
    opt.step(1e-4);
  };
  double ms = bench::median_ms(step, static_cast<int>(steps), 2);
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const double flops = 3 * forward_flops(c, batch);
  fmt::print("{:<10} {:>6} {:>12} {:>10} {:>12} {:>10} {:>10}\n", "preset", "batch", "params", "ms/step", "samples/s",
             "GFLOP/s", "peak RSS");
  fmt::print("{:<10} {:>6} {:>12} {:>10.1f} {:>12.1f} {:>10.1f} {:>7.0f} MiB\n", preset, batch,
             model.num_parameters(), ms, batch / ms * 1e3, flops / ms * 1e-6, ru.ru_maxrss / 1024.0);
  fmt::print("# model GFLOP per step (matmuls, forward + backward): {:.2f}\n", flops * 1e-9);
  return 0;
}
