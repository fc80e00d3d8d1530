// Fused scaled-dot-product attention, forward and backward, one (batch, head) slice per task.
//
// Why: composed of ops, attention materialises [..., T, S] scores for the whole batch,
// scales them in a second pass, masks them in a third, softmaxes them in a fourth, and
// backward does the same again plus dP and dS. With the short sequences of these models
// (T, S <= 77) one slice's [T, S] block fits in L1/L2: each task computes it with the GEMM
// micro-kernels, softmaxes it in place and multiplies it by V while it is still in cache.
// The only tensors written are the output and one log-sum-exp per query row, kept for
// backward, which recomputes the probabilities from it instead of keeping them (as
// flash-attention does on GPUs).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/strided_loop.h"
#include "backends/cpu/vec_fold.h"
#include "backends/cpu/vec_math.h"

namespace mmgrad::cpu {
namespace {

// One slice's operands: row r of q at q + r * q_row, and so on; every operand's last dim is
// contiguous. The mask, if any, is an additive [T, S] view with any strides (0 where
// broadcast). The outputs (out forward; dq, dk, dv backward) and grad_out are strided alike.
template <typename T>
struct Slice {
  const T *q, *k, *v, *mask, *g;
  T *out, *dq, *dk, *dv;
  int64_t q_row, k_row, v_row, mask_row, mask_col, g_row, out_row, dq_row, dk_row, dv_row;
  int64_t T_, S, D, Dv;
  T scale;
  bool causal;
};

// Score rows are padded to whole 64-byte vectors (16 floats): the padding holds -inf in the
// scores (exp turns it into 0 probability) and 0 in dP, so the row loops below run over
// whole vectors with no remainder. With rows of 65 keys, the remainder loops and 8-lane
// reductions of a general softmax cost as much as the slice's two products.
constexpr int64_t kRowAlign = 16;
int64_t padded_row(int64_t n) { return (n + kRowAlign - 1) / kRowAlign * kRowAlign; }

// A task's scratch: probabilities and dS, [T, Sp] each, 64-byte aligned rows, and forward's
// 1 / softmax sum per row.
template <typename T>
struct Scratch {
  std::vector<T> storage, inv_sum;
  T* p = nullptr;
  T* ds = nullptr;
  void reserve(int64_t T_, int64_t Sp, int matrices) {
    const size_t n = static_cast<size_t>(T_ * Sp);
    storage.resize(matrices * n + 64 / sizeof(T));
    inv_sum.resize(static_cast<size_t>(T_));
    const uintptr_t addr = reinterpret_cast<uintptr_t>(storage.data());
    p = reinterpret_cast<T*>((addr + 63) / 64 * 64);
    ds = p + n;
  }
};

// The slice's scores, scale Q K^T + mask, into s [T, Sp], with the causal mask's hidden
// entries and the padding set to -inf. The products go through the built-in GEMM (a slice
// is small enough that one task runs it serially, in cache; as in the batched matmul, tasks
// on several threads never call into OpenBLAS at once).
template <typename T>
void scores(const Slice<T>& a, T* s, int64_t Sp) {
  builtin_gemm(a.T_, a.S, a.D, a.scale, a.q, a.q_row, 1, a.k, 1, a.k_row, T(0), s, Sp, 1);
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < a.T_; ++i) {
    T* si = s + i * Sp;
    if (a.mask) {
      const T* mi = a.mask + i * a.mask_row;
      for (int64_t j = 0; j < a.S; ++j) si[j] += mi[j * a.mask_col];
    }
    std::fill(si + (a.causal ? std::min(i + 1, a.S) : a.S), si + Sp, kNegInf);
  }
}


// Rows of s [rows, Sp] become exp(s - max): softmax without its division, which forward
// applies to the [T, Dv] output rows instead of the [T, S] probabilities. lse gets each
// row's log-sum-exp, inv_sum 1 / sum. A row that attends to nothing (all -inf) becomes
// zeros with lse -inf and inv_sum 0, as the composed softmax gives zeros.
// Three passes over the rows, not one: within a row, max, exps, sum, 1 / sum and log(sum)
// form one long dependency chain (two horizontal folds, a division, a log) that out-of-order
// execution did not overlap from row to row (a third of a 65 x 65 forward slice); here each
// pass's rows are independent, and the last pass runs a vector of rows at a time.
template <typename T>
MMGRAD_MULTIVERSION void exp_rows_keep_lse(T* s, int64_t rows, int64_t Sp, T* lse, T* inv_sum) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < rows; ++i) lse[i] = row_max(s + i * Sp, Sp);
  for (int64_t i = 0; i < rows; ++i) {
    T* si = s + i * Sp;
    const T mx = lse[i];
    if (mx == kNegInf) {
      std::fill(si, si + Sp, T(0));
      inv_sum[i] = 0;  // the row's sum, until the last pass
      continue;
    }
    // The sum taken lane-wise as the exps are stored, folded once per row.
    constexpr int64_t lanes = vec_lanes<T>();
    alignas(kVecBytes) T acc[lanes] = {};
    for (int64_t j = 0; j < Sp; j += lanes)
      for (int64_t l = 0; l < lanes; ++l) {
        const T e = exp_nonpositive_fast(si[j + l] - mx);
        si[j + l] = e;
        acc[l] += e;
      }
    inv_sum[i] = fold_sum<T, kVecBytes>(load_vec<T, kVecBytes>(acc));
  }
  for (int64_t i = 0; i < rows; ++i) {
    const T total = inv_sum[i];  // >= 1 (the max's own exp), 0 for an empty row, or NaN
    const bool empty = total == T(0);
    lse[i] = empty ? kNegInf : lse[i] + log_positive_fast(empty ? T(1) : total);
    inv_sum[i] = empty ? T(0) : T(1) / total;
  }
}

