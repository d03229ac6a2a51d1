// Shared helpers of the CPU backend: dtype dispatch, shape checks with messages that name the op, row access
// for strided (B, D) views, and BLAS GEMM overloaded on float / double.
#pragma once
#include <cblas.h>
#include <cstdint>
#include <initializer_list>
#include "backend/cpu/gemm_kernels.h"
#include "backend/shape_checks.h"
#include "core/error.h"
#include "core/tensor.h"

namespace duo::cpu {

// OpenMP pays only above some work: a parallel region costs microseconds, far more on a loaded machine, so
// tiny calls (tests, short sequences) stay on the calling thread. `work` ~ elements or multiply-adds.
inline bool worth_threads(int64_t work) { return work >= (int64_t)1 << 15; }

// Calls f(T{}) with T = float for F32 and T = double for F64; any other dtype is a user-facing error.
template <class F>
void dispatch(const char* op, const Tensor& t, F&& f) {
  if (t.dtype == DType::F32) return f(float{});
  if (t.dtype == DType::F64) return f(double{});
  fail(str("CpuOps::", op), str("unsupported dtype ", dtype_name(t.dtype)),
       "the CPU backend computes in F32 (and F64 for gradient checks)");
}

// All non-empty floating tensors of one call must share the dtype of the first.
inline void check_same_dtype(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (t->empty()) continue;
    if (!first) first = t;
    DUO_CHECK(t->dtype == first->dtype, str("CpuOps::", op),
              str("mixed dtypes ", dtype_name(first->dtype), " and ", dtype_name(t->dtype)),
              "all floating tensors of one op must share one dtype");
  }
}

inline void check_dtype(const char* op, const char* name, const Tensor& t, DType want) {
  checks::dtype(str("CpuOps::", op), name, t, want);
}

inline void check_present(const char* op, const char* name, const Tensor& t) {
  checks::present(str("CpuOps::", op), name, t);
}

// A contiguous tensor read as a matrix [rows, cols]: last dim = cols, all leading dims fold into rows.
inline void check_matrix(const char* op, const char* name, const Tensor& t, int64_t rows, int64_t cols) {
  checks::matrix(str("CpuOps::", op), name, t, rows, cols);
}

// A contiguous tensor of n elements, whatever its shape (a bias [O], LayerNorm statistics [B*L], ...).
inline void check_numel(const char* op, const char* name, const Tensor& t, int64_t n) {
  checks::numel(str("CpuOps::", op), name, t, n);
}

using checks::rows_of;

// A [B, D] tensor whose rows may be strided (a column block of the adaLN output): stride[1] must be 1.
inline void check_row_view(const char* op, const char* name, const Tensor& t, int64_t B, int64_t D) {
  checks::row_view(str("CpuOps::", op), name, t, B, D);
}

// Row b of a [B, D] (possibly strided) view.
template <class T> T* row(const Tensor& t, int64_t b) { return t.ptr<T>() + b * t.stride[0]; }

// Keeps OpenBLAS on the calling thread for its lifetime. Needed around OpenMP loops whose tasks call GEMMs
// (attention: one task per (batch, head)): a pthreads OpenBLAS would otherwise start its own threads inside
// every task and oversubscribe the cores (measured ~6x slower on 2 cores). The OpenMP build of OpenBLAS
// already runs single-threaded inside parallel regions, so this is a no-op there.
class BlasSingleThreaded {
 public:
  explicit BlasSingleThreaded(bool engage) : saved_(engage ? openblas_get_num_threads() : 0) {
    if (saved_ > 1) openblas_set_num_threads(1);
  }
  ~BlasSingleThreaded() {
    if (saved_ > 1) openblas_set_num_threads(saved_);
  }
  BlasSingleThreaded(const BlasSingleThreaded&) = delete;
  BlasSingleThreaded& operator=(const BlasSingleThreaded&) = delete;

 private:
  int saved_;
};

// Row-major C = alpha * op(A) op(B) + beta * C. The first GEMM of the process chooses the kernels
// (gemm_kernels.h); K = 0 gives C = beta * C, as BLAS defines it.
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  gemm_kernels();
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,
              (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
                 const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  gemm_kernels();
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,
              (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

}  // namespace duo::cpu
