// mmgrad's GEMM: the cblas mapping (OpenBLAS build) and the builtin blocked kernel.
//
// Builtin kernel layout (Goto/BLIS scheme):
//   for jc in N step NC            B block  KC x NC  packed into NR-wide panels (L2)
//     for pc in K step KC
//       pack B(pc:pc+kc, jc:jc+nc)
//       for ic in M step MC        A block  MC x KC  (L2)
//         pack A(ic:ic+mc, pc:pc+kc)          [packed path only]
//         for jr in nc step NR     B micro-panel stays in L1
//           for ir in mc step MR   micro-kernel: MR x NR tile of C in registers
// Packing copes with any strides (transposed and sliced views), so the packed micro-kernels
// only see unit-stride panels. The AVX-512 and AVX2 f32 kernels have a "direct" variant
// instead: it broadcasts A(i,k) straight from the source with any strides, handles edge tiles
// with masks instead of a scratch tile, and reads small B blocks with contiguous rows in
// place, so nothing but B is ever packed; the AVX-512 one reaches ~95% of FMA peak at the
// clip-tiny shapes and both are much faster on small (attention-sized) products.
// Micro-kernels exist for AVX-512, AVX2+FMA and portable C++ (GCC vector extensions); the one
// to use is chosen at run time from the CPU's features (__builtin_cpu_supports), so the binary
// needs no -march flags. Threads split C into a grid of sub-blocks, each computed by the
// serial blocked algorithm with its own thread-local pack buffers.
#include "backends/cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#if (defined(__x86_64__) || defined(__i386__)) && !defined(MMGRAD_GEMM_PORTABLE_ONLY)
#define MMGRAD_GEMM_X86 1
#include <immintrin.h>
#endif

#include "core/parallel.h"

#ifdef MMGRAD_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace mmgrad::cpu {
namespace {

// ------------------------------------------------------------------------------------------
// Threads
// ------------------------------------------------------------------------------------------

std::atomic<int> g_thread_cap{0};  // 0: as many as the thread pool has

int max_threads() {
  int cap = g_thread_cap.load(std::memory_order_relaxed);
  return cap > 0 ? cap : mmgrad::num_threads();
}

// Sub-blocks of C run on the project's one thread pool (nested calls run inline).
void run_tasks(int64_t n, const std::function<void(int64_t)>& task) {
  if (n <= 1) {
    if (n == 1) task(0);
    return;
  }
  mmgrad::parallel_for(0, n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) task(i);
  });
}

// ------------------------------------------------------------------------------------------
// Buffers
// ------------------------------------------------------------------------------------------

struct AlignedBuffer {
  void* p = nullptr;
  size_t bytes = 0;
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(p); }
  template <class T>
  T* get(size_t n) {
    size_t need = (n * sizeof(T) + 63) / 64 * 64;
    if (need > bytes) {
      std::free(p);
      p = std::aligned_alloc(64, need);
      if (!p) throw std::bad_alloc();
      bytes = need;
    }
    return static_cast<T*>(p);
  }
};

thread_local AlignedBuffer t_pack_a, t_pack_b;

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
int64_t ceil_div(int64_t x, int64_t m) { return (x + m - 1) / m; }

// ------------------------------------------------------------------------------------------
// Kernel tables
// ------------------------------------------------------------------------------------------

constexpr int kMaxMR = 8;
constexpr int kMaxNR = 32;

template <class T>
using UKernel = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t rsc, T alpha, T beta);
template <class T>
using PackA = void (*)(int64_t mc, int64_t kc, const T* A, int64_t rsa, int64_t csa, T* Ap);
template <class T>
using PackB = void (*)(int64_t kc, int64_t nc, const T* B, int64_t rsb, int64_t csb, T* Bp);

// Micro-kernel that reads A straight from the source (any strides, m <= MR rows) and B with
// row stride rsb (a packed panel, rsb = NR, or the source when its columns are contiguous),
// n <= NR columns; C tile with unit column stride. `bias` (nullable, n contiguous values) is
// added to every row of the tile as it is stored: a linear layer's bias costs no extra pass
// over its output.
template <class T>
using DirectKernel = void (*)(int64_t kc, const T* a, int64_t rsa, int64_t csa, int64_t m,
                              const T* b, int64_t rsb, int64_t n, T* c, int64_t rsc, T alpha,
                              T beta, const T* bias);

// C(i, j) for i < m, j < n of a product whose A rows and B columns are both contiguous along
// k (C = A B^T with row-major operands, as attention's Q K^T), one dot product per entry:
// alpha * dot + bias[j] (bias nullable) + beta * C(i, j). C has unit column stride.
template <class T>
using DotColumns = void (*)(int64_t m, int64_t n, int64_t K, T alpha, const T* A, int64_t rsa,
                            const T* B, int64_t csb, T beta, T* C, int64_t rsc, const T* bias);

template <class T>
struct Kernels {
  const char* isa;
  int mr, nr;
  int64_t mc, kc, nc;  // cache block sizes (mc multiple of mr, nc multiple of nr)
  UKernel<T> ukernel;
  PackA<T> pack_a;
  PackB<T> pack_b;
  DirectKernel<T> direct = nullptr;  // optional
  DotColumns<T> dot_columns = nullptr;  // optional, see gemm_block
};

// ---- Portable packing (any strides; zero-pads partial panels) ----------------------------

// Ap holds ceil(mc/MR) panels of kc*MR: panel p, step k, row r at Ap[p*kc*MR + k*MR + r].
template <class T, int MR>
void pack_a_portable(int64_t mc, int64_t kc, const T* A, int64_t rsa, int64_t csa, T* Ap) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR, Ap += MR * kc) {
    const int64_t m = std::min<int64_t>(MR, mc - i0);
    const T* a = A + i0 * rsa;
    if (m == MR && rsa == 1) {
      for (int64_t k = 0; k < kc; ++k)
        for (int r = 0; r < MR; ++r) Ap[k * MR + r] = a[k * csa + r];
    } else if (m == MR && csa == 1) {
      for (int r = 0; r < MR; ++r) {
        const T* row = a + r * rsa;
        for (int64_t k = 0; k < kc; ++k) Ap[k * MR + r] = row[k];
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        int r = 0;
        for (; r < m; ++r) Ap[k * MR + r] = a[r * rsa + k * csa];
        for (; r < MR; ++r) Ap[k * MR + r] = T(0);
      }
    }
  }
}

