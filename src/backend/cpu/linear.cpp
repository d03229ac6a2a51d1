// Dense layer y = x W^T + b (PyTorch's nn.Linear layout, W is [out, in]) and its backward, on OpenBLAS.
#include <algorithm>
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace duo {
using namespace cpu;

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

void CpuOps::do_linear(Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias) {
  const char* op = "linear";
  check_same_dtype(op, {&out, &in, &W, &bias});
  checks::linear(str("CpuOps::", op), out, in, W, bias);
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

void CpuOps::do_linear_backward(Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                                const Tensor& W, bool accumulate_din) {
  const char* op = "linear_backward";
  check_same_dtype(op, {&dout, &din, &dW, &dbias, &in, &W});
  checks::linear_backward(str("CpuOps::", op), din, dW, dbias, dout, in, W);
  dispatch(op, dout, [&](auto tag) {
    linear_backward_impl<decltype(tag)>(din, dW, dbias, dout, in, W, accumulate_din);
  });
}

}  // namespace duo
