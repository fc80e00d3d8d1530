// The same model on CUDA and on the CPU: clip-tiny with its fusion and caption heads (CLIP +
// ITM + caption objectives), same weights, same batch. The loss and every parameter's
// gradient must agree: in float64 to 1e-9 of the largest gradient (only summation order
// differs), in float32 to 2e-3 of it (with cyclic ITM negatives: hard negatives are drawn from similarities that
// differ in their last f32 bits), and under bf16 autocast on both to 2e-2 of it. Then one
// AdamW step must leave the same parameters. Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/autocast.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "models/clip.h"
#include "models/objectives.h"
#include "tests/core/gpu_test_util.h"
#include "train/optimizer.h"

using namespace mmgrad;
using namespace mmgrad::nn;

namespace {

#ifndef MMGRAD_HAVE_CUDA
MMGRAD_TEST_NEEDS_CUDA_BUILD(CudaModel)
#else
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

constexpr double kLr = 1e-3;

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

StepResult run_step(Device device, DType dtype, bool autocast_on = false) {
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
  AutocastBf16 autocast(device.type, autocast_on);
  Losses l = compute_losses(model, images, ids, ObjectiveWeights{1.0, 1.0, 1.0, /*hard_negatives=*/dtype == DType::F64}, negatives);
  l.total.backward();
  StepResult r;
  r.loss = item(l.total);
  for (auto& [name, p] : model.named_parameters())
    r.grads.emplace_back(name, p.grad().defined() ? to_vector<double>(p.grad()) : std::vector<double>{});
  opt.step(kLr);
  for (auto& [name, p] : model.named_parameters()) r.params_after.emplace_back(name, to_vector<double>(p));
  return r;
}

double max_abs(const std::vector<std::pair<std::string, std::vector<double>>>& named) {
  double m = 0;
  for (auto& [name, v] : named)
    for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// |got - want| <= atol per element. Tolerances scale with the largest gradient (or
// parameter) of the whole model, not of each tensor: some gradients are exactly zero in
// exact arithmetic (the key bias: softmax ignores a constant added to a row of scores) and
// both devices return rounding noise there.
void expect_close(const std::string& what, const std::vector<double>& got, const std::vector<double>& want,
                  double atol) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::abs(got[i] - want[i]) > atol) {
      ADD_FAILURE() << what << " element " << i << ": cuda " << got[i] << ", cpu " << want[i] << " (allowed "
                    << atol << ")";
      return;
    }
  }
}

void compare_devices(DType dtype, double tol, bool autocast_on = false) {
  MMGRAD_REQUIRE_GPU();
  // Under autocast, as `mmgrad train` runs mixed precision on a GPU: bf16 matmul precision,
  // so attention is composed of matmuls (which autocast rounds) on both devices.
  struct Precision {  // put back however the test ends
    cuda::MatmulPrecision previous = cuda::matmul_precision();
    ~Precision() { cuda::set_matmul_precision(previous); }
  } precision;
  if (autocast_on) cuda::set_matmul_precision(cuda::MatmulPrecision::BF16);
  FusedAttentionGuard attention(autocast_on ? false : fused_attention());
  StepResult cpu = run_step(Device::cpu(), dtype, autocast_on);
  StepResult gpu = run_step(Device::cuda(0), dtype, autocast_on);
  EXPECT_NEAR(gpu.loss, cpu.loss, tol * std::abs(cpu.loss)) << "loss";
  ASSERT_EQ(gpu.grads.size(), cpu.grads.size());
  int with_grad = 0;
  const double grad_atol = tol * max_abs(cpu.grads);
  // The first AdamW step moves each element by about lr * sign(gradient): in f32, an element
  // whose gradient is rounding noise can move either way on either device, so f32 allows
  // one step's move (2 * lr); f64 gradients agree far beyond that.
  const double param_atol = dtype == DType::F64 ? tol * max_abs(cpu.params_after) : 2 * kLr + 1e-7;
  for (size_t k = 0; k < cpu.grads.size(); ++k) {
    with_grad += !cpu.grads[k].second.empty();
    expect_close("gradient of " + cpu.grads[k].first, gpu.grads[k].second, cpu.grads[k].second, grad_atol);
    expect_close("after AdamW, " + cpu.params_after[k].first, gpu.params_after[k].second,
                 cpu.params_after[k].second, param_atol);
  }
  EXPECT_EQ(with_grad, static_cast<int>(cpu.grads.size())) << "every parameter takes part";
}

TEST(CudaModel, ClipTinyLossAndGradientsMatchTheCpuInFloat64) { compare_devices(DType::F64, 1e-9); }
TEST(CudaModel, ClipTinyLossAndGradientsMatchTheCpuInFloat32) { compare_devices(DType::F32, 2e-3); }
// Mixed precision (autograd/autocast.h) on both: the CPU widens the rounded operands exactly,
// the GPU multiplies them on bf16 tensor cores. f32 summation-order differences before a
// rounding can move a value to the next bf16 number, so 2e-2 of the largest gradient; a
// wrong layout or a missed rounding is off by far more.
TEST(CudaModel, ClipTinyUnderAutocastMatchesTheCpuUnderAutocast) { compare_devices(DType::F32, 2e-2, true); }
#endif  // MMGRAD_HAVE_CUDA

}  // namespace
