// mmgrad::cpu::gemm and builtin_gemm against a naive triple loop accumulated in double
// (long double for the f64 runs).
//
// Tolerances: each element of C is compared with |got - ref| <= tol * scale where
// scale = |alpha| * sum_k |A(i,k)| |B(k,j)| + |beta * C0(i,j)| (the natural bound for a dot
// product's rounding error) and tol = 4 * (K + 2) * eps: eps = 2^-24 ~ 6e-8 for f32 (so about
// 2.4e-7 * K, well within the ~1e-5*K-scaled budget), 2^-53 for f64. Any blocking or
// summation order the kernels pick stays inside this bound; a wrong index does not.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "backends/cpu/gemm.h"

namespace {

using mmgrad::cpu::builtin_gemm;
using mmgrad::cpu::gemm;

enum class Impl { Gemm, Builtin };

// Where the operands live: a strided view into a larger buffer whose other elements are
// sentinels (so writes outside C's view are caught).
enum class Layout {
  RowMajor,     // X(r,c) = buf[off + r*ld + c], ld = cols + pad
  ColMajor,     // X(r,c) = buf[off + c*ld + r], ld = rows + pad (a transposed view)
  Strided,      // X(r,c) = buf[off + r*(2*cols+3) + 2*c]: no unit stride
  Broadcast,    // rows all alias row 0 (row stride 0); inputs only
};

struct View {
  int64_t off = 0, rs = 0, cs = 0, size = 0;
};

View make_view(Layout layout, int64_t rows, int64_t cols, int64_t pad) {
  View v;
  v.off = pad;  // not aligned on purpose
  switch (layout) {
    case Layout::RowMajor:
      v.rs = cols + pad;
      v.cs = 1;
      break;
    case Layout::ColMajor:
      v.rs = 1;
      v.cs = rows + pad;
      break;
    case Layout::Strided:
      v.rs = 2 * cols + 3;
      v.cs = 2;
      break;
    case Layout::Broadcast:
      v.rs = 0;
      v.cs = 1;
      break;
  }
  int64_t last = v.off;
  if (rows > 0 && cols > 0) last += (rows - 1) * v.rs + (cols - 1) * v.cs;
  v.size = last + 1 + pad;
  return v;
}

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::RowMajor: return "row";
    case Layout::ColMajor: return "col";
    case Layout::Strided: return "strided";
    case Layout::Broadcast: return "bcast";
  }
  return "?";
}

template <class T>
using Acc = std::conditional_t<std::is_same_v<T, float>, double, long double>;

template <class T>
struct Case {
  int64_t M, N, K;
  Layout la = Layout::RowMajor, lb = Layout::RowMajor, lc = Layout::RowMajor;
  int64_t pad = 0;
  T alpha = T(1), beta = T(0);
  uint32_t seed = 1;
};

template <class T>
std::string describe(const Case<T>& c, Impl impl) {
  return std::string(impl == Impl::Gemm ? "gemm" : "builtin_gemm") + "<" +
         (std::is_same_v<T, float> ? "f32" : "f64") + "> M=" + std::to_string(c.M) +
         " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) + " A=" + layout_name(c.la) +
         " B=" + layout_name(c.lb) + " C=" + layout_name(c.lc) + " pad=" + std::to_string(c.pad) +
         " alpha=" + std::to_string(c.alpha) + " beta=" + std::to_string(c.beta) +
         " isa=" + mmgrad::cpu::builtin_gemm_isa();
}

