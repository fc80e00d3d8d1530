// The same model on CUDA and on the CPU: clip-tiny with its fusion and caption heads (CLIP +
// ITM + caption objectives), same weights, same batch. The loss and every parameter's
// gradient must agree: in float64 to 1e-9 (only summation order differs), in float32 to
// f32 rounding (with cyclic ITM negatives: hard negatives are drawn from similarities that
// differ in their last f32 bits). Then one AdamW step must leave the same parameters. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/ops.h"
#include "models/clip.h"
#include "models/objectives.h"
#include "train/optimizer.h"

#ifdef MMGRAD_HAVE_CUDA
#include "backends/cuda/cuda.h"
#endif

using namespace mmgrad;
using namespace mmgrad::nn;

namespace {

struct Batch {
  Tensor images, ids;
};

Batch make_batch(const ModelConfig& c, int64_t B) {
  Generator gen(21);
  Tensor images = randn({B, 3, c.image_size, c.image_size}, DType::F32, Device::cpu(), &gen);
  std::vector<int64_t> v = to_vector<int64_t>(randint(0, c.vocab_size - 1, {B, c.context_length}, DType::I64, Device::cpu(), &gen));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < c.context_length; ++t)
      if (v[b * c.context_length + t] == c.eot_token_id) v[b * c.context_length + t] = 0;
    v[b * c.context_length + 3 + 2 * b] = c.eot_token_id;
  }
  return {images, from_data(v, {B, c.context_length})};
}

ModelConfig config() {
  ModelConfig c = preset("clip-tiny");
  c.fusion_layers = 1;
  c.caption_layers = 1;
  return c;
}

// Loss and gradients of one step on `device` in `dtype`, and the parameters after AdamW.
struct StepResult {
  double loss = 0;
  std::vector<std::pair<std::string, std::vector<double>>> grads, params_after;
};

StepResult run_step(Device device, DType dtype) {
  const ModelConfig c = config();
  Generator init(7);
  ClipModel model(c, init);
  model.to(dtype);
  model.to(device);
  Batch batch = make_batch(c, 4);
  Tensor images = batch.images.to(dtype).to(device), ids = batch.ids.to(device);
  Generator negatives(9);
  train::AdamW opt(model.named_parameters(), 0.1);
  opt.zero_grad();
  Losses l = compute_losses(model, images, ids, ObjectiveWeights{1.0, 1.0, 1.0, /*hard_negatives=*/dtype == DType::F64}, negatives);
  l.total.backward();
  StepResult r;
  r.loss = item(l.total);
  for (auto& [name, p] : model.named_parameters())
    r.grads.emplace_back(name, p.grad().defined() ? to_vector<double>(p.grad()) : std::vector<double>{});
  opt.step(1e-3);
  for (auto& [name, p] : model.named_parameters()) r.params_after.emplace_back(name, to_vector<double>(p));
  return r;
}

// |got - want| <= tol * (max |want| over the tensor) + tiny, per element.
void expect_close(const std::string& what, const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::abs(w));
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::abs(got[i] - want[i]) > tol * scale + 1e-30) {
      ADD_FAILURE() << what << " element " << i << ": cuda " << got[i] << ", cpu " << want[i] << " (scale " << scale
                    << ", tolerance " << tol << ")";
      return;
    }
  }
}

void compare_devices(DType dtype, double tol) {
#ifdef MMGRAD_HAVE_CUDA
  if (!cuda::available()) GTEST_SKIP() << "no usable GPU: " << cuda::unavailable_reason();
  StepResult cpu = run_step(Device::cpu(), dtype);
  StepResult gpu = run_step(Device::cuda(0), dtype);
  EXPECT_NEAR(gpu.loss, cpu.loss, tol * std::abs(cpu.loss)) << "loss";
  ASSERT_EQ(gpu.grads.size(), cpu.grads.size());
  int with_grad = 0;
  for (size_t k = 0; k < cpu.grads.size(); ++k) {
    with_grad += !cpu.grads[k].second.empty();
    expect_close("gradient of " + cpu.grads[k].first, gpu.grads[k].second, cpu.grads[k].second, tol);
    expect_close("after AdamW, " + cpu.params_after[k].first, gpu.params_after[k].second,
                 cpu.params_after[k].second, tol);
  }
  EXPECT_EQ(with_grad, static_cast<int>(cpu.grads.size())) << "every parameter takes part";
#else
  (void)dtype;
  (void)tol;
  GTEST_SKIP() << "this build has no CUDA backend (meson -Dcuda=enabled)";
#endif
}

TEST(CudaModel, ClipTinyLossAndGradientsMatchTheCpuInFloat64) { compare_devices(DType::F64, 1e-9); }
TEST(CudaModel, ClipTinyLossAndGradientsMatchTheCpuInFloat32) { compare_devices(DType::F32, 2e-3); }

}  // namespace