// Bp holds ceil(nc/NR) panels of kc*NR: panel p, step k, column j at Bp[p*kc*NR + k*NR + j].
template <class T, int NR>
void pack_b_portable(int64_t kc, int64_t nc, const T* B, int64_t rsb, int64_t csb, T* Bp) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR, Bp += NR * kc) {
    const int64_t n = std::min<int64_t>(NR, nc - j0);
    const T* b = B + j0 * csb;
    if (n == NR && csb == 1) {
      for (int64_t k = 0; k < kc; ++k) std::memcpy(Bp + k * NR, b + k * rsb, NR * sizeof(T));
    } else if (n == NR && rsb == 1) {
      for (int j = 0; j < NR; ++j) {
        const T* col = b + j * csb;
        for (int64_t k = 0; k < kc; ++k) Bp[k * NR + j] = col[k];
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        int j = 0;
        for (; j < n; ++j) Bp[k * NR + j] = b[k * rsb + j * csb];
        for (; j < NR; ++j) Bp[k * NR + j] = T(0);
      }
    }
  }
}

// ---- Portable micro-kernel (GCC vector extensions; SSE2 on baseline x86-64, NEON on arm) ---

template <class T, int MR, int NV, int VBYTES>
void ukernel_portable(int64_t kc, const T* __restrict a, const T* __restrict b, T* c,
                      int64_t rsc, T alpha, T beta) {
  typedef T V __attribute__((vector_size(VBYTES)));
  constexpr int VL = VBYTES / sizeof(T);
  constexpr int NR = NV * VL;
  V acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = V{};
  for (int64_t k = 0; k < kc; ++k) {
    V bv[NV];
    std::memcpy(bv, b, sizeof(bv));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const T av = a[r];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] += bv[v] * av;
    }
    a += MR;
    b += NR;
  }
  for (int r = 0; r < MR; ++r) {
    T* cr = c + r * rsc;
    for (int v = 0; v < NV; ++v) {
      V res = acc[r][v] * alpha;
      if (beta != T(0)) {
        V old;
        std::memcpy(&old, cr + v * VL, sizeof(V));
        res += old * beta;
      }
      std::memcpy(cr + v * VL, &res, sizeof(V));
    }
  }
}

const Kernels<float> kGenericF32{"generic", 4, 8, 128, 256, 4096,
                                 ukernel_portable<float, 4, 2, 16>,
                                 pack_a_portable<float, 4>, pack_b_portable<float, 8>};
const Kernels<double> kGenericF64{"generic", 4, 4, 128, 256, 4096,
                                  ukernel_portable<double, 4, 2, 16>,
                                  pack_a_portable<double, 4>, pack_b_portable<double, 4>};

#ifdef MMGRAD_GEMM_X86

#define MMGRAD_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define MMGRAD_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))

// ---- AVX2 + FMA ---------------------------------------------------------------------------

// 6 x 16 floats: 12 ymm accumulators, 2 for B, 1 broadcast.
MMGRAD_TARGET_AVX2 void ukernel_avx2_f32(int64_t kc, const float* __restrict a,
                                         const float* __restrict b, float* c, int64_t rsc,
                                         float alpha, float beta) {
  constexpr int MR = 6;
  __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) _mm_prefetch(reinterpret_cast<const char*>(c + r * rsc), _MM_HINT_T0);
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r);
      acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
    a += MR;
    b += 16;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      _mm256_storeu_ps(c + r * rsc, _mm256_mul_ps(va, acc0[r]));
      _mm256_storeu_ps(c + r * rsc + 8, _mm256_mul_ps(va, acc1[r]));
    }
  } else {
    const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      float* cr = c + r * rsc;
      _mm256_storeu_ps(cr, _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), _mm256_mul_ps(va, acc0[r])));
      _mm256_storeu_ps(cr + 8,
                       _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), _mm256_mul_ps(va, acc1[r])));
    }
  }
}

// 6 x 8 doubles.
MMGRAD_TARGET_AVX2 void ukernel_avx2_f64(int64_t kc, const double* __restrict a,
                                         const double* __restrict b, double* c, int64_t rsc,
                                         double alpha, double beta) {
  constexpr int MR = 6;
  __m256d acc0[MR], acc1[MR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm256_setzero_pd();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m256d b0 = _mm256_load_pd(b), b1 = _mm256_load_pd(b + 4);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256d av = _mm256_broadcast_sd(a + r);
      acc0[r] = _mm256_fmadd_pd(av, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_pd(av, b1, acc1[r]);
    }
    a += MR;
    b += 8;
  }
  const __m256d va = _mm256_set1_pd(alpha);
  if (beta == 0.0) {
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      _mm256_storeu_pd(c + r * rsc, _mm256_mul_pd(va, acc0[r]));
      _mm256_storeu_pd(c + r * rsc + 4, _mm256_mul_pd(va, acc1[r]));
    }
  } else {
    const __m256d vb = _mm256_set1_pd(beta);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      double* cr = c + r * rsc;
      _mm256_storeu_pd(cr, _mm256_fmadd_pd(vb, _mm256_loadu_pd(cr), _mm256_mul_pd(va, acc0[r])));
      _mm256_storeu_pd(cr + 4,
                       _mm256_fmadd_pd(vb, _mm256_loadu_pd(cr + 4), _mm256_mul_pd(va, acc1[r])));
    }
  }
}

