// The op table: every kernel a backend provides, in one list.
//
// Kernels see tensors as buffers and views, never the autograd graph. Outputs are allocated
// by the caller (autograd/) with the right shape, dtype and device; kernels only fill them.
// Adding a kernel means adding one line to MMGRAD_BACKEND_OPS and implementing it in each
// backend; a backend that leaves an entry empty makes that op fail with
// "op X is not implemented on <device>", never a crash.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace mmgrad {

enum class UnaryOp {
  Neg, Abs, Sign, Exp, Log, Sqrt, Rsqrt, Pow, Tanh, Sigmoid, Relu, Gelu, QuickGelu, Erf,
  Square, Reciprocal,
};

// Binary ops take two operands already broadcast to the output's shape (stride-0 views).
// The *Backward entries are the fused local derivatives of activations: out = g * f'(x).
enum class BinaryOp {
  Add, Sub, Mul, Div, Maximum, Minimum,
  ReluBackward, GeluBackward, QuickGeluBackward, TanhBackward, SigmoidBackward,
};

enum class CompareOp { Eq, Ne, Lt, Le, Gt, Ge };

enum class ReduceOp { Sum, Max, Min };

const char* unary_op_name(UnaryOp op);
const char* binary_op_name(BinaryOp op);
const char* compare_op_name(CompareOp op);
const char* reduce_op_name(ReduceOp op);

// X(name, argument list). Shapes in the comments: "in" and "out" match unless stated.
#define MMGRAD_BACKEND_OPS(X)                                                                  \
  /* dst <- src, same shape, any strides, converting dtype */                                 \
  X(copy, (const Tensor& dst, const Tensor& src))                                             \
  X(fill, (const Tensor& dst, double value))                                                  \
  /* dst [n] contiguous: dst[i] = start + i step, computed in f64 and converted (arange)    */ \
  X(arange, (const Tensor& dst, double start, double step))                                   \
  /* checks that every element of cond (Bool, contiguous) is true; otherwise the message     */ \
  /* registered as message_id is raised: at once on the CPU, at the next synchronisation on  */ \
  /* a GPU (so a check costs the device no round trip to the host)                          */ \
  X(assert_all, (const Tensor& cond, int64_t message_id))                                     \
  /* dst[i] = U[low, high) or N(mean, std) of Philox stream `key`, i the row-major index */   \
  X(random_uniform, (const Tensor& dst, uint64_t key, double low, double high))               \
  X(random_normal, (const Tensor& dst, uint64_t key, double mean, double std))                \
  /* out = op(in); Pow uses `scalar` as the exponent */                                       \
  X(unary, (UnaryOp op, const Tensor& out, const Tensor& in, double scalar))                  \
  X(binary, (BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b))               \
  /* out (Bool) = a <op> b */                                                                 \
  X(compare, (CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b))             \
  /* out = cond ? a : b, cond Bool */                                                         \
  X(where, (const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b))         \
  /* out has in's shape with size 1 on the reduced dims; indices (I64, optional, only for   */ \
  /* Max/Min over one dim) receive the position along that dim                              */ \
  X(reduce, (ReduceOp op, const Tensor& out, const Tensor& indices, const Tensor& in))        \
  /* out[..., M, N] (+)= a[..., M, K] @ b[..., K, N]; batch dims already broadcast;         */ \
  /* transposed (stride-permuted) operands are handled without copies                       */ \
  X(matmul, (const Tensor& out, const Tensor& a, const Tensor& b, bool accumulate))           \
  /* softmax / log_softmax over the last dim of a contiguous tensor */                        \
  X(softmax, (const Tensor& out, const Tensor& in, bool log))                                 \
  /* grad_in from grad_out and the forward output */                                          \
  X(softmax_backward,                                                                          \
    (const Tensor& grad_in, const Tensor& grad_out, const Tensor& out, bool log))              \
  /* over the last dim; mean/rstd [rows]; weight/bias may be undefined */                     \
  X(layer_norm, (const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& x,  \
                 const Tensor& weight, const Tensor& bias, double eps))                        \
  X(layer_norm_backward,                                                                       \
    (const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,                 \
     const Tensor& grad_out, const Tensor& x, const Tensor& mean, const Tensor& rstd,          \
     const Tensor& weight))                                                                    \
  /* logits [N, C] contiguous, target I64 [N]; loss [N] per row (0 where ignored),          */ \
  /* lse [N] the row's log-sum-exp, kept for backward                                       */ \
  X(cross_entropy, (const Tensor& loss, const Tensor& lse, const Tensor& logits,              \
                    const Tensor& target, int64_t ignore_index, double label_smoothing))       \
  /* grad_logits = grad_loss[row] * d loss[row] / d logits */                                 \
  X(cross_entropy_backward,                                                                    \
    (const Tensor& grad_logits, const Tensor& grad_loss, const Tensor& logits,                 \
     const Tensor& lse, const Tensor& target, int64_t ignore_index, double label_smoothing))   \
  /* out = in.index_select(dim, index); index I64 1-D, bounds checked */                      \
  X(index_select, (const Tensor& out, const Tensor& in, int dim, const Tensor& index))        \
  /* out.index_select(dim, index) += src (scatter-add; repeated indices accumulate) */        \
  X(index_add, (const Tensor& out, int dim, const Tensor& index, const Tensor& src))          \
  /* out[i][j] = in[i][index[i][j]] along dim (index has out's shape) */                      \
  X(gather, (const Tensor& out, const Tensor& in, int dim, const Tensor& index))              \
  /* out[i][index[i][j]] += src[i][j] along dim */                                            \
  X(scatter_add, (const Tensor& out, int dim, const Tensor& index, const Tensor& src))        \
  /* one AdamW step in place, all four contiguous with one shape: m = b1 m + (1-b1) g;      */ \
  /* v = b2 v + (1-b2) g^2; p *= decay; p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)       */ \
  X(adamw_update, (const Tensor& param, const Tensor& grad, const Tensor& exp_avg,             \
                   const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,  \
                   double decay, double bias_correction1, double bias_correction2))

