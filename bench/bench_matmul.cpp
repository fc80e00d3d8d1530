// GEMM throughput at the shapes of one clip-tiny training step (docs: shared/spec/MODELS.md).
//
//   bench_matmul [--reps N] [--isa avx512|avx2|generic]
//
// For every shape: GFLOP/s of mmgrad::cpu::gemm (the entry point the matmul kernel uses), of
// a direct cblas_sgemm call on the same data (OpenBLAS build only) and of mmgrad's own
// builtin_gemm, and of the whole mmgrad::matmul op on tensors, each the median of N timed runs after one warm-up. Linear layers y = x W^T
// appear three times: forward (NT), dX = dY W (NN) and dW = dY^T X (TN). Attention products
// are per (sample, head) and run as a loop of `batch` calls. g/cb and bi/cb are speed ratios
// against the direct cblas call (time_cblas / time_x: above 1 means faster than OpenBLAS). "count" is how many times the
// shape occurs in one MODELS.md benchmark step (towers, projections, logits and the fusion
// model's ITM pass; the list is bench_common.h's clip_step_gemms); the last line weights
// the times by it.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "backends/cpu/gemm.h"
#include "bench/bench_common.h"
#include "core/blas_info.h"

#ifdef MMGRAD_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace {

using Case = mmgrad::bench::GemmShape;

// clip-tiny (image 32, patch 4 -> 65 tokens; context 32; width 128, 4 layers, 4 heads, MLP
// 512; 2 fusion layers), batch 128: the GEMMs of one MODELS.md benchmark step (bench_common.h).
std::vector<Case> clip_tiny_cases() { return mmgrad::bench::clip_step_gemms(mmgrad::nn::preset("clip-tiny"), 128); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Median seconds of `reps` runs of fn after one warm-up run.
double time_median(int reps, const std::function<void()>& fn) {
  fn();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  return median(t);
}

using GemmFn = void (*)(int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                        const float*, int64_t, int64_t, float, float*, int64_t, int64_t);

#ifdef MMGRAD_HAVE_OPENBLAS
// Direct cblas_sgemm with the layout mmgrad::cpu::gemm gets (row-major C, A and B plain or
// transposed), as the reference.
void direct_cblas(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa,
                  int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta, float* C,
                  int64_t rsc, int64_t /*csc*/) {
  const bool ta = csa != 1, tb = csb != 1;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A,
              static_cast<int>(ta ? csa : rsa), B, static_cast<int>(tb ? csb : rsb), beta, C,
              static_cast<int>(rsc));
}
#endif

void builtin_f32(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa,
                 int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta, float* C,
                 int64_t rsc, int64_t csc) {
  mmgrad::cpu::builtin_gemm(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}

void mmgrad_f32(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa,
                int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta, float* C,
                int64_t rsc, int64_t csc) {
  mmgrad::cpu::gemm(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}

struct Data {
  std::vector<float> a, b, c;
};

double run_case(const Case& cs, Data& d, GemmFn fn, int reps) {
  const int64_t sa = cs.M * cs.K, sb = cs.K * cs.N, sc = cs.M * cs.N;
  const int64_t rsa = cs.ta ? 1 : cs.K, csa = cs.ta ? cs.M : 1;
  const int64_t rsb = cs.tb ? 1 : cs.N, csb = cs.tb ? cs.K : 1;
  return time_median(reps, [&] {
    for (int64_t b = 0; b < cs.batch; ++b)
      fn(cs.M, cs.N, cs.K, 1.0f, d.a.data() + b * sa, rsa, csa, d.b.data() + b * sb, rsb, csb,
         0.0f, d.c.data() + b * sc, cs.N, 1);
  });
}

// The whole op, as model code calls it: mmgrad::matmul on tensors, with the transposed
// operands as views (allocation of the output and dispatch included; batched products go
// through the batch-parallel path of the CPU kernel).
double run_matmul_op(const Case& cs, Data& d, int reps) {
  using namespace mmgrad;
  NoGradGuard no_grad;
  auto as_tensor = [&](std::vector<float>& v, int64_t rows, int64_t cols, bool transposed) {
    Shape stored = cs.batch > 1 ? Shape{cs.batch, transposed ? cols : rows, transposed ? rows : cols}
                                : Shape{transposed ? cols : rows, transposed ? rows : cols};
    Tensor t = from_data(v, stored);
    return transposed ? transpose(t, -1, -2) : t;
  };
  Tensor a = as_tensor(d.a, cs.M, cs.K, cs.ta), b = as_tensor(d.b, cs.K, cs.N, cs.tb);
  return time_median(reps, [&] { matmul(a, b); });
}

}  // namespace

int main(int argc, char** argv) {
  mmgrad::ensure_blas_kernels(argc, argv);
  int reps = 10;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--isa") == 0 && i + 1 < argc) {
      const char* isa = argv[++i];
      if (!mmgrad::cpu::set_builtin_gemm_isa(isa)) {
        std::fprintf(stderr, "bench_matmul: this CPU cannot run builtin ISA '%s'\n", isa);
        return 2;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--reps N] [--isa avx512|avx2|generic]\n", argv[0]);
      return 2;
    }
  }
  std::printf("%s\n", mmgrad::blas_summary().c_str());
  std::printf("builtin GEMM: %s, %d threads; median of %d runs\n", mmgrad::cpu::builtin_gemm_isa(),
              mmgrad::cpu::builtin_gemm_threads(), reps);

  const std::vector<Case> cases = clip_tiny_cases();
