// Elementwise kernels: unary math, broadcast binary ops, comparisons and where.
// Each op is a scalar function; the strided loop supplies the iteration and threading,
// and the dense inner loop lets the compiler vectorise the simple ones.
#include <cmath>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/strided_loop.h"
#include "backends/cpu/vec_math.h"

namespace mmgrad::cpu {
namespace {

constexpr double kInvSqrt2Pi = 0.39894228040143267794;

template <typename T>
T apply_unary(UnaryOp op, T x, T s) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Abs: return std::abs(x);
    case UnaryOp::Sign: return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case UnaryOp::Exp: return exp_fast(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Rsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::Pow: return std::pow(x, s);
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Sigmoid: return sigmoid_fast(x);
    case UnaryOp::Relu: return x > T(0) ? x : T(0);
    case UnaryOp::Gelu: return x * normal_cdf_fast(x);
    case UnaryOp::QuickGelu: return quick_gelu_and_derivative(x).value;
    case UnaryOp::Erf: return erf_fast(x);
    case UnaryOp::Square: return x * x;
    case UnaryOp::Reciprocal: return T(1) / x;
  }
  return x;
}

template <typename T>
T apply_binary(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div:
      if constexpr (std::is_integral_v<T>) {
        if (b == 0) fail("div", "integer division by zero");
        // min / -1 overflows (a hardware trap on x86): wrap around, as two's complement does.
        if (b == T(-1)) return static_cast<T>(-static_cast<std::make_unsigned_t<T>>(a));
      }
      return a / b;
    // NaN propagates, as in PyTorch's maximum/minimum.
    case BinaryOp::Maximum:
      if constexpr (std::is_floating_point_v<T>) if (std::isnan(a) || std::isnan(b)) return a + b;
      return a > b ? a : b;
    case BinaryOp::Minimum:
      if constexpr (std::is_floating_point_v<T>) if (std::isnan(a) || std::isnan(b)) return a + b;
      return a < b ? a : b;
    default: break;
  }
  if constexpr (std::is_floating_point_v<T>) {
    // Activation derivatives: a is the incoming gradient, b the saved input (or output).
    switch (op) {
      case BinaryOp::ReluBackward: return b > T(0) ? a : T(0);
      case BinaryOp::GeluBackward: {
        if constexpr (std::is_same_v<T, float>) return a * gelu_derivative_f32(b);
        T cdf = normal_cdf_fast(b);
        T pdf = T(kInvSqrt2Pi) * exp_fast(T(-0.5) * b * b);
        return a * (cdf + b * pdf);
      }
      case BinaryOp::QuickGeluBackward: return a * quick_gelu_and_derivative(b).derivative;
      case BinaryOp::TanhBackward: return a * (T(1) - b * b);      // b = tanh(x)
      case BinaryOp::SigmoidBackward: return a * b * (T(1) - b);  // b = sigmoid(x)
      default: break;
    }
  }
  return a;
}

template <typename T>
bool apply_compare(CompareOp op, T a, T b) {
  switch (op) {
    case CompareOp::Eq: return a == b;
    case CompareOp::Ne: return a != b;
    case CompareOp::Lt: return a < b;
    case CompareOp::Le: return a <= b;
    case CompareOp::Gt: return a > b;
    case CompareOp::Ge: return a >= b;
  }
  return false;
}

// The inner loop of a k-input elementwise op, specialised for the dense case.
template <typename Out, typename In, size_t N, typename F>
MMGRAD_MULTIVERSION void elementwise_inner(const std::array<char*, N>& p, const std::array<int64_t, N>& st, int64_t n,
                       F f) {
  bool dense = st[0] == sizeof(Out);
  for (size_t k = 1; k < N; ++k) dense = dense && st[k] == sizeof(In);
  Out* out = reinterpret_cast<Out*>(p[0]);
  if constexpr (N == 3) {
    // One operand broadcast along the inner dim (a scalar, or a bias added to columns):
    // hoist it out of the loop so the other operand streams densely.
    if (st[0] == sizeof(Out) && st[1] == sizeof(In) && st[2] == 0) {
      const In* a = reinterpret_cast<const In*>(p[1]);
      const In b = *reinterpret_cast<const In*>(p[2]);
      for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b);
      return;
    }
    if (st[0] == sizeof(Out) && st[1] == 0 && st[2] == sizeof(In)) {
      const In a = *reinterpret_cast<const In*>(p[1]);
      const In* b = reinterpret_cast<const In*>(p[2]);
      for (int64_t i = 0; i < n; ++i) out[i] = f(a, b[i]);
      return;
    }
  }
  if (dense) {
    if constexpr (N == 2) {
      const In* a = reinterpret_cast<const In*>(p[1]);
      for (int64_t i = 0; i < n; ++i) out[i] = f(a[i]);
    } else {
      const In* a = reinterpret_cast<const In*>(p[1]);
      const In* b = reinterpret_cast<const In*>(p[2]);
      for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      Out* o = reinterpret_cast<Out*>(p[0] + i * st[0]);
      if constexpr (N == 2) {
        *o = f(*reinterpret_cast<const In*>(p[1] + i * st[1]));
      } else {
        *o = f(*reinterpret_cast<const In*>(p[1] + i * st[1]),
               *reinterpret_cast<const In*>(p[2] + i * st[2]));
      }
    }
  }
}

