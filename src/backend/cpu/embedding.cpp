// Input embeddings: row gather by token id, the soft lookup softmax(logits) @ table of the DUO curriculum,
// and the weighted bag of the efficient curriculum. Backwards scatter into dtable deterministically: each
// thread owns a block of columns and visits the rows in order n = 0, 1, ...
#include <cmath>
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/shape_checks.h"

namespace duo {
using namespace cpu;

constexpr int64_t kScatterCols = 64;  // columns of dtable per parallel task in the scatter backwards

// The ids' range (their shapes and dtype: backend/shape_checks.h).
static void check_ids(const char* op, const Tensor& ids, int64_t V) {
  const int32_t* id = ids.ptr<int32_t>();
  for (int64_t i = 0; i < ids.numel(); ++i)
    DUO_CHECK(id[i] >= 0 && id[i] < V, str("CpuOps::", op),
              str("token id ", id[i], " at position ", i, " is outside the vocabulary [0, ", V, ")"),
              "check the tokenizer's vocabulary size against the model's");
}

// ---- ids ------------------------------------------------------------------------------------------------
template <class T> static void embed_ids_forward(Tensor& out, const Tensor& ids, const Tensor& table) {
  const int64_t D = table.shape[1], N = ids.numel();
  const int32_t* id = ids.ptr<int32_t>();
#pragma omp parallel for schedule(static) if (worth_threads(N * D))
  for (int64_t n = 0; n < N; ++n) {
    const T* src = table.ptr<T>() + (int64_t)id[n] * D;
    T* dst = out.ptr<T>() + n * D;
    for (int64_t d = 0; d < D; ++d) dst[d] = src[d];
  }
}

void CpuOps::do_embed_ids(Tensor& out, const Tensor& ids, const Tensor& table) {
  const char* op = "embed_ids";
  check_same_dtype(op, {&out, &table});
  const checks::EmbedShape s = checks::embed_ids(str("CpuOps::", op), out, "out", ids, table, "table");
  check_ids(op, ids, s.V);
  dispatch(op, table, [&](auto tag) { embed_ids_forward<decltype(tag)>(out, ids, table); });
}

template <class T> static void embed_ids_backward_impl(Tensor& dtable, const Tensor& ids, const Tensor& dout) {
  const int64_t D = dtable.shape[1], N = ids.numel();
  const int32_t* id = ids.ptr<int32_t>();
#pragma omp parallel for schedule(static) if (worth_threads(N * D))
  for (int64_t d0 = 0; d0 < D; d0 += kScatterCols) {
    const int64_t d1 = d0 + kScatterCols < D ? d0 + kScatterCols : D;
    for (int64_t n = 0; n < N; ++n) {
      T* dst = dtable.ptr<T>() + (int64_t)id[n] * D;
      const T* g = dout.ptr<T>() + n * D;
      for (int64_t d = d0; d < d1; ++d) dst[d] += g[d];
    }
  }
}

void CpuOps::do_embed_ids_backward(Tensor& dtable, const Tensor& ids, const Tensor& dout) {
  const char* op = "embed_ids_backward";
  check_same_dtype(op, {&dtable, &dout});
  const checks::EmbedShape s = checks::embed_ids(str("CpuOps::", op), dout, "dout", ids, dtable, "dtable");
  check_ids(op, ids, s.V);
  dispatch(op, dtable, [&](auto tag) { embed_ids_backward_impl<decltype(tag)>(dtable, ids, dout); });
}

// ---- soft: probs = softmax(logits), out = probs @ table --------------------------------------------------
template <class T>
static void embed_soft_forward(Tensor& out, Tensor& probs_t, const Tensor& logits, const Tensor& table) {
  const int64_t V = table.shape[0], D = table.shape[1], N = rows_of(logits);
#pragma omp parallel for schedule(static) if (worth_threads(N * V))
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits.ptr<T>() + n * V;
    T* prob = probs_t.ptr<T>() + n * V;
    T m = x[0];
    for (int64_t j = 1; j < V; ++j) m = x[j] > m ? x[j] : m;
    T sum = 0;
    for (int64_t j = 0; j < V; ++j) sum += (prob[j] = std::exp(x[j] - m));
    for (int64_t j = 0; j < V; ++j) prob[j] /= sum;
  }
  gemm(false, false, N, D, V, T(1), probs_t.ptr<T>(), V, table.ptr<T>(), D, T(0), out.ptr<T>(), D);  // (N,V)(V,D)
}

