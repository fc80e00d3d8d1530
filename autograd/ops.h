// The op set of mmgrad. Every op dispatches its kernel to the tensor's backend and, when an
// input requires grad, records a backward written next to its forward in terms of other ops
// (so it runs on every backend). All errors name the op and its operands.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace mmgrad {

// ---------------------------------------------------------------- creation (ops_creation.cpp)
Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::F32,
            Device device = Device::cpu());
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
// A 0-dim tensor.
Tensor scalar_tensor(double value, DType dtype = DType::F32, Device device = Device::cpu());
// [start, end) in steps; the dtype decides the element type (i64 for indices).
Tensor arange(double start, double end, double step = 1, DType dtype = DType::F32,
              Device device = Device::cpu());
// Copies `values` (row-major) into a new tensor of `shape`.
template <typename T>
Tensor from_data(const std::vector<T>& values, const Shape& shape, Device device = Device::cpu());
// Seeded, counter-based draws (core/rng.h): element i depends only on the key and i.
Tensor rand(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu(),
            Generator* gen = nullptr);
Tensor randn(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu(),
             Generator* gen = nullptr);
// Integers uniform in [low, high).
Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype = DType::I64,
               Device device = Device::cpu(), Generator* gen = nullptr);

// ------------------------------------------------- conversion and copies (ops_creation.cpp)
Tensor to(const Tensor& t, DType dtype);    // differentiable between floating dtypes
Tensor to(const Tensor& t, Device device);  // differentiable
Tensor contiguous(const Tensor& t);         // the same tensor if already contiguous
Tensor clone(const Tensor& t);
Tensor detach(const Tensor& t);  // shares storage, no graph

// ------------------------------------------------------------ views, no copies (ops_view.cpp)
Tensor reshape(const Tensor& t, const Shape& shape);  // one -1 allowed; copies only if needed
Tensor view(const Tensor& t, const Shape& shape);     // never copies; errors if impossible
Tensor flatten(const Tensor& t, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor transpose(const Tensor& t, int64_t d0, int64_t d1);
Tensor permute(const Tensor& t, const std::vector<int64_t>& dims);
Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length);
Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor select(const Tensor& t, int64_t dim, int64_t index);  // removes the dim
Tensor expand(const Tensor& t, const Shape& shape);           // -1 keeps a size
Tensor squeeze(const Tensor& t, int64_t dim);
Tensor unsqueeze(const Tensor& t, int64_t dim);

// ------------------------------------------------------------ elementwise (ops_elementwise.cpp)
Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x);        // exact: x * Phi(x)
Tensor quick_gelu(const Tensor& x);  // x * sigmoid(1.702 x)
Tensor erf(const Tensor& x);

// NumPy broadcasting; both operands must have the same dtype and device.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// Scalar variants: the scalar takes the tensor's dtype.
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
Tensor maximum(const Tensor& a, double b);
Tensor minimum(const Tensor& a, double b);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator-(const Tensor& a);

// Comparisons give Bool masks (not differentiable).
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);
// cond ? a : b with broadcasting of all three; differentiable in a and b.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, double b);

// In-place updates: not recorded, so they are refused on a tensor that requires grad while
// grad mode is on (use NoGradGuard, as optimizers do). They bump the version counter.
Tensor& add_(Tensor& self, const Tensor& other, double alpha = 1);  // self += alpha * other
Tensor& add_(Tensor& self, double value);
Tensor& mul_(Tensor& self, const Tensor& other);
Tensor& mul_(Tensor& self, double value);
Tensor& div_(Tensor& self, const Tensor& other);
// One AdamW step in place (the optimizer's fused kernel; train/optimizer.h has the rule).
// param, exp_avg and exp_avg_sq must be contiguous with grad's shape; decay multiplies the
// parameter first (1 - lr * weight_decay, or 1); bias corrections are 1 - beta^step.
struct AdamWStep {
  double lr, beta1, beta2, eps, decay, bias_correction1, bias_correction2;
};
void adamw_update_(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, const AdamWStep& s);
// adamw_update_ on many parameters at once (the optimizer's step: one pass over all of them,
// a fixed number of launches on a GPU): entry i of each list as in adamw_update_, decays[i]
// parameter i's decay factor; s.decay is not used. One dtype and device for all.
void adamw_update_many_(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& exp_avgs,
                        std::vector<Tensor>& exp_avg_sqs, const std::vector<double>& decays, const AdamWStep& s);
