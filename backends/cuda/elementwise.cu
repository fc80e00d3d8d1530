// Elementwise kernels: unary math, broadcast binary ops, comparisons and where. The scalar
// functions mirror backends/cpu/elementwise.cpp; the strided walk is Strided<K>.
#include "backends/cuda/kernels.h"
#include "backends/cuda/launch.cuh"

namespace mmgrad::cuda {
namespace {

constexpr double kInvSqrt2Pi = 0.39894228040143267794;

template <typename T>
__device__ inline T normal_cdf(T x) {
  if constexpr (std::is_same_v<T, float>) return normcdff(x); else return normcdf(x);
}
template <typename T>
__device__ inline T sigmoid(T x) { return T(1) / (T(1) + exp(-x)); }

template <typename T, UnaryOp op>
__device__ inline T apply_unary(T x, T s) {
  if constexpr (op == UnaryOp::Neg) return -x;
  if constexpr (op == UnaryOp::Abs) return fabs(x);
  if constexpr (op == UnaryOp::Sign) return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
  if constexpr (op == UnaryOp::Exp) return exp(x);
  if constexpr (op == UnaryOp::Log) return log(x);
  if constexpr (op == UnaryOp::Sqrt) return sqrt(x);
  if constexpr (op == UnaryOp::Rsqrt) return T(1) / sqrt(x);
  if constexpr (op == UnaryOp::Pow) return pow(x, s);
  if constexpr (op == UnaryOp::Tanh) return tanh(x);
  if constexpr (op == UnaryOp::Sigmoid) return sigmoid(x);
  if constexpr (op == UnaryOp::Relu) return x > T(0) ? x : T(0);
  if constexpr (op == UnaryOp::Gelu) return x * normal_cdf(x);
  if constexpr (op == UnaryOp::QuickGelu) return x * sigmoid(T(1.702) * x);
  if constexpr (op == UnaryOp::Erf) return erf(x);
  if constexpr (op == UnaryOp::Square) return x * x;
  if constexpr (op == UnaryOp::Reciprocal) return T(1) / x;
  return x;
}

template <typename T, BinaryOp op>
__device__ inline T apply_binary(T a, T b, int64_t* err) {
  if constexpr (op == BinaryOp::Add) return a + b;
  if constexpr (op == BinaryOp::Sub) return a - b;
  if constexpr (op == BinaryOp::Mul) return a * b;
  if constexpr (op == BinaryOp::Div) {
    if constexpr (std::is_integral_v<T>) {
      if (b == 0) {
        record_device_error(err, kIntegerDivisionByZero, kOpDiv, 0, 0);
        return 0;
      }
      if (b == T(-1)) return static_cast<T>(-static_cast<std::make_unsigned_t<T>>(a));
    }
    return a / b;
  }
  if constexpr (op == BinaryOp::Maximum || op == BinaryOp::Minimum) {
    if constexpr (std::is_floating_point_v<T>)
      if (isnan(a) || isnan(b)) return a + b;
    if constexpr (op == BinaryOp::Maximum) return a > b ? a : b; else return a < b ? a : b;
  }
  if constexpr (std::is_floating_point_v<T>) {
    if constexpr (op == BinaryOp::ReluBackward) return b > T(0) ? a : T(0);
    if constexpr (op == BinaryOp::GeluBackward) {
      T pdf = T(kInvSqrt2Pi) * exp(T(-0.5) * b * b);
      return a * (normal_cdf(b) + b * pdf);
    }
    if constexpr (op == BinaryOp::QuickGeluBackward) {
      T s = sigmoid(T(1.702) * b);
      return a * (s + T(1.702) * b * s * (T(1) - s));
    }
    if constexpr (op == BinaryOp::TanhBackward) return a * (T(1) - b * b);
    if constexpr (op == BinaryOp::SigmoidBackward) return a * b * (T(1) - b);
  }
  return a;
}

template <typename T, UnaryOp op>
void run_unary(const Tensor& out, const Tensor& in, double scalar) {
  const Strided<2> s = make_strided<2>(out.shape(), {&out, &in}, unary_op_name(op));
  T* o = static_cast<T*>(out.raw_data());
  const T* x = static_cast<const T*>(in.raw_data());
  const T e = static_cast<T>(scalar);
  if (dense_operands<2>(s, {o, x})) {  // packs of 16 bytes, then the tail
    constexpr int V = Pack<T>::kSize;
    const int64_t n = out.numel(), packs = n / V, sx = s.stride[1][0];
    launch_n(packs + n % V, unary_op_name(op), [=] __device__(int64_t i) {
      if (i < packs) {
        Pack<T> p = load_pack(x, sx, i);
        for (int j = 0; j < V; ++j) p.v[j] = apply_unary<T, op>(p.v[j], e);
        reinterpret_cast<Pack<T>*>(o)[i] = p;
      } else {
        const int64_t at = packs * V + (i - packs);
        o[at] = apply_unary<T, op>(x[at * sx], e);
      }
    });
    return;
  }
  launch_n(out.numel(), unary_op_name(op), [=] __device__(int64_t i) {
    int64_t off[2];
    s.offsets(i, off);
    o[off[0]] = apply_unary<T, op>(x[off[1]], e);
  });
}

template <typename T, BinaryOp op>
void run_binary(const Tensor& out, const Tensor& a, const Tensor& b) {
  const Strided<3> s = make_strided<3>(out.shape(), {&out, &a, &b}, binary_op_name(op));
  T* o = static_cast<T*>(out.raw_data());
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  int64_t* err = device_error_record();
  if (dense_operands<3>(s, {o, pa, pb})) {  // packs of 16 bytes, then the tail
    constexpr int V = Pack<T>::kSize;
    const int64_t n = out.numel(), packs = n / V, sa = s.stride[1][0], sb = s.stride[2][0];
    launch_n(packs + n % V, binary_op_name(op), [=] __device__(int64_t i) {
      if (i < packs) {
        Pack<T> x = load_pack(pa, sa, i);
        const Pack<T> y = load_pack(pb, sb, i);
        for (int j = 0; j < V; ++j) x.v[j] = apply_binary<T, op>(x.v[j], y.v[j], err);
        reinterpret_cast<Pack<T>*>(o)[i] = x;
      } else {
        const int64_t at = packs * V + (i - packs);
        o[at] = apply_binary<T, op>(pa[at * sa], pb[at * sb], err);
      }
    });
    return;
  }
  launch_n(out.numel(), binary_op_name(op), [=] __device__(int64_t i) {
    int64_t off[3];
    s.offsets(i, off);
    o[off[0]] = apply_binary<T, op>(pa[off[1]], pb[off[2]], err);
  });
}

bool is_activation_backward(BinaryOp op) {
  return op == BinaryOp::ReluBackward || op == BinaryOp::GeluBackward || op == BinaryOp::QuickGeluBackward ||
         op == BinaryOp::TanhBackward || op == BinaryOp::SigmoidBackward;
}

}  // namespace

void unary(UnaryOp op, const Tensor& out, const Tensor& in, double scalar) {
  dispatch_float(in.dtype(), unary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    switch (op) {
#define MMGRAD_CASE(name) case UnaryOp::name: return run_unary<T, UnaryOp::name>(out, in, scalar);
      MMGRAD_CASE(Neg) MMGRAD_CASE(Abs) MMGRAD_CASE(Sign) MMGRAD_CASE(Exp) MMGRAD_CASE(Log)
      MMGRAD_CASE(Sqrt) MMGRAD_CASE(Rsqrt) MMGRAD_CASE(Pow) MMGRAD_CASE(Tanh)
      MMGRAD_CASE(Sigmoid) MMGRAD_CASE(Relu) MMGRAD_CASE(Gelu) MMGRAD_CASE(QuickGelu)
      MMGRAD_CASE(Erf) MMGRAD_CASE(Square) MMGRAD_CASE(Reciprocal)
#undef MMGRAD_CASE
    }
  });
}

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  auto run = [&](auto tag) {
    using T = decltype(tag);
    switch (op) {
#define MMGRAD_CASE(name) case BinaryOp::name: return run_binary<T, BinaryOp::name>(out, a, b);
      MMGRAD_CASE(Add) MMGRAD_CASE(Sub) MMGRAD_CASE(Mul) MMGRAD_CASE(Div) MMGRAD_CASE(Maximum)
      MMGRAD_CASE(Minimum) MMGRAD_CASE(ReluBackward) MMGRAD_CASE(GeluBackward)
      MMGRAD_CASE(QuickGeluBackward) MMGRAD_CASE(TanhBackward) MMGRAD_CASE(SigmoidBackward)
#undef MMGRAD_CASE
    }
  };
  if (is_activation_backward(op))
    dispatch_float(a.dtype(), binary_op_name(op), run);
  else
    dispatch_numeric(a.dtype(), binary_op_name(op), run);
}