// Runs one case; returns the number of mismatching elements (reported via ADD_FAILURE).
template <class T>
void run_case(const Case<T>& c, Impl impl) {
  SCOPED_TRACE(describe(c, impl));
  std::mt19937 rng(c.seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T sentinel = T(12345.5);

  const View va = make_view(c.la, c.M, c.K, c.pad);
  const View vb = make_view(c.lb, c.K, c.N, c.pad);
  const View vc = make_view(c.lc, c.M, c.N, c.pad);
  // Elements outside the views hold NaN in A and B: reading one would poison C.
  std::vector<T> a(static_cast<size_t>(va.size), nan), b(static_cast<size_t>(vb.size), nan);
  std::vector<T> cbuf(static_cast<size_t>(vc.size), sentinel);
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t k = 0; k < c.K; ++k) a[va.off + i * va.rs + k * va.cs] = T(dist(rng));
  for (int64_t k = 0; k < c.K; ++k)
    for (int64_t j = 0; j < c.N; ++j) b[vb.off + k * vb.rs + j * vb.cs] = T(dist(rng));
  // beta == 0: C starts as NaN, which must not propagate.
  std::vector<T> c0(static_cast<size_t>(c.M * c.N));
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) {
      const T v = c.beta == T(0) ? nan : T(dist(rng));
      c0[i * c.N + j] = v;
      cbuf[vc.off + i * vc.rs + j * vc.cs] = v;
    }

  const T* A = a.data() + va.off;
  const T* B = b.data() + vb.off;
  T* C = cbuf.data() + vc.off;
  if (impl == Impl::Gemm)
    gemm(c.M, c.N, c.K, c.alpha, A, va.rs, va.cs, B, vb.rs, vb.cs, c.beta, C, vc.rs, vc.cs);
  else
    builtin_gemm(c.M, c.N, c.K, c.alpha, A, va.rs, va.cs, B, vb.rs, vb.cs, c.beta, C, vc.rs,
                 vc.cs);

  const long double eps = std::numeric_limits<T>::epsilon() / 2;
  const long double tol = 4.0L * static_cast<long double>(c.K + 2) * eps;
  int bad = 0;
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) {
      Acc<T> sum = 0, mag = 0;
      if (c.alpha != T(0))
        for (int64_t k = 0; k < c.K; ++k) {
          const Acc<T> x = A[i * va.rs + k * va.cs], y = B[k * vb.rs + j * vb.cs];
          sum += x * y;
          mag += std::fabs(x * y);
        }
      Acc<T> ref = static_cast<Acc<T>>(c.alpha) * sum;
      Acc<T> scale = std::fabs(static_cast<Acc<T>>(c.alpha)) * mag;
      if (c.beta != T(0)) {
        ref += static_cast<Acc<T>>(c.beta) * c0[i * c.N + j];
        scale += std::fabs(static_cast<Acc<T>>(c.beta) * c0[i * c.N + j]);
      }
      const T got = C[i * vc.rs + j * vc.cs];
      const long double err = std::fabs(static_cast<long double>(got) - ref);
      const bool ok = std::isfinite(got) && err <= tol * scale + 1e-30L;
      if (!ok && ++bad <= 5)
        ADD_FAILURE() << "C(" << i << "," << j << ") = " << got << ", expected "
                      << static_cast<double>(ref) << " (err " << static_cast<double>(err)
                      << ", allowed " << static_cast<double>(tol * scale) << ")";
    }
  EXPECT_EQ(bad, 0) << "mismatching elements";

  // Nothing outside C's view may change.
  std::vector<char> in_view(cbuf.size(), 0);
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) in_view[vc.off + i * vc.rs + j * vc.cs] = 1;
  int64_t clobbered = 0;
  for (size_t p = 0; p < cbuf.size(); ++p)
    if (!in_view[p] && !(cbuf[p] == sentinel)) ++clobbered;
  EXPECT_EQ(clobbered, 0) << "elements outside C's view were written";
}

struct Dims {
  int64_t M, N, K;
};

// Odd, tiny, tile-edge and multi-block sizes (KC is 256 in the builtin kernels, so K > 256
// exercises the beta of later K blocks; 300x257x129 runs on several threads).
const std::vector<Dims> kDims = {{1, 1, 1},     {7, 13, 5},     {65, 129, 33}, {300, 17, 257},
                                 {8, 32, 256},  {9, 33, 1},     {1, 100, 50},  {100, 1, 50},
                                 {64, 64, 300}, {17, 65, 600},  {4, 16, 3},    {33, 31, 64},
                                 {300, 257, 129}, {2, 3, 520}};