// Each tensor's sum of squares, accumulated in f64: an f64 [n] tensor on the tensors' device
// (one floating dtype and one device for all; not differentiable). A gradient norm over
// every parameter in a fixed number of kernel launches; the result does not depend on the
// thread count.
Tensor sum_of_squares(const std::vector<Tensor>& tensors);
Tensor& fill_(Tensor& self, double value);
Tensor& zero_(Tensor& self);
Tensor& copy_(Tensor& self, const Tensor& src);  // broadcasts src, converts dtype/device

// -------------------------------------------------------------------- reductions (ops_reduce.cpp)
// Empty `dims` means all dims.
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Variance with Bessel's correction by default (correction = 1), as torch.var.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);
// Max/min over dims (values only). The gradient is split evenly among tied extremes, as in
// PyTorch's amax/amin.
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Max/min over one dim with the indices (I64) of the chosen elements.
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
// Sums a broadcast gradient back to `shape` (the inverse of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ----------------------------------------------------------------- linear algebra (ops_matmul.cpp)
// 1-D operands are promoted as in NumPy; batch dims broadcast.
Tensor matmul(const Tensor& a, const Tensor& b);
// x @ weight^T + bias, weight [out, in] as in PyTorch; bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// -------------------------------------------------------------- neural-net ops (ops_nn.cpp)
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// Normalises over the last dim; weight and bias [C] may be undefined.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
enum class Reduction { Mean, Sum, None };
// logits [N, C], target I64 [N]. Mean averages over the targets that are not ignored.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index = -100,
                     double label_smoothing = 0.0, Reduction reduction = Reduction::Mean);
// q [..., T, D], k [..., S, D], v [..., S, Dv] -> [..., T, Dv]; scale defaults to 1/sqrt(D).
// causal masks key s > query t (aligned to the end when S > T is not supported: T == S).
// attn_mask, if given, broadcasts to [..., T, S]: a float mask is added to the scores (use
// -inf to mask) and receives a gradient (a learned bias); a bool mask keeps the scores where
// true and masks the rest. A mask may not add batch dims.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    bool causal = false, const Tensor& attn_mask = Tensor(),
                                    std::optional<double> scale = std::nullopt);
// A transformer layer's pre-LayerNorm MLP as one node (ops_fused.cpp):
// fc2(act(fc1(layer_norm(x)))) with act gelu (or quick_gelu), x [..., W], ln_weight and
// ln_bias [W], w1 [H, W], b1 [H], w2 [O, H], b2 [O] -> [..., O]. Keeps only x, the
// LayerNorm statistics and fc1's output for backward, which recomputes the normalised input
// and the activation: the composition would keep both, [N, W] + [N, H] per layer.
Tensor layer_norm_mlp(const Tensor& x, const Tensor& ln_weight, const Tensor& ln_bias, double eps, const Tensor& w1,
                      const Tensor& b1, const Tensor& w2, const Tensor& b2, bool quick_gelu = false);
// Zeroes elements with probability p and scales the rest by 1/(1-p); identity when !training.
Tensor dropout(const Tensor& x, double p, bool training = true, Generator* gen = nullptr);
// weight [V, W], ids integer of any shape -> [..., W]. Backward scatter-adds into weight.
Tensor embedding(const Tensor& weight, const Tensor& ids);
// images [B, C, H, W], weight [W, C, P, P] (a conv with stride P, no bias) -> [B, N, W],
// N = (H/P) * (W/P) patches in row-major order, as a ViT's patch embedding.
Tensor patch_embed(const Tensor& images, const Tensor& weight);

// ------------------------------------------------------------------- indexing (ops_index.cpp)
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
Tensor concat(const std::vector<Tensor>& tensors, int64_t dim);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);
// Pieces of `size` along dim (the last may be smaller).
std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim);

// --------------------------------------------------------------------------- reading values
double item(const Tensor& t);  // a one-element tensor's value as double
template <typename T>
std::vector<T> to_vector(const Tensor& t);  // all values, row-major, converted to T
// Fails with mmgrad::Error(op, message) unless every element of `cond` (Bool) is true. The
// check runs where cond lives: on a GPU it is a kernel whose failure is reported at the next
// synchronisation, so it costs no round trip and may sit inside a captured step.
void assert_all(const Tensor& cond, const char* op, const std::string& message);

// Whether two tensors are elementwise close: |a - b| <= atol + rtol * |b|.
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);

}  // namespace mmgrad