MMGRAD_TARGET_AVX2 void pack_a_avx2_f32(int64_t mc, int64_t kc, const float* A, int64_t rsa,
                                        int64_t csa, float* Ap) {
  pack_a_portable<float, 6>(mc, kc, A, rsa, csa, Ap);
}
// Transposes an 8x8 float block (AVX only, so the AVX-512 packers inline it too): src row r (8 floats at src + r*ld) becomes column r of dst,
// dst[k*8 + r] = src[r*ld + k].
MMGRAD_TARGET_AVX2 inline void transpose8x8(const float* src, int64_t ld, float* dst) {
  const __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ld),
               r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld),
               r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld),
               r6 = _mm256_loadu_ps(src + 6 * ld), r7 = _mm256_loadu_ps(src + 7 * ld);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1),
               t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3),
               t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
               t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)),
               u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)),
               u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)),
               u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2)),
               u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)),
               u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2)),
               u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)),
               u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  _mm256_store_ps(dst + 0, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_store_ps(dst + 8, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_store_ps(dst + 16, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_store_ps(dst + 24, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_store_ps(dst + 32, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_store_ps(dst + 40, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_store_ps(dst + 48, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_store_ps(dst + 56, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// Column-major B (W^T of a Linear layer, the forward X @ W^T) packed into NR-wide panels by
// 8x8 transposes (AVX only, so the AVX2 and AVX-512 packers share it); the scalar gather it
// replaces cost a third of the AVX2 micro-kernel's time at width 96.
template <int NR>
MMGRAD_TARGET_AVX2 __attribute__((always_inline)) inline void pack_b_transposing_f32(
    int64_t kc, int64_t nc, const float* B, int64_t rsb, int64_t csb, float* Bp) {
  if (rsb != 1) {
    pack_b_portable<float, NR>(kc, nc, B, rsb, csb, Bp);
    return;
  }
  for (int64_t j0 = 0; j0 < nc; j0 += NR, Bp += NR * kc) {
    // A partial last panel (attention's K^T with 16 or 65 keys) is transposed in groups of
    // 8 columns as well; only its last n % 8 columns are gathered one by one.
    const int64_t n = std::min<int64_t>(NR, nc - j0);
    const int64_t n8 = n / 8 * 8;
    const float* b = B + j0 * csb;
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      alignas(32) float blk[64];
      for (int64_t jb = 0; jb < n8; jb += 8) {
        transpose8x8(b + jb * csb + k, csb, blk);
        for (int kk = 0; kk < 8; ++kk)
          _mm256_storeu_ps(Bp + (k + kk) * NR + jb, _mm256_load_ps(blk + kk * 8));
      }
    }
    for (; k < kc; ++k)
      for (int64_t j = 0; j < n8; ++j) Bp[k * NR + j] = b[j * csb + k];
    if (n8 < NR)
      for (k = 0; k < kc; ++k) {
        // zeros by vector stores in an unrolled loop: a loop over [n8, NR) became a
        // `rep stos` (memset), which cost more than the transposes
        float* row = Bp + k * NR;
#pragma GCC unroll 4
        for (int j = 0; j < NR; j += 8)
          if (j >= n8) _mm256_storeu_ps(row + j, _mm256_setzero_ps());
        for (int64_t j = n8; j < n; ++j) row[j] = b[j * csb + k];
      }
  }
}

MMGRAD_TARGET_AVX2 void pack_b_avx2_f32(int64_t kc, int64_t nc, const float* B, int64_t rsb,
                                        int64_t csb, float* Bp) {
  pack_b_transposing_f32<16>(kc, nc, B, rsb, csb, Bp);
}
MMGRAD_TARGET_AVX2 void pack_a_avx2_f64(int64_t mc, int64_t kc, const double* A, int64_t rsa,
                                        int64_t csa, double* Ap) {
  pack_a_portable<double, 6>(mc, kc, A, rsa, csa, Ap);
}
MMGRAD_TARGET_AVX2 void pack_b_avx2_f64(int64_t kc, int64_t nc, const double* B, int64_t rsb,
                                        int64_t csb, double* Bp) {
  pack_b_portable<double, 8>(kc, nc, B, rsb, csb, Bp);
}

// Where A is read in place (the direct kernels below and the AVX-512 ones): a row-major A
// (csa == 1) is broadcast from each row, a column-major one (rsa == 1, full tiles) from one
// contiguous column, anything else element by element.
enum AMode { kAGeneral, kARowMajor, kAColMajor };

// 6 x (8*NV) tile with A read in place, the AVX2 counterpart of the AVX-512 direct kernel:
// packing A (a scalar gather into 6-row panels) cost 10% of the main preset's step on an AVX2
// CPU. Rows past m reuse row m-1 (stays in bounds) and are not stored; columns past n are
// masked (FULL: n == 8*NV, no masks).
template <int NV, bool FULL, int AMODE>
MMGRAD_TARGET_AVX2 __attribute__((always_inline)) inline void direct_avx2_f32_body(
    int64_t kc, const float* a, int64_t rsa, int64_t csa, int64_t m, const float* b,
    int64_t rsb, int64_t n, float* c, int64_t rsc, float alpha, float beta, const float* bias) {
  constexpr int MRT = 6;
  __m256i km[NV];
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v)
    km[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - 8 * v)), lane);
  const float* ar[MRT];
  __m256 acc[MRT][NV];
#pragma GCC unroll 6
  for (int r = 0; r < MRT; ++r) {
    const int64_t rr = std::min<int64_t>(r, m - 1);
    ar[r] = a + rr * rsa;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
    const float* cr = c + rr * rsc;
    _mm_prefetch(reinterpret_cast<const char*>(cr), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(cr + n - 1), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    __m256 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      bv[v] = FULL ? _mm256_loadu_ps(b + 8 * v) : _mm256_maskload_ps(b + 8 * v, km[v]);
#pragma GCC unroll 6
    for (int r = 0; r < MRT; ++r) {
      const float* x;
      if constexpr (AMODE == kARowMajor) x = ar[r] + k;
      else if constexpr (AMODE == kAColMajor) x = a + k * csa + r;
      else x = ar[r] + k * csa;
      const __m256 av = _mm256_broadcast_ss(x);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
    }
    b += rsb;
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  __m256 bias_v[NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v)
    bias_v[v] = !bias ? _mm256_setzero_ps()
                      : FULL ? _mm256_loadu_ps(bias + 8 * v) : _mm256_maskload_ps(bias + 8 * v, km[v]);
#pragma GCC unroll 6
  for (int r = 0; r < MRT; ++r) {
    if (r >= m) break;
    float* cr = c + r * rsc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m256 x = _mm256_fmadd_ps(va, acc[r][v], bias_v[v]);
      if (FULL) {
        if (beta != 0.0f) x = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8 * v), x);
        _mm256_storeu_ps(cr + 8 * v, x);
      } else {
        if (beta != 0.0f) x = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr + 8 * v, km[v]), x);
        _mm256_maskstore_ps(cr + 8 * v, km[v], x);
      }
    }
  }
}

template <int NV, bool FULL>
MMGRAD_TARGET_AVX2 void direct_avx2_f32_v(int64_t kc, const float* a, int64_t rsa, int64_t csa,
                                          int64_t m, const float* b, int64_t rsb, int64_t n,
                                          float* c, int64_t rsc, float alpha, float beta,
                                          const float* bias) {
  if (csa == 1)
    direct_avx2_f32_body<NV, FULL, kARowMajor>(kc, a, rsa, csa, m, b, rsb, n, c, rsc, alpha, beta, bias);
  else if (rsa == 1 && m == 6)
    direct_avx2_f32_body<NV, FULL, kAColMajor>(kc, a, rsa, csa, m, b, rsb, n, c, rsc, alpha, beta, bias);
  else
    direct_avx2_f32_body<NV, FULL, kAGeneral>(kc, a, rsa, csa, m, b, rsb, n, c, rsc, alpha, beta, bias);
}

// Up to 6 x 16; tiles at most 8 columns wide use the one-vector variant.
void direct_avx2_f32(int64_t kc, const float* a, int64_t rsa, int64_t csa, int64_t m,
                     const float* b, int64_t rsb, int64_t n, float* c, int64_t rsc, float alpha,
                     float beta, const float* bias) {
  using Fn = DirectKernel<float>;
  static constexpr Fn table[2][2] = {{direct_avx2_f32_v<1, false>, direct_avx2_f32_v<1, true>},
                                     {direct_avx2_f32_v<2, false>, direct_avx2_f32_v<2, true>}};
  const int wide = n > 8 ? 1 : 0;
  const int full = n == 8 * (wide + 1) ? 1 : 0;
  table[wide][full](kc, a, rsa, csa, m, b, rsb, n, c, rsc, alpha, beta, bias);
}

const Kernels<float> kAvx2F32{"avx2", 6, 16, 144, 256, 4096,
                              ukernel_avx2_f32, pack_a_avx2_f32, pack_b_avx2_f32,
                              direct_avx2_f32};
const Kernels<double> kAvx2F64{"avx2", 6, 8, 96, 256, 4096,
                               ukernel_avx2_f64, pack_a_avx2_f64, pack_b_avx2_f64};

// ---- AVX-512 --------------------------------------------------------------------------------

// 8 x 32 floats: 16 zmm accumulators, 2 for B, broadcasts folded into the FMAs.
MMGRAD_TARGET_AVX512 void ukernel_avx512_f32(int64_t kc, const float* __restrict a,
                                             const float* __restrict b, float* c, int64_t rsc,
                                             float alpha, float beta) {
  constexpr int MR = 8;
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * rsc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * rsc + 31), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r]);
      acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
    }
    a += MR;
    b += 32;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      _mm512_storeu_ps(c + r * rsc, _mm512_mul_ps(va, acc0[r]));
      _mm512_storeu_ps(c + r * rsc + 16, _mm512_mul_ps(va, acc1[r]));
    }
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      float* cr = c + r * rsc;
      _mm512_storeu_ps(cr, _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr), _mm512_mul_ps(va, acc0[r])));
      _mm512_storeu_ps(cr + 16,
                       _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr + 16), _mm512_mul_ps(va, acc1[r])));
    }
  }
}