const Layout kInputLayouts[] = {Layout::RowMajor, Layout::ColMajor};

template <class T>
void run_transpose_matrix(Impl impl) {
  for (const Dims& d : kDims)
    for (Layout la : kInputLayouts)
      for (Layout lb : kInputLayouts)
        for (int64_t pad : {0, 3}) {
          Case<T> c{d.M, d.N, d.K};
          c.la = la;
          c.lb = lb;
          c.pad = pad;
          c.seed = static_cast<uint32_t>(d.M * 131 + d.N * 7 + d.K + pad);
          run_case(c, impl);
        }
}

template <class T>
void run_alpha_beta(Impl impl) {
  const T alphas[] = {T(1), T(-0.5), T(2.25)};
  const T betas[] = {T(0), T(1), T(-1.5)};
  for (const Dims& d : std::vector<Dims>{{7, 13, 5}, {65, 129, 33}, {64, 64, 300}, {1, 1, 1}})
    for (T alpha : alphas)
      for (T beta : betas) {
        Case<T> c{d.M, d.N, d.K};
        c.alpha = alpha;
        c.beta = beta;
        c.pad = 1;
        c.la = Layout::ColMajor;
        run_case(c, impl);
      }
}

template <class T>
void run_odd_layouts(Impl impl) {
  const Layout all[] = {Layout::RowMajor, Layout::ColMajor, Layout::Strided};
  for (const Dims& d : std::vector<Dims>{{7, 13, 5}, {65, 40, 33}, {1, 9, 4}, {9, 1, 4}})
    for (Layout la : {Layout::RowMajor, Layout::ColMajor, Layout::Strided, Layout::Broadcast})
      for (Layout lb : all)
        for (Layout lc : all)
          for (T beta : {T(0), T(0.5)}) {
            Case<T> c{d.M, d.N, d.K};
            c.la = la;
            c.lb = lb;
            c.lc = lc;
            c.beta = beta;
            c.pad = 2;
            run_case(c, impl);
          }
}

template <class T>
void run_random_sizes(Impl impl) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> small(1, 70);
  std::uniform_int_distribution<int> pick(0, 3);
  for (int t = 0; t < 40; ++t) {
    Case<T> c{small(rng), small(rng), small(rng)};
    c.la = kInputLayouts[pick(rng) % 2];
    c.lb = kInputLayouts[pick(rng) % 2];
    c.pad = pick(rng);
    c.beta = pick(rng) == 0 ? T(0.75) : T(0);
    c.seed = static_cast<uint32_t>(t + 100);
    run_case(c, impl);
  }
}

// C = A B^T with both operands contiguous along k (attention's Q K^T and dO V^T): where N ends
// one or two columns past a whole vector (65 keys), the AVX-512 kernel computes those
// columns as dot products, K's last k % 16 under a mask; rows one or two past a tile of 8
// (65 queries) take the 1- and 2-row tiles. Padded rows put NaN right after each operand's
// row, which a load past K would read.
template <class T>
void run_nt_tails(Impl impl) {
  const std::vector<Dims> dims = {{65, 65, 24}, {16, 65, 24}, {10, 18, 16}, {9, 34, 40},
                                  {2, 17, 7},   {1, 66, 33},  {17, 129, 300}};
  for (const Dims& d : dims)
    for (T beta : {T(0), T(-1.5)}) {
      Case<T> c{d.M, d.N, d.K};
      c.la = Layout::RowMajor;
      c.lb = Layout::ColMajor;
      c.alpha = T(-0.5);
      c.beta = beta;
      c.pad = 3;
      c.seed = static_cast<uint32_t>(d.M * 7 + d.N * 3 + d.K);
      run_case(c, impl);
    }
}

