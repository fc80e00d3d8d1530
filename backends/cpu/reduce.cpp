// Reductions (sum, max, min, with optional indices) over any set of dims.
//
// The output keeps the input's rank with size 1 on reduced dims. Dims are coalesced first
// (adjacent dims that are contiguous with each other merge), then one of three loops runs:
//  - inner reduction: each output element reduces one run of the input (sum over last dim);
//  - column accumulation: the innermost dim is kept, so whole rows are added into an
//    accumulator row, which streams memory and vectorises (sum over the batch, bias grads);
//  - full reduction: the input is cut into fixed-size chunks whose partial results are
//    combined in order, so the result does not depend on the number of threads.
// f32 sums accumulate in f64, so long reductions do not drift.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/vec_math.h"

namespace mmgrad::cpu {
namespace {

struct Dim {
  int64_t size, in_stride, out_stride, idx_stride;
};

// Offset contributions of flat index `i` over `dims` (row-major), for the in/out/idx strides.
struct Offsets {
  int64_t in = 0, out = 0, idx = 0;
};
Offsets offsets_of(int64_t i, const std::vector<Dim>& dims) {
  Offsets o;
  for (int d = static_cast<int>(dims.size()) - 1; d >= 0; --d) {
    int64_t k = i % dims[d].size;
    i /= dims[d].size;
    o.in += k * dims[d].in_stride;
    o.out += k * dims[d].out_stride;
    o.idx += k * dims[d].idx_stride;
  }
  return o;
}

std::vector<Dim> coalesce(std::vector<Dim> dims) {
  std::vector<Dim> out;
  for (const Dim& d : dims) {
    if (!out.empty()) {
      Dim& prev = out.back();
      if (prev.in_stride == d.in_stride * d.size && prev.out_stride == d.out_stride * d.size &&
          prev.idx_stride == d.idx_stride * d.size) {
        prev.size *= d.size;
        prev.in_stride = d.in_stride;
        prev.out_stride = d.out_stride;
        prev.idx_stride = d.idx_stride;
        continue;
      }
    }
    out.push_back(d);
  }
  return out;
}

// Running state of one reduction: a value and, for max/min, where it was found.
template <typename T, typename Acc>
struct Accumulator {
  ReduceOp op;
  Acc value{};
  int64_t index = -1;  // -1: nothing seen yet

