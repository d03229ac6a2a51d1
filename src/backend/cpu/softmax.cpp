// Row-wise log-softmax and the fused cross-entropy head; every row is stabilised by its maximum.
#include <cmath>
#include "core/simd.h"
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace duo {
using namespace cpu;

// log(sum_j exp(x_j)) of one row of width V, computed as max + log(sum exp(x - max)).
template <class T> static DUO_INLINE_INTO_CLONES T row_logsumexp(const T* x, int64_t V) {
  T m = x[0];
  for (int64_t j = 1; j < V; ++j) m = x[j] > m ? x[j] : m;
  T sum = 0;
  for (int64_t j = 0; j < V; ++j) sum += std::exp(x[j] - m);
  return m + std::log(sum);
}

template <class T> DUO_SIMD_CLONES static void log_softmax_forward(Tensor& out, const Tensor& logits) {
  const int64_t V = logits.dim(-1), N = rows_of(logits);
#pragma omp parallel for schedule(static) if (worth_threads(N * V))
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits.ptr<T>() + n * V;
    T* y = out.ptr<T>() + n * V;
    const T lse = row_logsumexp(x, V);
    for (int64_t j = 0; j < V; ++j) y[j] = x[j] - lse;
  }
}

void CpuOps::do_log_softmax(Tensor& out, const Tensor& logits) {
  const char* op = "log_softmax";
  check_same_dtype(op, {&out, &logits});
  checks::log_softmax(str("CpuOps::", op), out, logits);
  dispatch(op, logits, [&](auto tag) { log_softmax_forward<decltype(tag)>(out, logits); });
}

// din = dout - softmax * sum(dout), with softmax = exp(out)
template <class T> DUO_SIMD_CLONES static void log_softmax_backward_impl(Tensor& dlogits, const Tensor& dout, const Tensor& out) {
  const int64_t V = out.dim(-1), N = rows_of(out);
#pragma omp parallel for schedule(static) if (worth_threads(N * V))
  for (int64_t n = 0; n < N; ++n) {
    const T* y = out.ptr<T>() + n * V;
    const T* dy = dout.ptr<T>() + n * V;
    T* dx = dlogits.ptr<T>() + n * V;
    T sum = 0;
    for (int64_t j = 0; j < V; ++j) sum += dy[j];
    for (int64_t j = 0; j < V; ++j) dx[j] = dy[j] - std::exp(y[j]) * sum;
  }
}

void CpuOps::do_log_softmax_backward(Tensor& dlogits, const Tensor& dout, const Tensor& out) {
  const char* op = "log_softmax_backward";
  check_same_dtype(op, {&dlogits, &dout, &out});
  checks::log_softmax_backward(str("CpuOps::", op), dlogits, dout, out);
  dispatch(op, out, [&](auto tag) { log_softmax_backward_impl<decltype(tag)>(dlogits, dout, out); });
}

// losses[n] = logsumexp(logits[n]) - logits[n, target];  dlogits = grad_scale * (softmax - onehot(target))
template <class T>
DUO_SIMD_CLONES static void cross_entropy_impl(Tensor& losses, Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                               double grad_scale) {
  const int64_t V = logits.dim(-1), N = rows_of(logits);
  const int32_t* tgt = targets.ptr<int32_t>();
  const T g = (T)grad_scale;
#pragma omp parallel for schedule(static) if (worth_threads(N * V))
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits.ptr<T>() + n * V;
    const T lse = row_logsumexp(x, V);
    losses.ptr<T>()[n] = lse - x[tgt[n]];
    if (!dlogits.empty()) {
      T* dx = dlogits.ptr<T>() + n * V;
      for (int64_t j = 0; j < V; ++j) dx[j] = g * std::exp(x[j] - lse);
      dx[tgt[n]] -= g;
    }
  }
}

void CpuOps::do_cross_entropy(Tensor& losses, Tensor& dlogits, const Tensor& logits, const Tensor& targets,
                              double grad_scale) {
  const char* op = "cross_entropy";
  check_same_dtype(op, {&losses, &dlogits, &logits});
  const auto [N, V] = checks::cross_entropy(str("CpuOps::", op), losses, dlogits, logits, targets);
  const int32_t* tgt = targets.ptr<int32_t>();
  for (int64_t n = 0; n < N; ++n)
    DUO_CHECK(tgt[n] >= 0 && tgt[n] < V, "CpuOps::cross_entropy",
              str("target ", tgt[n], " at row ", n, " is outside the vocabulary [0, ", V, ")"),
              "check the tokenizer's vocabulary size against the model's");
  dispatch(op, logits, [&](auto tag) {
    cross_entropy_impl<decltype(tag)>(losses, dlogits, logits, targets, grad_scale);
  });
}

}  // namespace duo
