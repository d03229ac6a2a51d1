// Dense layer y = x W^T + b (PyTorch's nn.Linear layout, W is [out, in]) and its backward, on OpenBLAS; with
// `--compute bf16`, float GEMMs take bf16-rounded inputs on oneDNN (gemm_bf16.h), accumulating in fp32.
#include <algorithm>
#include "core/simd.h"
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace duo {
using namespace cpu;

// Seeds every output row (N, O) with the bias, so that the GEMM adds x W^T on top (beta = 1); returns beta.
template <class T>
DUO_SIMD_CLONES static T seed_with_bias(T* y, const Tensor& bias, int64_t N, int64_t O) {
  if (bias.empty()) return T(0);
  const T* b = bias.ptr<T>();
#pragma omp parallel for schedule(static) if (worth_threads(N * O))
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) y[n * O + o] = b[o];
  return T(1);
}

template <class T>
static void linear_forward(Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias) {
  const int64_t O = W.shape[0], I = W.shape[1], N = rows_of(in);
  T* y = out.ptr<T>();
  const T beta = seed_with_bias(y, bias, N, O);
  gemm(false, true, N, O, I, T(1), in.ptr<T>(), I, W.ptr<T>(), I, beta, y, O);  // (N,I) x (I,O) -> (N,O)
}

// Rounds n floats into `buf` (grown on demand) and returns it.
static const bf16_t* rounded(const float* x, int64_t n, std::vector<bf16_t>& buf) {
  if (buf.size() < (size_t)n) buf.resize((size_t)n);
  to_bf16(x, buf.data(), n);
  return buf.data();
}

// W rounded to bf16: kept from its first use while W lies in a frozen block, else rounded now.
const bf16_t* CpuOps::bf16_weights(const Tensor& W) {
  const float* w = W.ptr<float>();
  const char* p = reinterpret_cast<const char*>(w);
  auto block = frozen_.upper_bound(p);  // the last block starting at or before p
  if (block == frozen_.begin() || p + W.nbytes() > std::prev(block)->second.end)
    return rounded(w, W.numel(), bf16_w_);
  std::vector<bf16_t>& kept = std::prev(block)->second.rounded[w];
  if (kept.size() != (size_t)W.numel()) rounded(w, W.numel(), kept);
  return kept.data();
}

void CpuOps::begin_frozen_weights(const void* weights, size_t bytes) {
  FrozenBlock& block = frozen_[static_cast<const char*>(weights)];
  DUO_ASSERT(block.holders == 0 || block.end == static_cast<const char*>(weights) + bytes);
  block.end = static_cast<const char*>(weights) + bytes;
  ++block.holders;
}

void CpuOps::end_frozen_weights(const void* weights) {
  auto it = frozen_.find(static_cast<const char*>(weights));
  DUO_ASSERT(it != frozen_.end());
  if (--it->second.holders == 0) frozen_.erase(it);
}

CpuOps::CpuOps(bool bf16_gemms) {
  if (bf16_gemms) bf16_gemm_ = std::make_unique<Bf16Gemm>();
}
CpuOps::~CpuOps() = default;

void CpuOps::do_linear(Tensor& out, const Tensor& in, const Tensor& W, const Tensor& bias) {
  const char* op = "linear";
  check_same_dtype(op, {&out, &in, &W, &bias});
  checks::linear(str("CpuOps::", op), out, in, W, bias);
  if (bf16_gemm_ && out.dtype == DType::F32) {
    const int64_t O = W.shape[0], I = W.shape[1], N = rows_of(in);
    (*bf16_gemm_)(false, true, N, O, I, 1.0f, rounded(in.ptr<float>(), N * I, bf16_x_), I, bf16_weights(W), I, 0.0f,
                  out.ptr<float>(), O, bias.empty() ? nullptr : bias.ptr<float>());
    return;
  }
  dispatch(op, out, [&](auto tag) { linear_forward<decltype(tag)>(out, in, W, bias); });
}

// db[o] += sum_n dy[n,o], rows summed in order (deterministic for any thread count).
template <class T>
DUO_SIMD_CLONES static void bias_backward(Tensor& dbias, const T* dy, int64_t N, int64_t O) {
  if (dbias.empty()) return;
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

template <class T>
static void linear_backward_impl(Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                                 const Tensor& W, bool accumulate_din) {
  const int64_t O = W.shape[0], I = W.shape[1], N = rows_of(dout);
  const T* dy = dout.ptr<T>();
  if (!din.empty())  // dx (N,I) = dy (N,O) @ W (O,I)
    gemm(false, false, N, I, O, T(1), dy, O, W.ptr<T>(), I, accumulate_din ? T(1) : T(0), din.ptr<T>(), I);
  if (!dW.empty())  // dW (O,I) += dy^T (O,N) @ x (N,I)
    gemm(true, false, O, I, N, T(1), dy, O, in.ptr<T>(), I, T(1), dW.ptr<T>(), I);
  bias_backward(dbias, dy, N, O);
}

void CpuOps::do_linear_backward(Tensor& din, Tensor& dW, Tensor& dbias, const Tensor& dout, const Tensor& in,
                                const Tensor& W, bool accumulate_din) {
  const char* op = "linear_backward";
  check_same_dtype(op, {&dout, &din, &dW, &dbias, &in, &W});
  checks::linear_backward(str("CpuOps::", op), din, dW, dbias, dout, in, W);
  if (bf16_gemm_ && dout.dtype == DType::F32 && (!din.empty() || !dW.empty())) {
    const int64_t O = W.shape[0], I = W.shape[1], N = rows_of(dout);
    const bf16_t* dy = rounded(dout.ptr<float>(), N * O, bf16_dy_);
    if (!din.empty())  // dx (N,I) = dy (N,O) @ W (O,I)
      (*bf16_gemm_)(false, false, N, I, O, 1.0f, dy, O, bf16_weights(W), I, accumulate_din ? 1.0f : 0.0f,
                    din.ptr<float>(), I);
    if (!dW.empty())  // dW (O,I) += dy^T (O,N) @ x (N,I)
      (*bf16_gemm_)(true, false, O, I, N, 1.0f, dy, O, rounded(in.ptr<float>(), N * I, bf16_x_), I, 1.0f,
                    dW.ptr<float>(), I);
    bias_backward(dbias, dout.ptr<float>(), N, O);  // the bias gradient sums the fp32 dy
    return;
  }
  dispatch(op, dout, [&](auto tag) {
    linear_backward_impl<decltype(tag)>(din, dW, dbias, dout, in, W, accumulate_din);
  });
}

}  // namespace duo
