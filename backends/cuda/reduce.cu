// Reductions (sum, max, min, optionally with the index of the max/min) over any set of
// dims, with the CPU's semantics (backends/cpu/reduce.cpp): f32 sums accumulate in f64, a
// NaN wins max/min, ties go to the first position.
//
// Three kernels. Each output element's reduced positions are cut into chunks (grid.y) so a
// large reduction with few outputs (a full sum, a parameter's sum of squares) still fills
// the GPU; chunk partials are combined in chunk order, so results do not depend on timing.
//  - rows: a block reduces one output's chunk (reduced elements spread over the threads);
//  - columns: when the innermost kept dim is dense, each thread owns one output element and
//    walks the reduced positions, so a warp reads 32 neighbours at once (bias gradients);
//  - combine: one thread per output folds the chunk partials.
#include <algorithm>
#include <vector>

#include "backends/cuda/kernels.h"
#include "backends/cuda/launch.cuh"

namespace mmgrad::cuda {
namespace {

template <typename Acc>
struct State {
  Acc v;
  int64_t idx;  // -1: nothing seen
};

template <typename Acc>
__device__ inline State<Acc> combine(ReduceOp op, State<Acc> a, State<Acc> b) {
  if (b.idx < 0) return a;
  if (a.idx < 0) return b;
  if (op == ReduceOp::Sum) return {a.v + b.v, 0};
  // a comes first in position order unless its index is larger.
  bool first_a = a.idx <= b.idx;
  if constexpr (std::is_floating_point_v<Acc>) {
    bool na = isnan(a.v), nb = isnan(b.v);
    if (na && nb) return first_a ? a : b;
    if (na) return a;
    if (nb) return b;
  }
  if (a.v == b.v) return first_a ? a : b;
  bool b_better = op == ReduceOp::Max ? b.v > a.v : b.v < a.v;
  return b_better ? b : a;
}

struct Geometry {
  // kept dims: offsets into in, out, indices; reduced dims: offsets into in.
  Strided<3> kept;
  Strided<1> red;
  int64_t n_out = 1, n_red = 1, chunk = 1, chunks = 1;
};

template <typename T, typename Acc>
__global__ void reduce_rows_kernel(ReduceOp op, Geometry g, const T* in, State<Acc>* partial, T* out,
                                   int64_t* indices) {
  __shared__ State<Acc> buf[kThreads];
  const int64_t c = blockIdx.y;
  const int64_t lo = c * g.chunk, hi = min(g.n_red, lo + g.chunk);
  for (int64_t o = blockIdx.x; o < g.n_out; o += gridDim.x) {
    int64_t ko[3];
    g.kept.offsets(o, ko);
    State<Acc> st{Acc(0), -1};
    for (int64_t r = lo + threadIdx.x; r < hi; r += blockDim.x) {
      int64_t ro[1];
      g.red.offsets(r, ro);
      st = combine<Acc>(op, st, State<Acc>{static_cast<Acc>(in[ko[0] + ro[0]]), r});
    }
    buf[threadIdx.x] = st;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
      if (threadIdx.x < w) buf[threadIdx.x] = combine<Acc>(op, buf[threadIdx.x], buf[threadIdx.x + w]);
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      if (partial) {
        partial[c * g.n_out + o] = buf[0];
      } else {
        out[ko[1]] = static_cast<T>(buf[0].v);
        if (indices) indices[ko[2]] = buf[0].idx;
      }
    }
    __syncthreads();
  }
}

// Each thread folds its column's rows in order, loading kColumnUnroll rows before folding
// them: the loads do not depend on each other, so a thread keeps that many in flight. With
// one load at a time, 512 blocks of 256 threads hold about 0.5 MB in flight, a sixth of what
// an H200 needs to reach its bandwidth (the bias gradients of clip-b32 took 15 ms of a 144 ms
// step that way, against about 2.5 ms of bytes).
constexpr int kColumnUnroll = 8;

template <typename T, typename Acc>
__global__ void reduce_columns_kernel(ReduceOp op, Geometry g, const T* __restrict__ in, State<Acc>* partial,
                                      T* out) {
  const int64_t c = blockIdx.y;
  const int64_t lo = c * g.chunk, hi = min(g.n_red, lo + g.chunk);
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < g.n_out;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t ko[3];
    g.kept.offsets(o, ko);
    const T* column = in + ko[0];
    State<Acc> st{Acc(0), -1};
    int64_t r = lo;
    for (; r + kColumnUnroll <= hi; r += kColumnUnroll) {
      T v[kColumnUnroll];
#pragma unroll
      for (int u = 0; u < kColumnUnroll; ++u) {
        int64_t ro[1];
        g.red.offsets(r + u, ro);
        v[u] = column[ro[0]];
      }
#pragma unroll
      for (int u = 0; u < kColumnUnroll; ++u) st = combine<Acc>(op, st, State<Acc>{static_cast<Acc>(v[u]), r + u});
    }
    for (; r < hi; ++r) {
      int64_t ro[1];
      g.red.offsets(r, ro);
      st = combine<Acc>(op, st, State<Acc>{static_cast<Acc>(column[ro[0]]), r});
    }
    if (partial)
      partial[c * g.n_out + o] = st;
    else
      out[ko[1]] = static_cast<T>(st.v);
  }
}