// 8 x 16 doubles.
MMGRAD_TARGET_AVX512 void ukernel_avx512_f64(int64_t kc, const double* __restrict a,
                                             const double* __restrict b, double* c, int64_t rsc,
                                             double alpha, double beta) {
  constexpr int MR = 8;
  __m512d acc0[MR], acc1[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm512_setzero_pd();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m512d b0 = _mm512_load_pd(b), b1 = _mm512_load_pd(b + 8);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512d av = _mm512_set1_pd(a[r]);
      acc0[r] = _mm512_fmadd_pd(av, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_pd(av, b1, acc1[r]);
    }
    a += MR;
    b += 16;
  }
  const __m512d va = _mm512_set1_pd(alpha);
  if (beta == 0.0) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      _mm512_storeu_pd(c + r * rsc, _mm512_mul_pd(va, acc0[r]));
      _mm512_storeu_pd(c + r * rsc + 8, _mm512_mul_pd(va, acc1[r]));
    }
  } else {
    const __m512d vb = _mm512_set1_pd(beta);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      double* cr = c + r * rsc;
      _mm512_storeu_pd(cr, _mm512_fmadd_pd(vb, _mm512_loadu_pd(cr), _mm512_mul_pd(va, acc0[r])));
      _mm512_storeu_pd(cr + 8,
                       _mm512_fmadd_pd(vb, _mm512_loadu_pd(cr + 8), _mm512_mul_pd(va, acc1[r])));
    }
  }
}

MMGRAD_TARGET_AVX512 void pack_a_avx512_f32(int64_t mc, int64_t kc, const float* A,
                                            int64_t rsa, int64_t csa, float* Ap) {
  constexpr int MR = 8;
  if (csa != 1) {
    pack_a_portable<float, MR>(mc, kc, A, rsa, csa, Ap);
    return;
  }
  // Row-major A: 8x8 transposes (the common case of X @ W^T and dY @ W).
  for (int64_t i0 = 0; i0 < mc; i0 += MR, Ap += MR * kc) {
    const int64_t m = std::min<int64_t>(MR, mc - i0);
    const float* a = A + i0 * rsa;
    if (m < MR) {
      pack_a_portable<float, MR>(m, kc, a, rsa, csa, Ap);
      continue;
    }
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) transpose8x8(a + k, rsa, Ap + k * MR);
    for (; k < kc; ++k)
      for (int r = 0; r < MR; ++r) Ap[k * MR + r] = a[r * rsa + k];
  }
}

MMGRAD_TARGET_AVX512 void pack_b_avx512_f32(int64_t kc, int64_t nc, const float* B, int64_t rsb,
                                            int64_t csb, float* Bp) {
  pack_b_transposing_f32<32>(kc, nc, B, rsb, csb, Bp);
}

// MRT x (16*NV) tile with A read in place: kARowMajor needs csa == 1, kAColMajor rsa == 1
// and m == MRT. Rows past m reuse row m-1 (stays in bounds) and are not stored; columns past
// n are masked (FULL: n == 16*NV, no masks).
template <int MRT, int NV, bool FULL, int AMODE>
MMGRAD_TARGET_AVX512 __attribute__((always_inline)) inline void direct_avx512_f32_body(
    int64_t kc, const float* a, int64_t rsa, int64_t csa, int64_t m, const float* b,
    int64_t rsb, int64_t n, float* c, int64_t rsc, float alpha, float beta, const float* bias) {
  __mmask16 km[NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    const int64_t cols = std::clamp<int64_t>(n - 16 * v, 0, 16);
    km[v] = FULL ? __mmask16(0xffff) : __mmask16((1u << cols) - 1);
  }
  const float* ar[MRT];
  __m512 acc[MRT][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MRT; ++r) {
    const int64_t rr = std::min<int64_t>(r, m - 1);
    ar[r] = a + rr * rsa;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
    const float* cr = c + rr * rsc;
    _mm_prefetch(reinterpret_cast<const char*>(cr), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(cr + n - 1), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      bv[v] = FULL ? _mm512_loadu_ps(b + 16 * v) : _mm512_maskz_loadu_ps(km[v], b + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MRT; ++r) {
      float x;
      if constexpr (AMODE == kARowMajor) x = ar[r][k];
      else if constexpr (AMODE == kAColMajor) x = a[k * csa + r];
      else x = ar[r][k * csa];
      const __m512 av = _mm512_set1_ps(x);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
    b += rsb;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  __m512 bias_v[NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v)
    bias_v[v] = !bias ? _mm512_setzero_ps()
                      : FULL ? _mm512_loadu_ps(bias + 16 * v) : _mm512_maskz_loadu_ps(km[v], bias + 16 * v);
#pragma GCC unroll 8
  for (int r = 0; r < MRT; ++r) {
    if (r >= m) break;
    float* cr = c + r * rsc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m512 x = _mm512_fmadd_ps(va, acc[r][v], bias_v[v]);
      if (FULL) {
        if (beta != 0.0f) x = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr + 16 * v), x);
        _mm512_storeu_ps(cr + 16 * v, x);
      } else {
        if (beta != 0.0f) x = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(km[v], cr + 16 * v), x);
        _mm512_mask_storeu_ps(cr + 16 * v, km[v], x);
      }
    }
  }
}

