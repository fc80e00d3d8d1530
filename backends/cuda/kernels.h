// The CUDA backend's kernels (one file per family, as on the CPU) and its registration.
#pragma once
#include "backends/backend.h"
#include "backends/cuda/cuda.h"

namespace mmgrad::cuda {

#define MMGRAD_DECLARE_CUDA_KERNEL(op, args) void op args;
MMGRAD_BACKEND_OPS(MMGRAD_DECLARE_CUDA_KERNEL)
#undef MMGRAD_DECLARE_CUDA_KERNEL

// The fused slots CUDA fills (attention.cu, sum_squares.cu, optimizer.cu, matmul_bias.cpp).
// activation_and_backward is left empty on purpose: it works in row chunks, which on a GPU
// means more launches, not fewer.
void attention(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
               const Tensor& mask, double scale, bool causal);
void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& grad_out,
                        const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lse, const Tensor& mask,
                        double scale, bool causal);
void sum_squares(const Tensor& out, const std::vector<Tensor>& tensors);
void matmul_bias(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias);
void adamw_update_many(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const std::vector<double>& decays, double lr, double beta1, double beta2, double eps,
                       double bias_correction1, double bias_correction2);

// Creates cuBLASLt's handle and workspace now rather than at the first linear layer (a CUDA
// graph capture must not create them).
void prepare_matmul_bias();

// The backend when a usable GPU is present, else nullptr (cuda.h's unavailable_reason
// says why).
const Backend* backend_if_available();

}  // namespace mmgrad::cuda