template <typename T, typename Acc>
__global__ void combine_kernel(ReduceOp op, Geometry g, const State<Acc>* partial, T* out, int64_t* indices) {
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < g.n_out;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t ko[3];
    g.kept.offsets(o, ko);
    State<Acc> st{Acc(0), -1};
    for (int64_t c = 0; c < g.chunks; ++c) st = combine<Acc>(op, st, partial[c * g.n_out + o]);
    out[ko[1]] = static_cast<T>(st.v);
    if (indices) indices[ko[2]] = st.idx;
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& out, const Tensor& indices, const Tensor& in) {
  const char* name = reduce_op_name(op);
  Shape kept_shape, red_shape;
  std::vector<int64_t> kin, kout, kidx, rin;
  for (int d = 0; d < in.dim(); ++d) {
    const int64_t size = in.shape()[d];
    if (size == 1) continue;
    if (out.shape()[d] == 1) {
      red_shape.push_back(size);
      rin.push_back(in.strides()[d]);
    } else {
      kept_shape.push_back(size);
      kin.push_back(in.strides()[d]);
      kout.push_back(out.strides()[d]);
      kidx.push_back(indices.defined() ? indices.strides()[d] : 0);
    }
  }
  if (out.numel() == 0) return;
  if (indices.defined() && red_shape.size() > 1)
    fail("reduce", "indices can only be returned for a reduction over one dim");
  Geometry g;
  g.n_out = numel_of(kept_shape);
  g.n_red = numel_of(red_shape);
  if (g.n_red == 0 && op != ReduceOp::Sum) fail(name, "cannot reduce over an empty dimension");
  if (g.n_red == 0) {  // sums over empty dims are 0
    fill(out, 0);
    if (indices.defined()) fill(indices, 0);
    return;
  }
  // Strided views of the kept and reduced index spaces (views with the right strides, so
  // make_strided can coalesce them).
  auto view = [](const Tensor& base, const Shape& shape, const std::vector<int64_t>& strides) {
    return Tensor::alias(base, shape, Shape(strides.begin(), strides.end()), base.offset());
  };
  Tensor probe_idx = indices.defined() ? indices : out;  // stride source when there are no indices
  Tensor kin_v = view(in, kept_shape, kin), kout_v = view(out, kept_shape, kout),
         kidx_v = view(probe_idx, kept_shape, indices.defined() ? kidx : kout);
  Tensor rin_v = view(in, red_shape, rin);
  g.kept = make_strided<3>(kept_shape, {&kin_v, &kout_v, &kidx_v}, name);
  g.red = make_strided<1>(red_shape, {&rin_v}, name);

  // Dense innermost kept dim and no indices: the column kernel.
  const bool columns = !indices.defined() && !kept_shape.empty() && g.kept.stride[0][g.kept.nd - 1] == 1 &&
                       g.n_out >= 32;
  // Chunks: enough blocks (or threads) to fill the GPU, chunks of at least 1024 positions
  // (columns: 64 rows, and about 1024 blocks: an H100/H200 holds 8 blocks of 256 threads on
  // each of its 132 multiprocessors).
  const int64_t min_chunk = columns ? 64 : 1024;
  const int64_t work_units = columns ? (g.n_out + kThreads - 1) / kThreads : g.n_out;
  const int64_t target_blocks = columns ? 1024 : 512;
  int64_t chunks =
      std::max<int64_t>(1, std::min<int64_t>(g.n_red / min_chunk, target_blocks / std::max<int64_t>(work_units, 1)));
  chunks = std::min<int64_t>(chunks, 65535);
  g.chunk = (g.n_red + chunks - 1) / chunks;
  g.chunks = (g.n_red + g.chunk - 1) / g.chunk;

  dispatch_numeric(in.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
    const T* src = static_cast<const T*>(in.raw_data());
    T* dst = static_cast<T*>(out.raw_data());
    int64_t* idx = indices.defined() ? static_cast<int64_t*>(indices.raw_data()) : nullptr;
    Tensor partial_buf;
    State<Acc>* partial = nullptr;
    if (g.chunks > 1) {
      partial_buf = Tensor::empty({static_cast<int64_t>(g.chunks * g.n_out * sizeof(State<Acc>))}, DType::Bool,
                                  in.device());
      partial = static_cast<State<Acc>*>(partial_buf.raw_data());
    }
    const unsigned chunk_dim = static_cast<unsigned>(g.chunks);
    ProfileScope profile(columns ? "reduce (columns)" : "reduce (rows)");
    if (columns) {
      dim3 grid(blocks_for(g.n_out), chunk_dim);
      reduce_columns_kernel<T, Acc><<<grid, kThreads, 0, stream()>>>(op, g, src, partial, dst);
    } else {
      dim3 grid(static_cast<unsigned>(std::min<int64_t>(g.n_out, 1 << 20)), chunk_dim);
      reduce_rows_kernel<T, Acc><<<grid, kThreads, 0, stream()>>>(op, g, src, partial, dst, idx);
    }
    check_launch(name);
    if (partial) {
      combine_kernel<T, Acc><<<blocks_for(g.n_out), kThreads, 0, stream()>>>(op, g, partial, dst, idx);
      check_launch(name);
    }
  });
}

}  // namespace mmgrad::cuda
