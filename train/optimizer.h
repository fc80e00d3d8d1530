// Optimizers (AdamW, SGD with momentum), the learning-rate schedule and gradient clipping.
// Updates are written with in-place ops under NoGradGuard, so they run on every backend.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace mmgrad::train {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Weight decay applies to matrices and embeddings, not to 1-D parameters (biases,
// LayerNorm) nor to scalars such as logit_scale.
bool decays(const std::string& name, const Tensor& param);

// Create optimizers after moving the model to its device and dtype: the state is allocated
// like the parameters at construction.
class Optimizer {
 public:
  explicit Optimizer(NamedTensors params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  // One update from the parameters' current .grad (parameters without a gradient are left
  // alone). `lr` is the learning rate for this step.
  virtual void step(double lr) = 0;
  void zero_grad();
  // The optimizer state by name ("exp_avg.<param>", ...), for checkpoints.
  virtual NamedTensors state() const = 0;
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }
  const NamedTensors& params() const { return params_; }

 protected:
  NamedTensors params_;
  int64_t steps_ = 0;
};

// Decoupled weight decay (Loshchilov & Hutter), bias-corrected moments; the same arithmetic
// as torch.optim.AdamW: p *= 1 - lr wd; p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
class AdamW : public Optimizer {
 public:
  AdamW(NamedTensors params, double weight_decay = 0.1, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8);
  void step(double lr) override;
  NamedTensors state() const override;

 private:
  double weight_decay_, beta1_, beta2_, eps_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
};

// SGD with momentum (buf = momentum * buf + g, starting at g; p -= lr * buf) and coupled
// weight decay (g += wd * p) on the parameters that decays() selects, as torch.optim.SGD.
class SGD : public Optimizer {
 public:
  SGD(NamedTensors params, double momentum = 0.9, double weight_decay = 0.0);
  void step(double lr) override;
  NamedTensors state() const override;

 private:
  double momentum_, weight_decay_;
  std::vector<Tensor> buffer_;
};

// Linear warmup from 0 to base_lr over warmup_steps, then cosine decay to min_lr at
// total_steps (and min_lr after).
double warmup_cosine_lr(int64_t step, int64_t warmup_steps, int64_t total_steps, double base_lr,
                        double min_lr = 0.0);

// Scales all gradients so their global L2 norm is at most max_norm; returns the norm before
// scaling (non-finite norms are returned without scaling, for the caller to skip the step).
double clip_grad_norm(const NamedTensors& params, double max_norm);

}  // namespace mmgrad::train