template <int MRT, int NV, bool FULL>
MMGRAD_TARGET_AVX512 void direct_avx512_f32_v(int64_t kc, const float* a, int64_t rsa,
                                              int64_t csa, int64_t m, const float* b,
                                              int64_t rsb, int64_t n, float* c, int64_t rsc,
                                              float alpha, float beta, const float* bias) {
  if (csa == 1)
    direct_avx512_f32_body<MRT, NV, FULL, kARowMajor>(kc, a, rsa, csa, m, b, rsb, n, c, rsc,
                                                       alpha, beta, bias);
  else if (rsa == 1 && m == MRT)
    direct_avx512_f32_body<MRT, NV, FULL, kAColMajor>(kc, a, rsa, csa, m, b, rsb, n, c, rsc,
                                                       alpha, beta, bias);
  else
    direct_avx512_f32_body<MRT, NV, FULL, kAGeneral>(kc, a, rsa, csa, m, b, rsb, n, c, rsc,
                                                      alpha, beta, bias);
}

// Up to 8 x 32; narrower edge tiles use 4-, 2- or 1-row and/or 16-column variants (the
// 65th query row of a ViT's attention cost 4 rows' FMAs with only the 4-row variant).
void direct_avx512_f32(int64_t kc, const float* a, int64_t rsa, int64_t csa, int64_t m,
                       const float* b, int64_t rsb, int64_t n, float* c, int64_t rsc,
                       float alpha, float beta, const float* bias) {
  using Fn = DirectKernel<float>;
  // [rows 8, 4, 2 or 1][16 or 32 columns][full]
  static constexpr Fn table[4][2][2] = {
      {{direct_avx512_f32_v<8, 1, false>, direct_avx512_f32_v<8, 1, true>},
       {direct_avx512_f32_v<8, 2, false>, direct_avx512_f32_v<8, 2, true>}},
      {{direct_avx512_f32_v<4, 1, false>, direct_avx512_f32_v<4, 1, true>},
       {direct_avx512_f32_v<4, 2, false>, direct_avx512_f32_v<4, 2, true>}},
      {{direct_avx512_f32_v<2, 1, false>, direct_avx512_f32_v<2, 1, true>},
       {direct_avx512_f32_v<2, 2, false>, direct_avx512_f32_v<2, 2, true>}},
      {{direct_avx512_f32_v<1, 1, false>, direct_avx512_f32_v<1, 1, true>},
       {direct_avx512_f32_v<1, 2, false>, direct_avx512_f32_v<1, 2, true>}}};
  const int rows = m > 4 ? 0 : m > 2 ? 1 : m > 1 ? 2 : 3;
  const int wide = n > 16 ? 1 : 0;
  const int full = n == 16 * (wide + 1) ? 1 : 0;
  table[rows][wide][full](kc, a, rsa, csa, m, b, rsb, n, c, rsc, alpha, beta, bias);
}

// The sum of a vector's 16 lanes, halves added down to one. Not _mm512_reduce_add_ps: GCC 12's
// header warns (-Wmaybe-uninitialized) where it is inlined; through memory, as clang refuses
// a 64-byte vector passed to a helper compiled without AVX-512 (the fuzz build).
MMGRAD_TARGET_AVX512 inline float horizontal_sum_avx512(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  const __m256 s8 = _mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8));
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  s4 = _mm_add_ss(s4, _mm_shuffle_ps(s4, s4, 1));
  return _mm_cvtss_f32(s4);
}

// DotColumns: 16 products of k per FMA, the last k % 16 under a mask, then one horizontal sum.
MMGRAD_TARGET_AVX512 void dot_columns_avx512_f32(int64_t m, int64_t n, int64_t K, float alpha,
                                                 const float* A, int64_t rsa, const float* B,
                                                 int64_t csb, float beta, float* C, int64_t rsc,
                                                 const float* bias) {
  const int64_t whole = K / 16 * 16;
  const __mmask16 rest = static_cast<__mmask16>((1u << (K - whole)) - 1);
  for (int64_t i = 0; i < m; ++i) {
    const float* a = A + i * rsa;
    for (int64_t j = 0; j < n; ++j) {
      const float* b = B + j * csb;
      __m512 acc = _mm512_setzero_ps();
      for (int64_t k = 0; k < whole; k += 16)
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), acc);
      if (rest)
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(rest, a + whole),
                              _mm512_maskz_loadu_ps(rest, b + whole), acc);
      float x = alpha * horizontal_sum_avx512(acc);
      if (bias) x += bias[j];
      float& cij = C[i * rsc + j];
      cij = beta == 0.0f ? x : x + beta * cij;
    }
  }
}

MMGRAD_TARGET_AVX512 void pack_a_avx512_f64(int64_t mc, int64_t kc, const double* A,
                                            int64_t rsa, int64_t csa, double* Ap) {
  pack_a_portable<double, 8>(mc, kc, A, rsa, csa, Ap);
}
MMGRAD_TARGET_AVX512 void pack_b_avx512_f64(int64_t kc, int64_t nc, const double* B,
                                            int64_t rsb, int64_t csb, double* Bp) {
  pack_b_portable<double, 16>(kc, nc, B, rsb, csb, Bp);
}

const Kernels<float> kAvx512F32{"avx512", 8, 32, 256, 256, 4096,
                                ukernel_avx512_f32, pack_a_avx512_f32, pack_b_avx512_f32,
                                direct_avx512_f32, dot_columns_avx512_f32};
const Kernels<double> kAvx512F64{"avx512", 8, 16, 128, 256, 2048,
                                 ukernel_avx512_f64, pack_a_avx512_f64, pack_b_avx512_f64};

#endif  // MMGRAD_GEMM_X86

// ------------------------------------------------------------------------------------------
// Dispatch
// ------------------------------------------------------------------------------------------

enum class Isa : int { Generic = 0, Avx2 = 1, Avx512 = 2 };

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::Generic:
      return true;
#ifdef MMGRAD_GEMM_X86
    case Isa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    default:
      return false;
  }
}

bool parse_isa(std::string_view s, Isa* out) {
  if (s == "avx512") *out = Isa::Avx512;
  else if (s == "avx2") *out = Isa::Avx2;
  else if (s == "generic") *out = Isa::Generic;
  else return false;
  return true;
}

Isa detect_isa() {
  Isa best = Isa::Generic;
  if (cpu_supports(Isa::Avx512)) best = Isa::Avx512;
  else if (cpu_supports(Isa::Avx2)) best = Isa::Avx2;
  if (const char* s = std::getenv("MMGRAD_GEMM_ISA")) {
    Isa want;
    if (parse_isa(s, &want) && static_cast<int>(want) <= static_cast<int>(best)) best = want;
  }
  return best;
}

std::atomic<int>& isa_state() {
  static std::atomic<int> isa{static_cast<int>(detect_isa())};
  return isa;
}