void CpuOps::do_embed_soft(Tensor& out, Tensor& probs, const Tensor& logits, const Tensor& table) {
  const char* op = "embed_soft";
  check_same_dtype(op, {&out, &probs, &logits, &table});
  const checks::EmbedShape s = checks::embed_soft(str("CpuOps::", op), out, "out", logits, "logits", table, "table");
  check_matrix(op, "probs", probs, s.N, s.V);
  dispatch(op, table, [&](auto tag) { embed_soft_forward<decltype(tag)>(out, probs, logits, table); });
}

void CpuOps::do_embed_soft_backward(Tensor& dtable, const Tensor& probs, const Tensor& dout) {
  const char* op = "embed_soft_backward";
  check_same_dtype(op, {&dtable, &probs, &dout});
  const auto [N, K, V, D] = checks::embed_soft(str("CpuOps::", op), dout, "dout", probs, "probs", dtable, "dtable");
  dispatch(op, dtable, [&](auto tag) {  // dtable (V,D) += probs^T (V,N) @ dout (N,D)
    using T = decltype(tag);
    gemm(true, false, V, D, N, T(1), probs.ptr<T>(), V, dout.ptr<T>(), D, T(1), dtable.ptr<T>(), D);
  });
}

// ---- bag: out[n] = sum_j weights[n,j] * table[ids[n,j]] ---------------------------------------------------
template <class T>
static void embed_bag_forward(Tensor& out, const Tensor& ids, const Tensor& weights, const Tensor& table) {
  const int64_t D = table.shape[1], K = ids.dim(-1), N = rows_of(ids);
  const int32_t* id = ids.ptr<int32_t>();
  const T* w = weights.ptr<T>();
#pragma omp parallel for schedule(static) if (worth_threads(N * K * D))
  for (int64_t n = 0; n < N; ++n) {
    T* dst = out.ptr<T>() + n * D;
    for (int64_t d = 0; d < D; ++d) dst[d] = 0;
    for (int64_t j = 0; j < K; ++j) {
      const T* src = table.ptr<T>() + (int64_t)id[n * K + j] * D;
      for (int64_t d = 0; d < D; ++d) dst[d] += w[n * K + j] * src[d];
    }
  }
}

void CpuOps::do_embed_bag(Tensor& out, const Tensor& ids, const Tensor& weights, const Tensor& table) {
  const char* op = "embed_bag";
  check_same_dtype(op, {&out, &weights, &table});
  check_ids(op, ids, checks::embed_bag(str("CpuOps::", op), out, "out", ids, weights, table, "table").V);
  dispatch(op, table, [&](auto tag) { embed_bag_forward<decltype(tag)>(out, ids, weights, table); });
}

template <class T>
static void embed_bag_backward_impl(Tensor& dtable, const Tensor& ids, const Tensor& weights, const Tensor& dout) {
  const int64_t D = dtable.shape[1], K = ids.dim(-1), N = rows_of(ids);
  const int32_t* id = ids.ptr<int32_t>();
  const T* w = weights.ptr<T>();
#pragma omp parallel for schedule(static) if (worth_threads(N * K * D))
  for (int64_t d0 = 0; d0 < D; d0 += kScatterCols) {
    const int64_t d1 = d0 + kScatterCols < D ? d0 + kScatterCols : D;
    for (int64_t n = 0; n < N; ++n) {
      const T* g = dout.ptr<T>() + n * D;
      for (int64_t j = 0; j < K; ++j) {
        T* dst = dtable.ptr<T>() + (int64_t)id[n * K + j] * D;
        for (int64_t d = d0; d < d1; ++d) dst[d] += w[n * K + j] * g[d];
      }
    }
  }
}

void CpuOps::do_embed_bag_backward(Tensor& dtable, const Tensor& ids, const Tensor& weights, const Tensor& dout) {
  const char* op = "embed_bag_backward";
  check_same_dtype(op, {&dtable, &weights, &dout});
  check_ids(op, ids, checks::embed_bag(str("CpuOps::", op), dout, "dout", ids, weights, dtable, "dtable").V);
  dispatch(op, dtable, [&](auto tag) { embed_bag_backward_impl<decltype(tag)>(dtable, ids, weights, dout); });
}

}  // namespace duo