#ifdef MMGRAD_HAVE_OPENBLAS
  const bool have_blas = true;
#else
  const bool have_blas = false;
#endif
  std::printf("%-24s %5s %5s %5s %2s %4s %4s | %8s %8s %8s %8s | %6s %6s %6s\n", "shape", "M", "N",
              "K", "op", "bat", "cnt", "matmul", "gemm", "cblas", "builtin", "mm/cb", "g/cb", "bi/cb");
  std::printf("%-24s %5s %5s %5s %2s %4s %4s | %8s %8s %8s %8s | %6s %6s %6s\n", "", "", "", "", "",
              "", "", "GFLOP/s", "GFLOP/s", "GFLOP/s", "GFLOP/s", "", "", "");
  // Builtin runs first for every shape, OpenBLAS after: OpenBLAS's worker threads keep
  // spinning for a while after each call (OPENBLAS_THREAD_TIMEOUT) and would steal the cores
  // from mmgrad's thread pool if the two were interleaved.
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<Data> data(cases.size());
  std::vector<double> t_bi(cases.size()), t_g(cases.size()), t_cb(cases.size(), 0.0),
      t_op(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& cs = cases[i];
    Data& d = data[i];
    d.a.resize(static_cast<size_t>(cs.batch * cs.M * cs.K));
    d.b.resize(static_cast<size_t>(cs.batch * cs.K * cs.N));
    d.c.assign(static_cast<size_t>(cs.batch * cs.M * cs.N), 0.0f);
    for (float& x : d.a) x = dist(rng);
    for (float& x : d.b) x = dist(rng);
    t_bi[i] = run_case(cs, d, builtin_f32, reps);
  }
  for (size_t i = 0; i < cases.size(); ++i) t_op[i] = run_matmul_op(cases[i], data[i], reps);
  for (size_t i = 0; i < cases.size(); ++i) {
    t_g[i] = run_case(cases[i], data[i], mmgrad_f32, reps);
#ifdef MMGRAD_HAVE_OPENBLAS
    t_cb[i] = run_case(cases[i], data[i], direct_cblas, reps);
#endif
  }
  double step_flops = 0, t_gemm = 0, t_blas = 0, t_builtin = 0, t_matmul = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& cs = cases[i];
    const double flops = 2.0 * static_cast<double>(cs.M * cs.N * cs.K * cs.batch);
    const double tg = t_g[i], tb = t_cb[i], ti = t_bi[i], to = t_op[i];
    const char* op = cs.ta ? (cs.tb ? "TT" : "TN") : (cs.tb ? "NT" : "NN");
    char blas_col[16] = "       -", r0[16] = "     -", r1[16] = "     -", r2[16] = "     -";
    if (have_blas) {
      std::snprintf(r0, sizeof r0, "%6.2f", tb / to);
      std::snprintf(blas_col, sizeof blas_col, "%8.1f", flops / tb * 1e-9);
      std::snprintf(r1, sizeof r1, "%6.2f", tb / tg);
      std::snprintf(r2, sizeof r2, "%6.2f", tb / ti);
    }
    std::printf("%-24s %5lld %5lld %5lld %2s %4lld %4lld | %8.1f %8.1f %8s %8.1f | %6s %6s %6s\n",
                cs.name.c_str(), static_cast<long long>(cs.M), static_cast<long long>(cs.N),
                static_cast<long long>(cs.K), op, static_cast<long long>(cs.batch),
                static_cast<long long>(cs.count), flops / to * 1e-9, flops / tg * 1e-9, blas_col,
                flops / ti * 1e-9, r0, r1, r2);
    const double n = static_cast<double>(cs.count);
    step_flops += n * flops;
    t_gemm += n * tg;
    t_blas += n * tb;
    t_builtin += n * ti;
    t_matmul += n * to;
  }
  std::printf("step total (count-weighted): %.2f GFLOP; matmul op %.1f ms (%.1f GFLOP/s), gemm %.1f ms (%.1f GFLOP/s)",
              step_flops * 1e-9, t_matmul * 1e3, step_flops / t_matmul * 1e-9, t_gemm * 1e3,
              step_flops / t_gemm * 1e-9);
  if (have_blas)
    std::printf(", cblas %.1f ms (%.1f GFLOP/s)", t_blas * 1e3, step_flops / t_blas * 1e-9);
  std::printf(", builtin %.1f ms (%.1f GFLOP/s)\n", t_builtin * 1e3,
              step_flops / t_builtin * 1e-9);
  return 0;
}