// Fused kernels a backend may leave empty: the op that uses one checks the slot and
// otherwise runs as a composition of the kernels above (same results up to rounding).
#define MMGRAD_BACKEND_FUSED_OPS(X)                                                            \
  /* softmax(scale q k^T + mask) v over the last two dims: q [..., T, D], k [..., S, D],     */ \
  /* v [..., S, Dv] and out [..., T, Dv], equal batch dims, any strides but a contiguous     */ \
  /* last dim; mask undefined or an additive view of [..., T, S] (any strides); causal needs */ \
  /* T == S. lse [..., T] (contiguous) gets each row's log-sum-exp, kept for backward: -inf  */ \
  /* where a row attends to nothing (its output is 0, as the composed softmax gives)         */ \
  X(attention, (const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,        \
                const Tensor& v, const Tensor& mask, double scale, bool causal))               \
  /* dq, dk, dv (shaped as q, k, v) from grad_out [..., T, Dv] and forward's lse; strided    */ \
  /* as in forward                                                                          */ \
  X(attention_backward,                                                                        \
    (const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& grad_out,             \
     const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lse, const Tensor& mask,  \
     double scale, bool causal))                                                               \
  /* One pass of an MLP's backward: act_out = act(h) (gelu, or quick_gelu when quick) and    */ \
  /* grad *= act'(h) in place; all three contiguous and of one shape. The value and the      */ \
  /* derivative share their erfc and exp (or sigmoid)                                       */ \
  X(activation_and_backward,                                                                   \
    (const Tensor& act_out, const Tensor& grad, const Tensor& h, bool quick))                   \
  /* A linear layer's forward: out [M, N] = a [M, K] @ b [K, N] + bias [N] (contiguous) on   */ \
  /* every row, any strides in a, b and out; the bias is added as each tile is stored        */ \
  X(matmul_bias, (const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias))     \
  /* Each tensor's sum of squares, accumulated in f64, into out [n] (f64, contiguous): n     */ \
  /* contiguous tensors of one floating dtype (a gradient norm in O(1) launches, not O(n));  */ \
  /* the result does not depend on the thread count                                         */ \
  X(sum_squares, (const Tensor& out, const std::vector<Tensor>& tensors))                      \
  /* adamw_update on n parameters in one pass (a fixed number of launches on a GPU): entry  */ \
  /* i of each list as in adamw_update, decays[i] its decay factor, the rest shared          */ \
  X(adamw_update_many,                                                                         \
    (const std::vector<Tensor>& params, const std::vector<Tensor>& grads,                      \
     const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,              \
     const std::vector<double>& decays, double lr, double beta1, double beta2, double eps,     \
     double bias_correction1, double bias_correction2))

struct Backend {
  const char* name = "";
#define MMGRAD_DECLARE_SLOT(op, args) void(*op) args = nullptr;
  MMGRAD_BACKEND_OPS(MMGRAD_DECLARE_SLOT)
  MMGRAD_BACKEND_FUSED_OPS(MMGRAD_DECLARE_SLOT)
#undef MMGRAD_DECLARE_SLOT
};

void register_backend(DeviceType type, const Backend* backend);
// The messages of assert_all checks, by id (the same op and text always get the same id):
// a GPU kernel can only record a number.
int64_t register_assert_message(const std::string& op, const std::string& message);
// [op, message] of a registered id; throws for an unknown one.
std::pair<std::string, std::string> assert_message(int64_t id);
// The backend for a device; throws if that device type is not built in.
const Backend& backend_for(Device device);
[[noreturn]] void fail_not_implemented(const char* op, Device device);

// The GEMM slots (matmul, matmul_bias) take one dtype throughout, or bf16 operands with an
// f32 product (mixed precision's rounded inputs, autograd/autocast.h). True for bf16
// operands; any other mix fails naming the op and the three dtypes.
bool gemm_has_bf16_operands(const char* op, const Tensor& out, const Tensor& a, const Tensor& b);

}  // namespace mmgrad

// Calls kernel `op` of the backend for `device`, or fails with a clear message.
#define MMGRAD_DISPATCH(op, device, ...)                                          \
  do {                                                                            \
    const ::mmgrad::Backend& mmgrad_backend_ = ::mmgrad::backend_for(device);     \
    if (!mmgrad_backend_.op) ::mmgrad::fail_not_implemented(#op, (device));       \
    mmgrad_backend_.op(__VA_ARGS__);                                              \
  } while (0)