template <class T>
void run_all(Impl impl) {
  run_transpose_matrix<T>(impl);
  run_alpha_beta<T>(impl);
  run_odd_layouts<T>(impl);
  run_random_sizes<T>(impl);
  run_nt_tails<T>(impl);
}

// Runs fn once for every builtin ISA this CPU supports, then restores the default.
template <class Fn>
void for_each_isa(Fn fn) {
  const std::string original = mmgrad::cpu::builtin_gemm_isa();
  for (const char* isa : {"avx512", "avx2", "generic"}) {
    if (!mmgrad::cpu::builtin_gemm_isa_supported(isa)) continue;
    ASSERT_TRUE(mmgrad::cpu::set_builtin_gemm_isa(isa));
    fn();
  }
  ASSERT_TRUE(mmgrad::cpu::set_builtin_gemm_isa(original));
}

TEST(Gemm, F32MatchesNaive) { run_all<float>(Impl::Gemm); }
TEST(Gemm, F64MatchesNaive) { run_all<double>(Impl::Gemm); }

TEST(BuiltinGemm, F32MatchesNaiveOnEveryIsa) {
  for_each_isa([] { run_all<float>(Impl::Builtin); });
}
TEST(BuiltinGemm, F64MatchesNaiveOnEveryIsa) {
  for_each_isa([] { run_all<double>(Impl::Builtin); });
}

TEST(BuiltinGemm, SingleThreadedMatchesNaive) {
  mmgrad::cpu::set_builtin_gemm_threads(1);
  run_transpose_matrix<float>(Impl::Builtin);
  mmgrad::cpu::set_builtin_gemm_threads(0);
  EXPECT_GE(mmgrad::cpu::builtin_gemm_threads(), 1);
}

TEST(BuiltinGemm, IsaNames) {
  EXPECT_TRUE(mmgrad::cpu::builtin_gemm_isa_supported("generic"));
  EXPECT_FALSE(mmgrad::cpu::builtin_gemm_isa_supported("sse9"));
  EXPECT_FALSE(mmgrad::cpu::set_builtin_gemm_isa("sse9"));
  const std::string isa = mmgrad::cpu::builtin_gemm_isa();
  EXPECT_TRUE(isa == "avx512" || isa == "avx2" || isa == "generic") << isa;
}

template <class T>
void check_degenerate(Impl impl) {
  auto call = [&](int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* B, T beta,
                  T* C) {
    if (impl == Impl::Gemm)
      gemm(M, N, K, alpha, A, K, 1, B, N, 1, beta, C, N, 1);
    else
      builtin_gemm(M, N, K, alpha, A, K, 1, B, N, 1, beta, C, N, 1);
  };
  const T nan = std::numeric_limits<T>::quiet_NaN();
  // K == 0: C = beta * C; with beta == 0 NaN in C is overwritten with zeros.
  std::vector<T> c = {T(1), T(2), nan, T(4)};
  call(2, 2, 0, T(1), nullptr, nullptr, T(0), c.data());
  for (T v : c) EXPECT_EQ(v, T(0));
  c = {T(1), T(2), T(3), T(4)};
  call(2, 2, 0, T(1), nullptr, nullptr, T(2), c.data());
  EXPECT_EQ(c[3], T(8));
  // alpha == 0: A and B are not read (NaN there must not show up).
  std::vector<T> a(6, nan), b(6, nan);
  c = {T(1), T(2), T(3), T(4)};
  call(2, 2, 3, T(0), a.data(), b.data(), T(-1), c.data());
  EXPECT_EQ(c[0], T(-1));
  EXPECT_EQ(c[3], T(-4));
  // M == 0 or N == 0: nothing happens.
  call(0, 2, 3, T(1), a.data(), b.data(), T(0), c.data());
  call(2, 0, 3, T(1), a.data(), b.data(), T(0), c.data());
  EXPECT_EQ(c[0], T(-1));
}

