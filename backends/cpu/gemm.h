// General matrix multiply for the CPU backend: the one entry point used by the matmul kernel.
//
//   C(i,j) = alpha * sum_k A(i,k) B(k,j) + beta * C(i,j)
//   A(i,k) = A[i*rsa + k*csa],  B(k,j) = B[k*rsb + j*csb],  C(i,j) = C[i*rsc + j*csc]
//
// Strides are general (BLIS style), so transposed or sliced views need no copies. beta == 0
// means C is not read (it may hold NaN or garbage); alpha == 0 or K == 0 means A and B are not
// read. Output elements must not alias A or B, and distinct (i,j) must map to distinct
// elements of C (no zero strides in C unless that dim has size 1).
//
// f32: mmgrad's own blocked, vectorised, multithreaded kernel (`builtin_gemm`) wherever it
// has AVX2 or AVX-512 kernels (faster than Debian's OpenBLAS at the models' shapes, and one
// thread pool instead of two); cblas_sgemm otherwise, or when MMGRAD_GEMM=blas. f64 (tests,
// gradcheck) maps onto cblas_dgemm in a build with OpenBLAS. The cblas path passes strides as
// transpose flags where it can (packing into a contiguous temporary otherwise). The
// `-Dblas=none` build always runs the builtin kernel (tests compare the two).
#pragma once
#include <cstdint>
#include <string_view>

namespace mmgrad::cpu {

void gemm(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa, int64_t csa,
          const float* B, int64_t rsb, int64_t csb, float beta, float* C, int64_t rsc,
          int64_t csc);
void gemm(int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t rsa,
          int64_t csa, const double* B, int64_t rsb, int64_t csb, double beta, double* C,
          int64_t rsc, int64_t csc);

// C(i,j) = sum_k A(i,k) B(k,j) + bias[j]: a linear layer's forward. The built-in f32 kernel
// adds the bias as it stores each tile (no second pass over C); other paths add it after.
void gemm_bias(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsa, int64_t csa, const float* B,
               int64_t rsb, int64_t csb, const float* bias, float* C, int64_t rsc, int64_t csc);
void gemm_bias(int64_t M, int64_t N, int64_t K, const double* A, int64_t rsa, int64_t csa, const double* B,
               int64_t rsb, int64_t csb, const double* bias, double* C, int64_t rsc, int64_t csc);

// mmgrad's own GEMM (packing, cache blocking, register-blocked micro-kernel chosen at run time
// for the CPU: AVX-512, AVX2+FMA or portable). Same contract as gemm().
void builtin_gemm(int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t rsa,
                  int64_t csa, const float* B, int64_t rsb, int64_t csb, float beta, float* C,
                  int64_t rsc, int64_t csc);
void builtin_gemm(int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t rsa,
                  int64_t csa, const double* B, int64_t rsb, int64_t csb, double beta, double* C,
                  int64_t rsc, int64_t csc);

// The instruction set builtin_gemm dispatches to: "avx512", "avx2" or "generic". Chosen once from
// the CPU's features; the environment variable MMGRAD_GEMM_ISA (same names) may lower it.
const char* builtin_gemm_isa();
// Forces the dispatch to `isa` ("avx512", "avx2", "generic"). Returns false (and changes
// nothing) when the name is unknown or the CPU cannot run it. Not thread-safe against running
// GEMMs; meant for tests and benchmarks.
bool set_builtin_gemm_isa(std::string_view isa);
// True when this CPU can run the kernels of `isa`.
bool builtin_gemm_isa_supported(std::string_view isa);

// The f32 provider gemm() uses: "builtin" or "blas"; set_float_gemm_provider changes it
// (false when the name is unknown or BLAS is not built in). Not thread-safe against running
// GEMMs; for tests and benchmarks.
const char* float_gemm_provider();
bool set_float_gemm_provider(std::string_view name);
// Most threads builtin_gemm uses for one call (the thread pool's size; 1 = serial).
int builtin_gemm_threads();
// Caps the threads of builtin_gemm (n <= 0 restores the default: the size of mmgrad's thread
// pool, see core/parallel.h).
void set_builtin_gemm_threads(int n);

}  // namespace mmgrad::cpu