namespace {
template <typename T>
void compare_typed(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  const Strided<3> s = make_strided<3>(out.shape(), {&out, &a, &b}, compare_op_name(op));
  bool* o = static_cast<bool*>(out.raw_data());
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  launch_n(out.numel(), compare_op_name(op), [=] __device__(int64_t i) {
    int64_t off[3];
    s.offsets(i, off);
    const T x = pa[off[1]], y = pb[off[2]];
    bool r = false;
    switch (op) {
      case CompareOp::Eq: r = x == y; break;
      case CompareOp::Ne: r = x != y; break;
      case CompareOp::Lt: r = x < y; break;
      case CompareOp::Le: r = x <= y; break;
      case CompareOp::Gt: r = x > y; break;
      case CompareOp::Ge: r = x >= y; break;
    }
    o[off[0]] = r;
  });
}

template <typename T>
void where_typed(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  const Strided<4> s = make_strided<4>(out.shape(), {&out, &cond, &a, &b}, "where");
  T* o = static_cast<T*>(out.raw_data());
  const bool* c = static_cast<const bool*>(cond.raw_data());
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  launch_n(out.numel(), "where", [=] __device__(int64_t i) {
    int64_t off[4];
    s.offsets(i, off);
    o[off[0]] = c[off[1]] ? pa[off[2]] : pb[off[3]];
  });
}
}  // namespace

void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_numeric(a.dtype(), compare_op_name(op), [&](auto tag) { compare_typed<decltype(tag)>(op, out, a, b); });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  dispatch_all(out.dtype(), [&](auto tag) { where_typed<decltype(tag)>(out, cond, a, b); });
}

}  // namespace mmgrad::cuda