TEST(Gemm, DegenerateSizesAndScalars) {
  check_degenerate<float>(Impl::Gemm);
  check_degenerate<double>(Impl::Gemm);
  check_degenerate<float>(Impl::Builtin);
  check_degenerate<double>(Impl::Builtin);
}

TEST(Gemm, SizeOneDimsIgnoreTheirStrides) {
  // M == 1 with a nonsense row stride, N == 1 with a nonsense column stride: never used.
  std::vector<float> a = {1, 2, 3}, b = {4, 5, 6}, c = {0};
  for (Impl impl : {Impl::Gemm, Impl::Builtin}) {
    c[0] = std::numeric_limits<float>::quiet_NaN();
    if (impl == Impl::Gemm)
      gemm(1, 1, 3, 1.0f, a.data(), -7, 1, b.data(), 1, 0, 0.0f, c.data(), 0, 0);
    else
      builtin_gemm(1, 1, 3, 1.0f, a.data(), -7, 1, b.data(), 1, 0, 0.0f, c.data(), 0, 0);
    EXPECT_EQ(c[0], 32.0f);
  }
}

TEST(Gemm, BuiltinAgreesWithGemmOnLargeProblem) {
  // Big enough to use several threads and several cache blocks in every dimension.
  const int64_t M = 520, N = 300, K = 700;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> a(M * K), b(K * N), c1(M * N), c2(M * N);
  for (float& x : a) x = dist(rng);
  for (float& x : b) x = dist(rng);
  gemm(M, N, K, 1.0f, a.data(), 1, M, b.data(), N, 1, 0.0f, c1.data(), N, 1);
  builtin_gemm(M, N, K, 1.0f, a.data(), 1, M, b.data(), N, 1, 0.0f, c2.data(), N, 1);
  // Both are within 4*(K+2)*2^-24*sum|a||b| of the exact value; sum|a||b| <= K/4 on average
  // for uniform(-1,1), so compare against twice that bound with a magnitude of ~K/4.
  const float tol = 2 * 4 * (K + 2) * 6e-8f * (K / 4.0f);
  for (int64_t i = 0; i < M * N; ++i) ASSERT_NEAR(c1[i], c2[i], tol) << "element " << i;
}

TEST(BuiltinGemm, ConcurrentCallersGetCorrectResults) {
  // Several threads calling at once (the pool is busy for all but one: the others run inline).
  const int64_t M = 200, N = 150, K = 170;
  std::vector<float> a(M * K), b(K * N);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& x : a) x = dist(rng);
  for (float& x : b) x = dist(rng);
  std::vector<float> ref(M * N);
  mmgrad::cpu::set_builtin_gemm_threads(1);
  builtin_gemm(M, N, K, 1.0f, a.data(), K, 1, b.data(), N, 1, 0.0f, ref.data(), N, 1);
  mmgrad::cpu::set_builtin_gemm_threads(0);
  std::vector<std::vector<float>> outs(4, std::vector<float>(M * N));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep)
        builtin_gemm(M, N, K, 1.0f, a.data(), K, 1, b.data(), N, 1, 0.0f, outs[t].data(), N, 1);
    });
  for (auto& th : threads) th.join();
  // Same kernel, same blocking per tile: results are bitwise identical to the serial run.
  for (int t = 0; t < 4; ++t)
    for (int64_t i = 0; i < M * N; ++i) ASSERT_EQ(outs[t][i], ref[i]) << "thread " << t;
}

}  // namespace