// Instantiates one loop per op so the op switch is resolved outside the inner loop.
template <typename T, typename Body>
void for_each_unary_op(UnaryOp op, Body body) {
  switch (op) {
#define MMGRAD_CASE(name) \
  case UnaryOp::name: body([](T x, T e) { return apply_unary<T>(UnaryOp::name, x, e); }); return;
    MMGRAD_CASE(Neg) MMGRAD_CASE(Abs) MMGRAD_CASE(Sign) MMGRAD_CASE(Exp) MMGRAD_CASE(Log)
    MMGRAD_CASE(Sqrt) MMGRAD_CASE(Rsqrt) MMGRAD_CASE(Pow) MMGRAD_CASE(Tanh)
    MMGRAD_CASE(Sigmoid) MMGRAD_CASE(Relu) MMGRAD_CASE(Gelu) MMGRAD_CASE(QuickGelu)
    MMGRAD_CASE(Erf) MMGRAD_CASE(Square) MMGRAD_CASE(Reciprocal)
#undef MMGRAD_CASE
  }
}

template <typename T, typename Body>
void for_each_binary_op(BinaryOp op, Body body) {
  switch (op) {
#define MMGRAD_CASE(name) \
  case BinaryOp::name: body([](T a, T b) { return apply_binary<T>(BinaryOp::name, a, b); }); return;
    MMGRAD_CASE(Add) MMGRAD_CASE(Sub) MMGRAD_CASE(Mul) MMGRAD_CASE(Div) MMGRAD_CASE(Maximum)
    MMGRAD_CASE(Minimum) MMGRAD_CASE(ReluBackward) MMGRAD_CASE(GeluBackward)
    MMGRAD_CASE(QuickGeluBackward) MMGRAD_CASE(TanhBackward) MMGRAD_CASE(SigmoidBackward)
#undef MMGRAD_CASE
  }
}

bool is_activation_backward(BinaryOp op) {
  return op == BinaryOp::ReluBackward || op == BinaryOp::GeluBackward ||
         op == BinaryOp::QuickGeluBackward || op == BinaryOp::TanhBackward ||
         op == BinaryOp::SigmoidBackward;
}

}  // namespace

void unary(UnaryOp op, const Tensor& out, const Tensor& in, double scalar) {
  StridedLoop<2> loop(out.shape(), {&out, &in});
  dispatch_float(in.dtype(), unary_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    const T s = static_cast<T>(scalar);
    for_each_unary_op<T>(op, [&](auto f) {
      loop.run([&](std::array<char*, 2> p, const std::array<int64_t, 2>& st, int64_t n) {
        elementwise_inner<T, T, 2>(p, st, n, [&](T x) { return f(x, s); });
      });
    });
  });
}

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  StridedLoop<3> loop(out.shape(), {&out, &a, &b});
  auto run = [&](auto tag) {
    using T = decltype(tag);
    for_each_binary_op<T>(op, [&](auto f) {
      loop.run([&](std::array<char*, 3> p, const std::array<int64_t, 3>& st, int64_t n) {
        elementwise_inner<T, T, 3>(p, st, n, f);
      });
    });
  };
  if (is_activation_backward(op))
    dispatch_float(a.dtype(), binary_op_name(op), run);
  else
    dispatch_numeric(a.dtype(), binary_op_name(op), run);
}

namespace {

// act(h) into a, and g *= act'(h), over n dense elements.
template <typename T, bool kQuick>
MMGRAD_MULTIVERSION void activation_and_backward_dense(T* a, T* g, const T* h, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T x = h[i];
    if constexpr (kQuick) {
      const QuickGelu<T> q = quick_gelu_and_derivative(x);
      a[i] = q.value;
      g[i] *= q.derivative;
    } else if constexpr (std::is_same_v<T, float>) {
      float value, derivative;
      gelu_and_derivative_f32(x, &value, &derivative);
      a[i] = value;
      g[i] *= derivative;
    } else {
      a[i] = apply_unary<T>(UnaryOp::Gelu, x, T(0));
      g[i] = apply_binary<T>(BinaryOp::GeluBackward, g[i], x);
    }
  }
}

}  // namespace

void activation_and_backward(const Tensor& act_out, const Tensor& grad, const Tensor& h, bool quick) {
  if (!act_out.is_contiguous() || !grad.is_contiguous() || !h.is_contiguous() ||
      act_out.shape() != h.shape() || grad.shape() != h.shape())
    fail("activation_and_backward", "expects contiguous tensors of one shape");
  const int64_t n = h.numel();
  dispatch_float(h.dtype(), "activation_and_backward", [&](auto tag) {
    using T = decltype(tag);
    T* a = act_out.data_ptr<T>();
    T* g = grad.data_ptr<T>();
    const T* x = h.data_ptr<T>();
    parallel_for(0, n, 4096, [&](int64_t lo, int64_t hi) {
      if (quick)
        activation_and_backward_dense<T, true>(a + lo, g + lo, x + lo, hi - lo);
      else
        activation_and_backward_dense<T, false>(a + lo, g + lo, x + lo, hi - lo);
    });
  });
}

void compare(CompareOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  StridedLoop<3> loop(out.shape(), {&out, &a, &b});
  dispatch_numeric(a.dtype(), compare_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    loop.run([&](std::array<char*, 3> p, const std::array<int64_t, 3>& st, int64_t n) {
      elementwise_inner<bool, T, 3>(p, st, n, [op](T x, T y) { return apply_compare(op, x, y); });
    });
  });
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  StridedLoop<4> loop(out.shape(), {&out, &cond, &a, &b});
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    loop.run([](std::array<char*, 4> p, const std::array<int64_t, 4>& st, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        bool c = *reinterpret_cast<const bool*>(p[1] + i * st[1]);
        *reinterpret_cast<T*>(p[0] + i * st[0]) =
            *reinterpret_cast<const T*>(p[c ? 2 : 3] + i * st[c ? 2 : 3]);
      }
    });
  });
}

}  // namespace mmgrad::cpu