Isa current_isa() { return static_cast<Isa>(isa_state().load(std::memory_order_relaxed)); }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "generic";
  }
}

template <class T>
const Kernels<T>& kernels_for(Isa isa);

template <>
const Kernels<float>& kernels_for<float>(Isa isa) {
#ifdef MMGRAD_GEMM_X86
  if (isa == Isa::Avx512) return kAvx512F32;
  if (isa == Isa::Avx2) return kAvx2F32;
#endif
  (void)isa;
  return kGenericF32;
}

template <>
const Kernels<double>& kernels_for<double>(Isa isa) {
#ifdef MMGRAD_GEMM_X86
  if (isa == Isa::Avx512) return kAvx512F64;
  if (isa == Isa::Avx2) return kAvx2F64;
#endif
  (void)isa;
  return kGenericF64;
}

// ------------------------------------------------------------------------------------------
// Builtin driver
// ------------------------------------------------------------------------------------------

// C = beta * C over an M x N strided matrix (beta == 0: C is overwritten, never read).
template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t rsc, int64_t csc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      T& c = C[i * rsc + j * csc];
      c = beta == T(0) ? T(0) : beta * c;
    }
}

// Splits `len` into pieces of at most `max_block` that are multiples of `unit` and balanced.
int64_t balanced_block(int64_t len, int64_t max_block, int64_t unit) {
  if (len <= max_block) return round_up(len, unit);
  int64_t pieces = ceil_div(len, max_block);
  return std::min(max_block, round_up(ceil_div(len, pieces), unit));
}

// The serial blocked algorithm on one sub-block of C.
template <class T>
void gemm_serial(const Kernels<T>& kr, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                 int64_t rsa, int64_t csa, const T* B, int64_t rsb, int64_t csb, T beta, T* C,
                 int64_t rsc, int64_t csc) {
  const int MR = kr.mr, NR = kr.nr;
  const int64_t KC = balanced_block(K, kr.kc, 1);
  const int64_t MC = balanced_block(M, kr.mc, MR);
  const int64_t NC = balanced_block(N, kr.nc, NR);
  T* Ap = t_pack_a.get<T>(static_cast<size_t>(MC * KC));
  T* Bp = t_pack_b.get<T>(static_cast<size_t>(NC * KC));
  alignas(64) T tmp[kMaxMR * kMaxNR];

  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const T beta_k = pc == 0 ? beta : T(1);
      kr.pack_b(kc, nc, B + pc * rsb + jc * csb, rsb, csb, Bp);
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        kr.pack_a(mc, kc, A + ic * rsa + pc * csa, rsa, csa, Ap);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t n = std::min<int64_t>(NR, nc - jr);
          const T* bp = Bp + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t m = std::min<int64_t>(MR, mc - ir);
            const T* ap = Ap + ir * kc;
            T* c = C + (ic + ir) * rsc + (jc + jr) * csc;
            if (m == MR && n == NR && csc == 1) {
              kr.ukernel(kc, ap, bp, c, rsc, alpha, beta_k);
            } else {
              kr.ukernel(kc, ap, bp, tmp, NR, T(1), T(0));
              for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j) {
                  T& cij = c[i * rsc + j * csc];
                  const T v = alpha * tmp[i * NR + j];
                  cij = beta_k == T(0) ? v : v + beta_k * cij;
                }
            }
          }
        }
      }
    }
  }
}

// Same blocking, but A is read in place by the direct kernel (no A packing), and B is packed
// only when its columns are not contiguous or the block is large. `bias` (nullable; needs
// csc == 1) is added to every row of C by the kernel's store of the first K block.
template <class T>
void gemm_serial_direct(const Kernels<T>& kr, int64_t M, int64_t N, int64_t K, T alpha,
                        const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
                        int64_t csb, T beta, T* C, int64_t rsc, int64_t csc, const T* bias) {
  const int MR = kr.mr, NR = kr.nr;
  const int64_t KC = balanced_block(K, kr.kc, 1);
  const int64_t MC = balanced_block(M, kr.mc, MR);
  const int64_t NC = balanced_block(N, kr.nc, NR);
  // B with contiguous rows is used in place when small (packing it would cost about as much
  // as the product itself) or when its rows are narrow (at most 1536 bytes: a weight
  // gradient's input X [rows, 96 or 384], where each thread packed the whole of a long B for
  // a small C, 10-30% of those products' time; in-model A/B +1.8% per step on shapes-small).
  // Wider rows are packed: read in place, their panels thrash L1 (128x512x8320 lost 10%).
  const bool b_direct = csb == 1 && (K * N <= 16384 || rsb * static_cast<int64_t>(sizeof(T)) <= 1536);
  T* Bp = b_direct ? nullptr : t_pack_b.get<T>(static_cast<size_t>(NC * KC));
  alignas(64) T tmp[kMaxMR * kMaxNR];

  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const T beta_k = pc == 0 ? beta : T(1);
      if (!b_direct) kr.pack_b(kc, nc, B + pc * rsb + jc * csb, rsb, csb, Bp);
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t n = std::min<int64_t>(NR, nc - jr);
          const T* bp = b_direct ? B + pc * rsb + jc + jr : Bp + jr * kc;
          const int64_t bstride = b_direct ? rsb : NR;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t m = std::min<int64_t>(MR, mc - ir);
            const T* ap = A + (ic + ir) * rsa + pc * csa;
            T* c = C + (ic + ir) * rsc + (jc + jr) * csc;
            if (csc == 1) {
              const T* bias_k = bias && pc == 0 ? bias + jc + jr : nullptr;
              kr.direct(kc, ap, rsa, csa, m, bp, bstride, n, c, rsc, alpha, beta_k, bias_k);
            } else {
              kr.direct(kc, ap, rsa, csa, m, bp, bstride, n, tmp, NR, T(1), T(0), nullptr);
              for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j) {
                  T& cij = c[i * rsc + j * csc];
                  const T v = alpha * tmp[i * NR + j];
                  cij = beta_k == T(0) ? v : v + beta_k * cij;
                }
            }
          }
        }
      }
    }
  }
}