// Rows of s (scores) become the probabilities forward had: exp(s - lse), 0 on empty rows.
template <typename T>
MMGRAD_MULTIVERSION void probabilities_from_lse(T* s, int64_t rows, int64_t Sp, const T* lse) {
  for (int64_t i = 0; i < rows; ++i) {
    T* si = s + i * Sp;
    const T l = lse[i];
    if (l == -std::numeric_limits<T>::infinity()) {
      std::fill(si, si + Sp, T(0));
      continue;
    }
    for (int64_t j = 0; j < Sp; ++j) si[j] = exp_nonpositive_fast(si[j] - l);
  }
}

// dP becomes dS = scale * P (dP - rowsum(P dP)), the softmax backward with the score scale.
template <typename T>
MMGRAD_MULTIVERSION void softmax_backward_in_place(const T* p, T* dp, int64_t rows, int64_t Sp, T scale) {
  for (int64_t i = 0; i < rows; ++i) {
    const T* pi = p + i * Sp;
    T* di = dp + i * Sp;
    const T dot = row_dot(pi, di, Sp);
    for (int64_t j = 0; j < Sp; ++j) di[j] = pi[j] * (di[j] - dot) * scale;
  }
}

template <typename T>
void attention_slice(const Slice<T>& a, T* lse, Scratch<T>& buf) {
  const int64_t Sp = padded_row(a.S);
  buf.reserve(a.T_, Sp, 1);
  std::vector<T>& inv_sum = buf.inv_sum;
  T* p = buf.p;
  scores(a, p, Sp);
  exp_rows_keep_lse(p, a.T_, Sp, lse, inv_sum.data());
  builtin_gemm(a.T_, a.Dv, a.S, T(1), p, Sp, 1, a.v, a.v_row, 1, T(0), a.out, a.out_row, 1);
  for (int64_t i = 0; i < a.T_; ++i) {
    T* oi = a.out + i * a.out_row;
    const T r = inv_sum[static_cast<size_t>(i)];
    for (int64_t j = 0; j < a.Dv; ++j) oi[j] *= r;
  }
}

