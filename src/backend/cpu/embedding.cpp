// Input embeddings: row gather by token id, the soft lookup softmax(logits) @ table of the DUO curriculum,
// and the weighted bag of the efficient curriculum. Backwards scatter into dtable deterministically: each
// thread owns a block of columns and visits the rows in order n = 0, 1, ...
#include <cmath>
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/cpu_ops.h"

namespace duo {
using namespace cpu;

constexpr int64_t kScatterCols = 64;  // columns of dtable per parallel task in the scatter backwards

static void check_ids(const char* op, const Tensor& ids, int64_t V) {
  check_dtype(op, "ids", ids, DType::I32);
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

void CpuOps::embed_ids(Tensor& out, const Tensor& ids, const Tensor& table) {
  const char* op = "embed_ids";
  check_same_dtype(op, {&out, &table});
  DUO_CHECK(table.ndim == 2 && table.is_contiguous(), "CpuOps::embed_ids", "table must be a contiguous (V, D)", "");
  check_numel(op, "ids", ids, ids.numel());
  check_ids(op, ids, table.shape[0]);
  check_matrix(op, "out", out, ids.numel(), table.shape[1]);
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

void CpuOps::embed_ids_backward(Tensor& dtable, const Tensor& ids, const Tensor& dout) {
  const char* op = "embed_ids_backward";
  check_same_dtype(op, {&dtable, &dout});
  DUO_CHECK(dtable.ndim == 2 && dtable.is_contiguous(), "CpuOps::embed_ids_backward",
            "dtable must be a contiguous (V, D)", "");
  check_numel(op, "ids", ids, ids.numel());
  check_ids(op, ids, dtable.shape[0]);
  check_matrix(op, "dout", dout, ids.numel(), dtable.shape[1]);
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

void CpuOps::embed_soft(Tensor& out, Tensor& probs, const Tensor& logits, const Tensor& table) {
  const char* op = "embed_soft";
  check_same_dtype(op, {&out, &probs, &logits, &table});
  DUO_CHECK(table.ndim == 2 && table.is_contiguous(), "CpuOps::embed_soft", "table must be a contiguous (V, D)", "");
  const int64_t V = table.shape[0], D = table.shape[1];
  check_present(op, "logits", logits);
  const int64_t N = rows_of(logits);
  check_matrix(op, "logits", logits, N, V);
  check_matrix(op, "probs", probs, N, V);
  check_matrix(op, "out", out, N, D);
  dispatch(op, table, [&](auto tag) { embed_soft_forward<decltype(tag)>(out, probs, logits, table); });
}

void CpuOps::embed_soft_backward(Tensor& dtable, const Tensor& probs, const Tensor& dout) {
  const char* op = "embed_soft_backward";
  check_same_dtype(op, {&dtable, &probs, &dout});
  DUO_CHECK(dtable.ndim == 2 && dtable.is_contiguous(), "CpuOps::embed_soft_backward",
            "dtable must be a contiguous (V, D)", "");
  const int64_t V = dtable.shape[0], D = dtable.shape[1];
  check_present(op, "probs", probs);
  const int64_t N = rows_of(probs);
  check_matrix(op, "probs", probs, N, V);
  check_matrix(op, "dout", dout, N, D);
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

static void check_bag(const char* op, const Tensor& ids, const Tensor& weights, const Tensor& table_or_grad,
                      const Tensor& rows, const char* rows_name) {
  DUO_CHECK(table_or_grad.ndim == 2 && table_or_grad.is_contiguous(), str("CpuOps::", op),
            "table must be a contiguous (V, D)", "");
  check_present(op, "ids", ids);
  const int64_t K = ids.dim(-1), N = rows_of(ids);
  check_matrix(op, "ids", ids, N, K);
  check_matrix(op, "weights", weights, N, K);
  check_ids(op, ids, table_or_grad.shape[0]);
  check_matrix(op, rows_name, rows, N, table_or_grad.shape[1]);
}

void CpuOps::embed_bag(Tensor& out, const Tensor& ids, const Tensor& weights, const Tensor& table) {
  const char* op = "embed_bag";
  check_same_dtype(op, {&out, &weights, &table});
  check_bag(op, ids, weights, table, out, "out");
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

void CpuOps::embed_bag_backward(Tensor& dtable, const Tensor& ids, const Tensor& weights, const Tensor& dout) {
  const char* op = "embed_bag_backward";
  check_same_dtype(op, {&dtable, &weights, &dout});
  check_bag(op, ids, weights, dtable, dout, "dout");
  dispatch(op, dtable, [&](auto tag) { embed_bag_backward_impl<decltype(tag)>(dtable, ids, weights, dout); });
}

}  // namespace duo