// Picks the direct algorithm where the ISA has a direct kernel (no A packing: faster at
// every clip-tiny shape), else the fully packed one. Only the direct one takes a bias.
template <class T>
void gemm_block(const Kernels<T>& kr, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                int64_t rsa, int64_t csa, const T* B, int64_t rsb, int64_t csb, T beta, T* C,
                int64_t rsc, int64_t csc, const T* bias) {
  if (!kr.direct) {
    gemm_serial(kr, M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
    return;
  }
  // One or two columns past a whole vector (attention over 65 keys: 64 patches and the class
  // token) would cost a whole masked vector column of tiles, as much as 16 columns; where A's
  // rows and B's columns are both contiguous along k (Q K^T, dO V^T) they are dot products
  // instead. In attention's 65 x 65 x 24 scores that column was a quarter of the product.
  const int64_t lanes = 64 / static_cast<int64_t>(sizeof(T));
  const int64_t tail = N % lanes;
  if (kr.dot_columns && N > lanes && tail <= 2 && tail > 0 && csa == 1 && rsb == 1 && csc == 1 && K > 0) {
    const int64_t n = N - tail;
    gemm_serial_direct(kr, M, n, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, bias);
    kr.dot_columns(M, tail, K, alpha, A, rsa, B + n * csb, csb, beta, C + n, rsc,
                   bias ? bias + n : nullptr);
    return;
  }
  gemm_serial_direct(kr, M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, bias);
}

// C(i, j) += bias[j] over an M x N strided matrix: the bias of a GEMM that cannot fuse it.
template <class T>
void add_bias_to_rows(int64_t M, int64_t N, const T* bias, T* C, int64_t rsc, int64_t csc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * rsc + j * csc] += bias[j];
}

// Below this many flops per thread, more threads cost more than they save: waking a sleeping
// pool thread takes tens of microseconds on a VM, about what 6 MFLOP take on one core.
constexpr double kMinFlopsPerThread = 6e6;

// `bias` (nullable): C(i, j) += bias[j] after the product; fused into the direct kernel's
// stores where C's rows are contiguous, a separate pass otherwise.
template <class T>
void builtin_impl(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rsa,
                  int64_t csa, const T* B, int64_t rsb, int64_t csb, T beta, T* C, int64_t rsc,
                  int64_t csc, const T* bias = nullptr) {
  if (M <= 0 || N <= 0) return;
  if (bias && !(K > 0 && alpha != T(0) && (csc == 1 || N == 1) && kernels_for<T>(current_isa()).direct)) {
    builtin_impl(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
    add_bias_to_rows(M, N, bias, C, rsc, csc);
    return;
  }
  if (K <= 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, rsc, csc);
    return;
  }
  // Micro-tiles are stored along C's rows; a column-major C is handled as C^T = B^T A^T.
  if (csc != 1 && (rsc == 1 || M == 1) && N > 1) {
    const T* nA = B;
    const int64_t nrsa = csb, ncsa = rsb;
    const T* nB = A;
    const int64_t nrsb = csa, ncsb = rsa;
    A = nA, rsa = nrsa, csa = ncsa;
    B = nB, rsb = nrsb, csb = ncsb;
    std::swap(M, N);
    std::swap(rsc, csc);
  }
  if (N == 1) csc = 1;  // the column stride of a single column is never used
  const Kernels<T>& kr = kernels_for<T>(current_isa());
  const int64_t mtiles = ceil_div(M, kr.mr), ntiles = ceil_div(N, kr.nr);

  // Thread grid tm x tn: fewest padded flops plus packing per thread.
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  int64_t nt = std::min<int64_t>(max_threads(), static_cast<int64_t>(flops / kMinFlopsPerThread));
  nt = std::max<int64_t>(1, std::min(nt, mtiles * ntiles));
  int64_t tm = 1, tn = 1;
  if (nt > 1) {
    double best = std::numeric_limits<double>::infinity();
    for (int64_t a = 1; a <= nt; ++a) {
      const int64_t b = nt / a;
      if (a > mtiles || b > ntiles) continue;
      const double rows = static_cast<double>(ceil_div(mtiles, a) * kr.mr);
      const double cols = static_cast<double>(ceil_div(ntiles, b) * kr.nr);
      const double used = static_cast<double>(a * b);
      // Per thread: compute (FMAs at ~16 per cycle) + packing B (~1 element per cycle) +
      // A, packed (~1 per cycle, once per NC block) or read in place (~1/4).
      const double a_cost = kr.direct ? rows / 4.0
                                      : rows * std::ceil(cols / static_cast<double>(kr.nc));
      double cost = rows * cols / 16.0 + a_cost + cols;
      // idle threads count as lost work
      cost *= static_cast<double>(nt) / used;
      if (cost < best) {
        best = cost;
        tm = a;
        tn = b;
      }
    }
  }
  if (tm * tn <= 1) {
    gemm_block(kr, M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc, bias);
    return;
  }
  run_tasks(tm * tn, [&](int64_t t) {
    const int64_t ti = t / tn, tj = t % tn;
    const int64_t m0 = mtiles * ti / tm * kr.mr, m1 = std::min(M, mtiles * (ti + 1) / tm * kr.mr);
    const int64_t n0 = ntiles * tj / tn * kr.nr, n1 = std::min(N, ntiles * (tj + 1) / tn * kr.nr);
    if (m0 >= m1 || n0 >= n1) return;
    gemm_block(kr, m1 - m0, n1 - n0, K, alpha, A + m0 * rsa, rsa, csa, B + n0 * csb, rsb, csb,
                beta, C + m0 * rsc + n0 * csc, rsc, csc, bias ? bias + n0 : nullptr);
  });
}

// ------------------------------------------------------------------------------------------
// cblas mapping
// ------------------------------------------------------------------------------------------

#ifdef MMGRAD_HAVE_OPENBLAS

void cblas_call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K,
                float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, static_cast<blasint>(M), static_cast<blasint>(N),
              static_cast<blasint>(K), alpha, A, static_cast<blasint>(lda), B,
              static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}
void cblas_call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K,
                double alpha, const double* A, int64_t lda, const double* B, int64_t ldb,
                double beta, double* C, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, static_cast<blasint>(M), static_cast<blasint>(N),
              static_cast<blasint>(K), alpha, A, static_cast<blasint>(lda), B,
              static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

constexpr int64_t kBlasIntMax = std::numeric_limits<blasint>::max();

// How an R x Cc strided operand X(r,c) = X[r*rs + c*cs] is described to row-major cblas.
struct BlasOperand {
  bool ok = false;
  CBLAS_TRANSPOSE trans = CblasNoTrans;
  int64_t ld = 1;
};

BlasOperand as_blas_operand(int64_t R, int64_t Cc, int64_t rs, int64_t cs) {
  const int64_t r1 = std::max<int64_t>(R, 1), c1 = std::max<int64_t>(Cc, 1);
  // Row-major (NoTrans): unit column stride, leading dim = row stride. Strides of size-1
  // dims are never used, so they may be anything.
  if (cs == 1 || Cc == 1) {
    const int64_t ld = R == 1 ? c1 : rs;
    if (ld >= c1 && ld <= kBlasIntMax) return {true, CblasNoTrans, ld};
  }
  // Column-major (Trans of a row-major Cc x R matrix): unit row stride.
  if (rs == 1 || R == 1) {
    const int64_t ld = Cc == 1 ? r1 : cs;
    if (ld >= r1 && ld <= kBlasIntMax) return {true, CblasTrans, ld};
  }
  return {};
}