namespace {

// gemm_bias: C = A B + bias[j], B given as a transposed weight (a linear layer). The bias is
// fused into the direct kernels' stores where C's rows are contiguous and added by a separate
// pass otherwise (a strided C, the packed and generic kernels, BLAS, f64): every path must
// add it exactly once, also when K spans several K blocks (K > 256) and when the columns are
// split between threads. C starts as NaN (gemm_bias must not read it); sentinels around a
// strided C catch writes outside the view.
template <class T>
void check_gemm_bias(int64_t M, int64_t N, int64_t K, bool strided_c) {
  std::mt19937 rng(static_cast<uint32_t>(M * 131 + N * 7 + K));
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<T> a(static_cast<size_t>(M * K)), w(static_cast<size_t>(N * K)), bias(static_cast<size_t>(N));
  for (T& x : a) x = static_cast<T>(nd(rng));
  for (T& x : w) x = static_cast<T>(nd(rng));
  for (T& x : bias) x = static_cast<T>(4 * nd(rng));
  const int64_t rsc = strided_c ? 2 * N + 3 : N, csc = strided_c ? 2 : 1;
  const T sentinel = T(-12345);
  std::vector<T> c(static_cast<size_t>(std::max<int64_t>(M * rsc, 1)), sentinel);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) c[static_cast<size_t>(i * rsc + j * csc)] = std::numeric_limits<T>::quiet_NaN();
  mmgrad::cpu::gemm_bias(M, N, K, a.data(), K, 1, w.data(), 1, K, bias.data(), c.data(), rsc, csc);
  const long double tol = 4.0L * static_cast<long double>(K + 3) * (std::numeric_limits<T>::epsilon() / 2);
  std::vector<bool> in_view(c.size(), false);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      long double ref = bias[static_cast<size_t>(j)], scale = std::fabs(ref);
      for (int64_t k = 0; k < K; ++k) {
        const long double p = static_cast<long double>(a[static_cast<size_t>(i * K + k)]) * w[static_cast<size_t>(j * K + k)];
        ref += p;
        scale += std::fabs(p);
      }
      const size_t at = static_cast<size_t>(i * rsc + j * csc);
      in_view[at] = true;
      ASSERT_LE(std::fabs(static_cast<long double>(c[at]) - ref), tol * scale)
          << "M=" << M << " N=" << N << " K=" << K << (strided_c ? " strided C" : "") << " at (" << i << ", " << j
          << "): got " << static_cast<double>(c[at]) << ", want " << static_cast<double>(ref) << " on "
          << mmgrad::cpu::builtin_gemm_isa() << "/" << mmgrad::cpu::float_gemm_provider();
    }
  for (size_t e = 0; e < c.size(); ++e) {
    if (in_view[e] || M == 0) continue;
    ASSERT_EQ(c[e], sentinel) << "write outside C's view at " << e;
  }
}

template <class T>
void run_gemm_bias_cases() {
  // {24, 1040, 300}: two threads split the columns (the bias pointer moves with them) and K
  // spans two blocks (the bias goes into the first only).
  // {13, 17, 9} and {9, 66, 24}: the last columns as dot products, each with its bias.
  const int64_t shapes[][3] = {{1, 1, 1},   {4, 5, 0},    {7, 5, 3}, {6, 16, 16},    {12, 32, 8},
                               {13, 17, 9}, {64, 40, 33}, {0, 3, 4}, {200, 96, 128}, {24, 1040, 300},
                               {9, 66, 24}};
  for (const auto& s : shapes)
    for (bool strided : {false, true}) check_gemm_bias<T>(s[0], s[1], s[2], strided);
}

TEST(GemmBias, MatchesNaiveOnEveryIsaAndProvider) {
  for_each_isa([] {
    run_gemm_bias_cases<float>();
    run_gemm_bias_cases<double>();
  });
  const std::string provider = mmgrad::cpu::float_gemm_provider();
  if (mmgrad::cpu::set_float_gemm_provider("blas")) {  // builds with OpenBLAS
    run_gemm_bias_cases<float>();
    ASSERT_TRUE(mmgrad::cpu::set_float_gemm_provider(provider));
  }
  mmgrad::cpu::set_builtin_gemm_threads(1);
  run_gemm_bias_cases<float>();
  mmgrad::cpu::set_builtin_gemm_threads(0);
}

}  // namespace