  void add(T v, int64_t at) {
    if (op == ReduceOp::Sum) {
      value += static_cast<Acc>(v);
      index = 0;
      return;
    }
    if (index < 0 || better(v)) {
      value = static_cast<Acc>(v);
      index = at;
    }
  }
  void merge(const Accumulator& other) {
    if (other.index < 0) return;
    if (op == ReduceOp::Sum) {
      value += other.value;
      index = 0;
    } else if (index < 0 || better(static_cast<T>(other.value))) {
      value = other.value;
      index = other.index;
    }
  }
  bool better(T v) const {
    if constexpr (std::is_floating_point_v<T>) {
      // NaN wins and stays, so a NaN anywhere shows in the result (as in PyTorch).
      if (std::isnan(static_cast<double>(value))) return false;
      if (std::isnan(v)) return true;
    }
    return op == ReduceOp::Max ? v > static_cast<T>(value) : v < static_cast<T>(value);
  }
};

// acc[c] = sum over rows r < n of row[r * stride + c]: the column sums' inner loops (a bias
// gradient sums [rows, width] over its rows), for a whole chunk of evenly spaced rows in one
// call. Multiversioned: the baseline (SSE2) float-to-double widening adds ran two lanes at a
// time, 3% of the shapes-small step; and one call per row cost a dispatch through the
// multiversion resolver each time (another 1.5%).
template <typename T, typename Acc>
MMGRAD_MULTIVERSION void accumulate_rows(Acc* __restrict acc, const T* __restrict rows, int64_t stride, int64_t n,
                                         int64_t width) {
  for (int64_t c = 0; c < width; ++c) acc[c] = static_cast<Acc>(rows[c]);
  for (int64_t r = 1; r < n; ++r) {
    const T* row = rows + r * stride;
    for (int64_t c = 0; c < width; ++c) acc[c] += static_cast<Acc>(row[c]);
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& out, const Tensor& indices, const Tensor& in) {
  std::vector<Dim> kept, red;
  for (int d = 0; d < in.dim(); ++d) {
    int64_t size = in.shape()[d];
    if (size == 1) continue;
    int64_t idx_stride = indices.defined() ? indices.strides()[d] : 0;
    if (out.shape()[d] == 1)
      red.push_back({size, in.strides()[d], 0, 0});
    else
      kept.push_back({size, in.strides()[d], out.strides()[d], idx_stride});
  }
  if (out.numel() == 0) return;
  if (indices.defined() && red.size() > 1)
    fail("reduce", "indices can only be returned for a reduction over one dim");
  kept = coalesce(kept);
  red = coalesce(red);
  const int64_t n_out = std::max<int64_t>(1, [&] { int64_t n = 1; for (auto& d : kept) n *= d.size; return n; }());
  int64_t n_red = 1;
  for (auto& d : red) n_red *= d.size;
  if (n_red == 0 && op != ReduceOp::Sum) fail(reduce_op_name(op), "cannot reduce over an empty dimension");
  if (in.numel() == 0 && op == ReduceOp::Sum) {  // sums over empty dims are 0
    fill(out, 0);
    if (indices.defined()) fill(indices, 0);
    return;
  }

  dispatch_numeric(in.dtype(), reduce_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
    using A = Accumulator<T, Acc>;
    const T* src = static_cast<const T*>(in.raw_data());
    T* dst = static_cast<T*>(out.raw_data());
    int64_t* idx = indices.defined() ? static_cast<int64_t*>(indices.raw_data()) : nullptr;

    // Reduces flat reduced positions [lo, hi) starting at input offset `base`.
    auto reduce_range = [&](const T* base, int64_t lo, int64_t hi, A& acc) {
      if (red.size() == 1) {
        const int64_t s = red[0].in_stride;
        if (op == ReduceOp::Sum && s == 1) {
          acc.value += sum_lanes<Acc>(base + lo, hi - lo);
          acc.index = 0;
        } else {
          for (int64_t r = lo; r < hi; ++r) acc.add(base[r * s], r);
        }
      } else {
        for (int64_t r = lo; r < hi; ++r) acc.add(base[offsets_of(r, red).in], r);
      }
    };

    if (kept.empty()) {
      // Full reduction: fixed chunks, partials combined in order (thread-count independent).
      constexpr int64_t kChunk = 1 << 16;
      int64_t chunks = (n_red + kChunk - 1) / kChunk;
      std::vector<A> partial(chunks, A{op});
      parallel_for(0, chunks, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t c = lo; c < hi; ++c)
          reduce_range(src, c * kChunk, std::min(n_red, (c + 1) * kChunk), partial[c]);
      });
      A total{op};
      for (const A& p : partial) total.merge(p);
      dst[0] = static_cast<T>(total.value);
      if (idx) idx[0] = total.index;
      return;
    }

    const Dim& inner = kept.back();
    if (!idx && !red.empty() && inner.in_stride == 1) {
      // Column accumulation: add whole input rows into an accumulator row. Tasks are
      // (outer index, block of kBlock columns, chunk of kRows rows); a bias gradient has one
      // column block, so without the row chunks it ran on one thread. Sums over several
      // chunks combine the chunks' partial rows in order afterwards: the chunking is fixed,
      // so the result does not depend on the number of threads.
      constexpr int64_t kBlock = 256;
      constexpr int64_t kRows = 512;
      std::vector<Dim> outer(kept.begin(), kept.end() - 1);
      int64_t n_outer = 1;
      for (auto& d : outer) n_outer *= d.size;
      const int64_t blocks = (inner.size + kBlock - 1) / kBlock;
      const int64_t chunks = op == ReduceOp::Sum ? (n_red + kRows - 1) / kRows : 1;
      const int64_t rows_per_chunk = chunks == 1 ? n_red : kRows;
      std::vector<Acc> partial(chunks > 1 ? static_cast<size_t>(n_outer * blocks * chunks * kBlock) : 0);
      parallel_for(0, n_outer * blocks * chunks, 1, [&](int64_t lo, int64_t hi) {
        Acc local[kBlock];
        for (int64_t task = lo; task < hi; ++task) {
          const int64_t chunk = task % chunks, ob = task / chunks;
          Offsets o = offsets_of(ob / blocks, outer);
          int64_t c0 = (ob % blocks) * kBlock, width = std::min(kBlock, inner.size - c0);
          Acc* acc = local;
          const int64_t r0 = chunk * rows_per_chunk, r1 = std::min(n_red, r0 + rows_per_chunk);
          if (op == ReduceOp::Sum && red.size() == 1) {  // evenly spaced rows (a bias gradient): one call
            accumulate_rows(acc, src + o.in + r0 * red[0].in_stride + c0, red[0].in_stride, r1 - r0, width);
          } else {
            for (int64_t r = r0; r < r1; ++r) {
              const T* row = src + o.in + offsets_of(r, red).in + c0;
              if (r == r0) {
                for (int64_t c = 0; c < width; ++c) acc[c] = static_cast<Acc>(row[c]);
              } else if (op == ReduceOp::Sum) {  // sums over several reduced dims
                for (int64_t c = 0; c < width; ++c) acc[c] += static_cast<Acc>(row[c]);
              } else {
                for (int64_t c = 0; c < width; ++c) {
                  A a{op, acc[c], 0};
                  a.add(row[c], 1);
                  acc[c] = a.value;
                }
              }
            }
          }
          if (chunks > 1) {
            std::copy(acc, acc + width, partial.data() + task * kBlock);
            continue;
          }
          T* drow = dst + o.out + c0 * inner.out_stride;
          for (int64_t c = 0; c < width; ++c) drow[c * inner.out_stride] = static_cast<T>(acc[c]);
        }
      });
      if (chunks > 1) {
        parallel_for(0, n_outer * blocks, 1, [&](int64_t lo, int64_t hi) {
          for (int64_t ob = lo; ob < hi; ++ob) {
            Offsets o = offsets_of(ob / blocks, outer);
            int64_t c0 = (ob % blocks) * kBlock, width = std::min(kBlock, inner.size - c0);
            const Acc* first = partial.data() + ob * chunks * kBlock;
            T* drow = dst + o.out + c0 * inner.out_stride;
            for (int64_t c = 0; c < width; ++c) {
              Acc sum = first[c];
              for (int64_t k = 1; k < chunks; ++k) sum += first[k * kBlock + c];
              drow[c * inner.out_stride] = static_cast<T>(sum);
            }
          }
        });
      }
      return;
    }

    // Inner reduction: each output element reduces its own run.
    int64_t grain = std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(n_red, 1));
    parallel_for(0, n_out, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o) {
        Offsets off = offsets_of(o, kept);
        A acc{op};
        reduce_range(src + off.in, 0, n_red, acc);
        dst[off.out] = static_cast<T>(acc.value);
        if (idx) idx[off.idx] = acc.index;
      }
    });
  });
}

}  // namespace mmgrad::cpu
