#include "train/optimizer.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace mmgrad::train {

bool decays(const std::string& name, const Tensor& param) {
  return param.dim() >= 2 && name != "logit_scale" && name != "logit_bias";
}

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) p.set_grad(Tensor());
}

AdamW::AdamW(NamedTensors params, double weight_decay, double beta1, double beta2, double eps)
    : Optimizer(std::move(params)), weight_decay_(weight_decay), beta1_(beta1), beta2_(beta2), eps_(eps) {
  for (auto& [name, p] : params_) {
    exp_avg_.push_back(zeros_like(p));
    exp_avg_sq_.push_back(zeros_like(p));
  }
}

void AdamW::step(double lr) {
  NoGradGuard no_grad;
  ++steps_;
  const double bc1 = 1 - std::pow(beta1_, static_cast<double>(steps_));
  const double bc2 = 1 - std::pow(beta2_, static_cast<double>(steps_));
  // Every parameter with a gradient in one fused update (on a GPU, one launch per group of
  // parameters instead of one, or a dozen unfused, per parameter).
  std::vector<Tensor> ps, gs, ms, vs;
  std::vector<double> decay;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& [name, p] = params_[i];
    if (!p.grad().defined()) continue;
    ps.push_back(p);
    gs.push_back(p.grad());
    ms.push_back(exp_avg_[i]);
    vs.push_back(exp_avg_sq_[i]);
    decay.push_back(weight_decay_ != 0 && decays(name, p) ? 1 - lr * weight_decay_ : 1.0);
  }
  adamw_update_many_(ps, gs, ms, vs, decay, AdamWStep{lr, beta1_, beta2_, eps_, 1.0, bc1, bc2});
}

NamedTensors AdamW::state() const {
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back("exp_avg." + params_[i].first, exp_avg_[i]);
    out.emplace_back("exp_avg_sq." + params_[i].first, exp_avg_sq_[i]);
  }
  return out;
}

SGD::SGD(NamedTensors params, double momentum, double weight_decay)
    : Optimizer(std::move(params)), momentum_(momentum), weight_decay_(weight_decay) {
  for (auto& [name, p] : params_) buffer_.push_back(zeros_like(p));
}

void SGD::step(double lr) {
  NoGradGuard no_grad;
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& [name, p] = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (weight_decay_ != 0 && decays(name, p)) g = add(g, mul(p, weight_decay_));
    Tensor& buf = buffer_[i];
    if (momentum_ != 0) {
      // The first step starts the buffer at g, as PyTorch does.
      if (steps_ == 1) copy_(buf, g);
      else {
        mul_(buf, momentum_);
        add_(buf, g);
      }
      add_(p, buf, -lr);
    } else {
      add_(p, g, -lr);
    }
  }
}

NamedTensors SGD::state() const {
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i) out.emplace_back("momentum_buffer." + params_[i].first, buffer_[i]);
  return out;
}

double warmup_cosine_lr(int64_t step, int64_t warmup_steps, int64_t total_steps, double base_lr, double min_lr) {
  if (step < warmup_steps) return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (step >= total_steps) return min_lr;
  double progress = static_cast<double>(step - warmup_steps) / std::max<double>(1.0, static_cast<double>(total_steps - warmup_steps));
  return min_lr + 0.5 * (base_lr - min_lr) * (1 + std::cos(M_PI * progress));
}

double clip_grad_norm(const NamedTensors& params, double max_norm) {
  NoGradGuard no_grad;
  // Every gradient's sum of squares in one fused pass (a fixed number of launches on a GPU,
  // not four per parameter), added on the device; one read of the total.
  std::vector<Tensor> grads;
  for (const auto& [name, p] : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  const double norm = grads.empty() ? 0.0 : std::sqrt(item(sum(sum_of_squares(grads))));
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  const double scale = max_norm / (norm + 1e-6);
  for (const auto& [name, p] : params) {
    Tensor g = p.grad();
    if (g.defined()) mul_(g, scale);
  }
  return norm;
}

}  // namespace mmgrad::train
