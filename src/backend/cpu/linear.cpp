// Dense layer y = x W^T + b (PyTorch's nn.Linear layout, W is [out, in]) and its backward, on OpenBLAS.
#include <algorithm>
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace duo {
using namespace cpu;

static void check_weight(const char* op, const Tensor& W) {
  DUO_CHECK(W.ndim == 2 && W.is_contiguous(), str("CpuOps::", op),
            str("W ", W.shape_str(), " must be a contiguous (O, I) matrix"), "");
}

template <class T>
static void linear_forward(Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias) {
  const int64_t O = W.shape[0], I = W.shape[1], N = rows_of(in);
  T* y = out.ptr<T>();
  const T* x = in.ptr<T>();
  T beta = 0;
  if (!bias.empty()) {  // seed every output row with the bias, then let the GEMM add x W^T on top
    const T* b = bias.ptr<T>();
#pragma omp parallel for schedule(static) if (worth_threads(N * O))
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o) y[n * O + o] = b[o];
    beta = 1;
  }
  gemm(false, true, N, O, I, T(1), x, I, W.ptr<T>(), I, beta, y, O);  // (N,I) x (I,O) -> (N,O)
}

void CpuOps::linear(Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias) {
  const char* op = "linear";
  check_same_dtype(op, {&out, &in, &W, &bias});
  check_weight(op, W);
  const int64_t O = W.shape[0], I = W.shape[1], N = rows_of(in);
  check_matrix(op, "in", in, N, I);
  check_matrix(op, "out", out, N, O);
  if (!bias.empty()) check_numel(op, "bias", bias, O);
  dispatch(op, out, [&](auto tag) { linear_forward<decltype(tag)>(out, in, W, bias); });
}

template <class T>
static void linear_backward_impl(Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                                 const Tensor& W, bool accumulate_din) {
  const int64_t O = W.shape[0], I = W.shape[1], N = rows_of(dout);
  const T* dy = dout.ptr<T>();
  if (!din.empty())  // dx (N,I) = dy (N,O) @ W (O,I)
    gemm(false, false, N, I, O, T(1), dy, O, W.ptr<T>(), I, accumulate_din ? T(1) : T(0), din.ptr<T>(), I);
  if (!dW.empty())  // dW (O,I) += dy^T (O,N) @ x (N,I)
    gemm(true, false, O, I, N, T(1), dy, O, in.ptr<T>(), I, T(1), dW.ptr<T>(), I);
  if (!dbias.empty()) {  // db[o] += sum_n dy[n,o], rows summed in order (deterministic for any thread count)
    T* db = dbias.ptr<T>();
    constexpr int64_t kCols = 256;  // a block of columns per task: rows are read contiguously, sums vectorise
#pragma omp parallel for schedule(static) if (worth_threads(N * O))
    for (int64_t o0 = 0; o0 < O; o0 += kCols) {
      const int64_t width = std::min(kCols, O - o0);
      T acc[kCols] = {};
      for (int64_t n = 0; n < N; ++n) {
        const T* r = dy + n * O + o0;
        for (int64_t j = 0; j < width; ++j) acc[j] += r[j];
      }
      for (int64_t j = 0; j < width; ++j) db[o0 + j] += acc[j];
    }
  }
}

void CpuOps::linear_backward(Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                             const Tensor& W, bool accumulate_din) {
  const char* op = "linear_backward";
  check_same_dtype(op, {&dout, &din, &dW, &dbias, &in, &W});
  check_weight(op, W);
  const int64_t O = W.shape[0], I = W.shape[1], N = rows_of(dout);
  check_matrix(op, "dout", dout, N, O);
  if (!din.empty()) check_matrix(op, "din", din, N, I);
  if (!dW.empty()) {
    check_matrix(op, "dW", dW, O, I);
    check_matrix(op, "in", in, N, I);
  }
  if (!dbias.empty()) check_numel(op, "dbias", dbias, O);
  dispatch(op, dout, [&](auto tag) {
    linear_backward_impl<decltype(tag)>(din, dW, dbias, dout, in, W, accumulate_din);
  });
}

}  // namespace duo