// Copies a strided R x Cc matrix into a contiguous row-major buffer.
template <class T>
std::vector<T> to_contiguous(int64_t R, int64_t Cc, const T* X, int64_t rs, int64_t cs) {
  std::vector<T> out(static_cast<size_t>(R * Cc));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < Cc; ++c) out[static_cast<size_t>(r * Cc + c)] = X[r * rs + c * cs];
  return out;
}

template <class T>
void blas_impl(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rsa, int64_t csa,
               const T* B, int64_t rsb, int64_t csb, T beta, T* C, int64_t rsc, int64_t csc,
               bool may_swap = true) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, rsc, csc);
    return;
  }
  if (M > kBlasIntMax || N > kBlasIntMax || K > kBlasIntMax) {
    builtin_impl(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
    return;
  }
  // C must be row-major for cblas (RowMajor layout).
  const BlasOperand oc = as_blas_operand(M, N, rsc, csc);
  if (!oc.ok || oc.trans != CblasNoTrans) {
    if (may_swap && oc.ok) {
      // Column-major C: C^T = B^T A^T.
      blas_impl(N, M, K, alpha, B, csb, rsb, A, csa, rsa, beta, C, csc, rsc, false);
      return;
    }
    // No unit stride in C: compute into a contiguous temporary.
    std::vector<T> tmp = beta == T(0) ? std::vector<T>(static_cast<size_t>(M * N))
                                      : to_contiguous(M, N, C, rsc, csc);
    blas_impl(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, tmp.data(), N, int64_t{1}, false);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * rsc + j * csc] = tmp[static_cast<size_t>(i * N + j)];
    return;
  }
  BlasOperand oa = as_blas_operand(M, K, rsa, csa);
  std::vector<T> a_copy, b_copy;
  if (!oa.ok) {
    a_copy = to_contiguous(M, K, A, rsa, csa);
    A = a_copy.data();
    oa = {true, CblasNoTrans, K};
  }
  BlasOperand ob = as_blas_operand(K, N, rsb, csb);
  if (!ob.ok) {
    b_copy = to_contiguous(K, N, B, rsb, csb);
    B = b_copy.data();
    ob = {true, CblasNoTrans, N};
  }
  cblas_call(oa.trans, ob.trans, M, N, K, alpha, A, oa.ld, B, ob.ld, beta, C, oc.ld);
}

#endif  // MMGRAD_HAVE_OPENBLAS

}  // namespace

// ------------------------------------------------------------------------------------------
// Public entry points
// ------------------------------------------------------------------------------------------

void builtin_gemm(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa,
                  int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta, float* C,
                  int64_t rsc, int64_t csc) {
  builtin_impl(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}

void builtin_gemm(int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t rsa,
                  int64_t csa, const double* B, int64_t rsb, int64_t csb, double beta, double* C,
                  int64_t rsc, int64_t csc) {
  builtin_impl(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}

namespace {

// Which f32 GEMM gemm() runs: 1 = BLAS, 0 = builtin. Measured on the clip-tiny step's 74 GEMM
// shapes (bench_matmul, 2 cores, AVX-512): builtin 306 GFLOP/s, OpenBLAS 0.3.21 SkylakeX 227
// GFLOP/s; and OpenBLAS's own threads spin after each call and fight mmgrad's pool for the
// cores. So the builtin kernel is the default wherever it is vectorised (AVX2 or AVX-512);
// MMGRAD_GEMM=blas|builtin overrides.
std::atomic<int>& float_blas_state() {
  static std::atomic<int> state{[] {
#ifdef MMGRAD_HAVE_OPENBLAS
    if (const char* s = std::getenv("MMGRAD_GEMM")) {
      if (std::string_view(s) == "blas") return 1;
      if (std::string_view(s) == "builtin") return 0;
    }
    return current_isa() == Isa::Generic ? 1 : 0;
#else
    return 0;
#endif
  }()};
  return state;
}

}  // namespace

void gemm(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa, int64_t csa,
          const float* B, int64_t rsb, int64_t csb, float beta, float* C, int64_t rsc,
          int64_t csc) {
#ifdef MMGRAD_HAVE_OPENBLAS
  if (float_blas_state().load(std::memory_order_relaxed)) {
    blas_impl(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
    return;
  }
#endif
  builtin_impl(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}

void gemm_bias(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsa, int64_t csa, const float* B,
               int64_t rsb, int64_t csb, const float* bias, float* C, int64_t rsc, int64_t csc) {
#ifdef MMGRAD_HAVE_OPENBLAS
  if (float_blas_state().load(std::memory_order_relaxed)) {
    blas_impl(M, N, K, 1.0f, A, rsa, csa, B, rsb, csb, 0.0f, C, rsc, csc);
    add_bias_to_rows(M, N, bias, C, rsc, csc);
    return;
  }
#endif
  builtin_impl(M, N, K, 1.0f, A, rsa, csa, B, rsb, csb, 0.0f, C, rsc, csc, bias);
}

void gemm_bias(int64_t M, int64_t N, int64_t K, const double* A, int64_t rsa, int64_t csa, const double* B,
               int64_t rsb, int64_t csb, const double* bias, double* C, int64_t rsc, int64_t csc) {
  gemm(M, N, K, 1.0, A, rsa, csa, B, rsb, csb, 0.0, C, rsc, csc);
  if (M > 0) add_bias_to_rows(M, N, bias, C, rsc, csc);
}

const char* float_gemm_provider() { return float_blas_state().load(std::memory_order_relaxed) ? "blas" : "builtin"; }

bool set_float_gemm_provider(std::string_view name) {
#ifdef MMGRAD_HAVE_OPENBLAS
  if (name == "blas") return float_blas_state().store(1), true;
#endif
  if (name == "builtin") return float_blas_state().store(0), true;
  return false;
}

void gemm(int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t rsa,
          int64_t csa, const double* B, int64_t rsb, int64_t csb, double beta, double* C,
          int64_t rsc, int64_t csc) {
#ifdef MMGRAD_HAVE_OPENBLAS
  blas_impl(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
#else
  builtin_impl(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
#endif
}

const char* builtin_gemm_isa() { return isa_name(current_isa()); }

bool builtin_gemm_isa_supported(std::string_view isa) {
  Isa i;
  return parse_isa(isa, &i) && cpu_supports(i);
}

bool set_builtin_gemm_isa(std::string_view isa) {
  Isa i;
  if (!parse_isa(isa, &i) || !cpu_supports(i)) return false;
  isa_state().store(static_cast<int>(i), std::memory_order_relaxed);
  return true;
}

int builtin_gemm_threads() { return std::min(max_threads(), mmgrad::num_threads()); }

void set_builtin_gemm_threads(int n) { g_thread_cap.store(n > 0 ? n : 0, std::memory_order_relaxed); }

}  // namespace mmgrad::cpu