template <typename T>
void attention_backward_slice(const Slice<T>& a, const T* lse, Scratch<T>& buf) {
  const int64_t Sp = padded_row(a.S);
  buf.reserve(a.T_, Sp, 2);
  T* p = buf.p;
  T* ds = buf.ds;
  scores(a, p, Sp);
  probabilities_from_lse(p, a.T_, Sp, lse);
  // dP = dO V^T (padding 0), then dS in place; dQ = dS K, dK = dS^T Q, dV = P^T dO.
  builtin_gemm(a.T_, a.S, a.Dv, T(1), a.g, a.g_row, 1, a.v, 1, a.v_row, T(0), ds, Sp, 1);
  for (int64_t i = 0; i < a.T_; ++i) std::fill(ds + i * Sp + a.S, ds + (i + 1) * Sp, T(0));
  softmax_backward_in_place(p, ds, a.T_, Sp, a.scale);
  builtin_gemm(a.T_, a.D, a.S, T(1), ds, Sp, 1, a.k, a.k_row, 1, T(0), a.dq, a.dq_row, 1);
  builtin_gemm(a.S, a.D, a.T_, T(1), ds, 1, Sp, a.q, a.q_row, 1, T(0), a.dk, a.dk_row, 1);
  builtin_gemm(a.S, a.Dv, a.T_, T(1), p, 1, Sp, a.g, a.g_row, 1, T(0), a.dv, a.dv_row, 1);
}

struct Layout {
  int64_t slices, T, S, D, Dv;
};

Layout layout_of(const Tensor& q, const Tensor& k, const Tensor& v) {
  const int nd = q.dim();
  Layout l{1, q.shape()[nd - 2], k.shape()[nd - 2], q.shape()[nd - 1], v.shape()[nd - 1]};
  for (int d = 0; d < nd - 2; ++d) l.slices *= q.shape()[d];
  return l;
}

// Where slice n of a strided [..., rows, cols] operand starts, and its strides.
template <typename T>
struct Operand {
  const Tensor* t = nullptr;
  int64_t row = 0, col = 0;

  Operand() = default;
  explicit Operand(const Tensor& tensor)
      : t(&tensor), row(tensor.strides()[tensor.dim() - 2]), col(tensor.strides()[tensor.dim() - 1]) {}
  T* at(int64_t n) const { return t ? t->data_ptr<T>() + batch_offset(*t, n) : nullptr; }
};

template <typename T>
struct SliceMaker {
  Layout l;
  double scale;
  bool causal;
  Operand<T> q, k, v, mask, g, out, dq, dk, dv;

  SliceMaker(const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& mask_, double scale_, bool causal_)
      : l(layout_of(q_, k_, v_)), scale(scale_), causal(causal_), q(q_), k(k_), v(v_) {
    if (mask_.defined()) mask = Operand<T>(mask_);
  }

  Slice<T> operator()(int64_t n) const {
    return Slice<T>{q.at(n),  k.at(n),  v.at(n),  mask.at(n), g.at(n),  out.at(n), dq.at(n),
                    dk.at(n), dv.at(n), q.row,    k.row,      v.row,    mask.row,  mask.col,
                    g.row,    out.row,  dq.row,   dk.row,     dv.row,   l.T,       l.S,
                    l.D,      l.Dv,     static_cast<T>(scale), causal};
  }
};

}  // namespace

void attention(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
               const Tensor& mask, double scale, bool causal) {
  dispatch_float(q.dtype(), "attention", [&](auto tag) {
    using T = decltype(tag);
    SliceMaker<T> make(q, k, v, mask, scale, causal);
    make.out = Operand<T>(out);
    const int64_t rows = make.l.T;
    T* ls = lse.data_ptr<T>();
    parallel_for(0, make.l.slices, 1, [&](int64_t lo, int64_t hi) {
      Scratch<T> buf;
      for (int64_t n = lo; n < hi; ++n) attention_slice(make(n), ls + n * rows, buf);
    });
  });
}

void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& grad_out,
                        const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lse,
                        const Tensor& mask, double scale, bool causal) {
  dispatch_float(q.dtype(), "attention_backward", [&](auto tag) {
    using T = decltype(tag);
    SliceMaker<T> make(q, k, v, mask, scale, causal);
    make.g = Operand<T>(grad_out);
    make.dq = Operand<T>(dq);
    make.dk = Operand<T>(dk);
    make.dv = Operand<T>(dv);
    const int64_t rows = make.l.T;
    const T* ls = lse.data_ptr<T>();
    parallel_for(0, make.l.slices, 1, [&](int64_t lo, int64_t hi) {
      Scratch<T> buf;
      for (int64_t n = lo; n < hi; ++n) attention_backward_slice(make(n), ls + n * rows, buf);
    });
  });
}

}  // namespace mmgrad::cpu
