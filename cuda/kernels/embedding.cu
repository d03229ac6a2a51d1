// Input embeddings: gather by id, the soft lookup softmax(logits) @ table (DUO curriculum) and the weighted
// bag (efficient curriculum), with deterministic backwards.
//
// The scatter backwards (ids and bag) never add floats atomically. Entries e (= n for ids, n*k + j for a bag)
// are grouped by vocabulary row with a stable counting sort: integer atomics count the entries per row (an
// order-free result), a one-block scan turns counts into row starts, and a one-block pass places the entries
// chunk by chunk, each at its rank among equal ids, so every row's list is in increasing e. Then one thread
// per (row, column) adds its entries in that order: the same additions, in the same order, as the CPU
// backend, so the result is bitwise the CPU's and independent of the thread schedule.
#include "cuda_common.cuh"
#include "gemm.h"

namespace duo {
using namespace cuda;

namespace {

constexpr int kScanThreads = 256;

// slot = min over the e with ids[e] outside [0, V) of (e << 32 | the id's 32 bits): the first bad position and its
// id (the slot starts at all ones: none).                                                              ids: (E)
__global__ void find_bad_id_kernel(const int32_t* ids, int64_t E, int64_t V, unsigned long long* slot) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < E; e += int64_t(gridDim.x) * blockDim.x)
    if (ids[e] < 0 || ids[e] >= V)
      atomicMin(slot, (static_cast<unsigned long long>(e) << 32) | static_cast<uint32_t>(ids[e]));
}

// out[n, :] = table[ids[n], :]                           out: (N, D), table: (V, D); grid (N, column blocks)
__global__ void embed_ids_kernel(float* out, const int32_t* ids, const float* table, int64_t V, int D) {
  const int64_t n = blockIdx.x;
  const int d = int(blockIdx.y * blockDim.x + threadIdx.x);
  if (d < D) out[n * D + d] = table[int64_t(valid_id(ids[n], V)) * D + d];
}

// out[n, :] = sum_j weights[n, j] table[ids[n, j], :], j in order       ids, weights: (N, K); grid as above
__global__ void embed_bag_kernel(float* out, const int32_t* ids, const float* weights, const float* table, int64_t V,
                                 int K, int D) {
  const int64_t n = blockIdx.x;
  const int d = int(blockIdx.y * blockDim.x + threadIdx.x);
  if (d >= D) return;
  // Product rounded, then the add (no fused multiply-add): the CPU op's arithmetic, so the result is bitwise the
  // CPU's on a GPU too (nvcc would otherwise contract acc + w·t into one FMA).
  float acc = 0.0f;
  for (int j = 0; j < K; ++j)
    acc = __fadd_rn(acc, __fmul_rn(weights[n * K + j], table[int64_t(valid_id(ids[n * K + j], V)) * D + d]));
  out[n * D + d] = acc;
}

// p16[n, :] = bf16(softmax(logits[n, :])), one block per row                                    (N, V)
__global__ void softmax_rows_kernel(__nv_bfloat16* p16, const float* logits, int V) {
  DUO_SHARED(float, scratch, 32);
  const float* x = logits + int64_t(blockIdx.x) * V;
  __nv_bfloat16* q = p16 + int64_t(blockIdx.x) * V;
  float m = -INFINITY;
  for (int j = int(threadIdx.x); j < V; j += int(blockDim.x)) m = fmaxf(m, x[j]);
  m = block_max(m, scratch);
  float s = 0.0f;
  for (int j = int(threadIdx.x); j < V; j += int(blockDim.x)) s += expf(x[j] - m);
  s = block_sum(s, scratch);
  for (int j = int(threadIdx.x); j < V; j += int(blockDim.x)) q[j] = __float2bfloat16_rn(expf(x[j] - m) / s);
}

// ---- the stable counting sort of entries by id (see the top of the file) ----------------------------------
__global__ void count_ids_kernel(int* counts, const int32_t* ids, int64_t E, int64_t V) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < E; e += int64_t(gridDim.x) * blockDim.x)
    atomicAdd(&counts[valid_id(ids[e], V)], 1);
}

// start[v] = sum_{u < v} counts[u] for v ≤ V; cursor = start[0..V). One block: each thread scans a contiguous
// slice of the rows, thread 0 scans the slice totals.
__global__ void __launch_bounds__(kScanThreads) scan_counts_kernel(int* start, int* cursor, const int* counts, int V) {
  DUO_SHARED(int, slice_base, kScanThreads);
  const int t = int(threadIdx.x), per = (V + kScanThreads - 1) / kScanThreads;
  const int v0 = min(V, t * per), v1 = min(V, v0 + per);
  int total = 0;
  for (int v = v0; v < v1; ++v) total += counts[v];
  slice_base[t] = total;
  __syncthreads();
  if (t == 0) {
    int run = 0;
    for (int u = 0; u < kScanThreads; ++u) {
      const int c = slice_base[u];
      slice_base[u] = run;
      run += c;
    }
    start[V] = run;
  }
  __syncthreads();
  int run = slice_base[t];
  for (int v = v0; v < v1; ++v) {
    start[v] = cursor[v] = run;
    run += counts[v];
  }
}

// pos[cursor[id] + rank] = e for chunks of kScanThreads entries in order, rank = number of equal ids earlier
// in the chunk; the last of each id in the chunk then advances cursor[id]. One block.
__global__ void __launch_bounds__(kScanThreads)
    place_stable_kernel(int* pos, int* cursor, const int32_t* ids, int64_t E, int64_t V) {
  DUO_SHARED(int, chunk, kScanThreads);
  const int t = int(threadIdx.x);
  for (int64_t base = 0; base < E; base += kScanThreads) {
    const int64_t e = base + t;
    const int id = e < E ? valid_id(ids[e], V) : -1;
    chunk[t] = id;
    __syncthreads();
    int rank = 0, at = 0;
    bool last = true;
    if (id >= 0) {
      for (int u = 0; u < kScanThreads; ++u)
        if (chunk[u] == id) {
          if (u < t) ++rank;
          if (u > t) last = false;
        }
      at = cursor[id] + rank;
      pos[at] = int(e);
    }
    __syncthreads();  // every thread has read cursor before any is advanced
    if (id >= 0 && last) cursor[id] = at + 1;
    __syncthreads();
  }
}

// dtable[v, d] += sum over the entries e of row v, in order, of w[e] dout[e / K, d] (w = 1 when null).
// grid (V, column blocks)                                 dtable: (V, D), dout: (N, D), pos: (E), start: (V + 1)
__global__ void scatter_rows_kernel(float* dtable, const int* start, const int* pos, const float* w,
                                    const float* dout, int K, int D) {
  const int64_t v = blockIdx.x;
  const int d = int(blockIdx.y * blockDim.x + threadIdx.x);
  const int p0 = start[v], p1 = start[v + 1];
  if (d >= D || p0 == p1) return;
  float acc = dtable[v * D + d];
  for (int p = p0; p < p1; ++p) {
    const int e = pos[p];
    const float g = dout[int64_t(e / K) * D + d];
    acc = __fadd_rn(acc, w ? __fmul_rn(w[e], g) : g);  // no FMA: the CPU's roundings (see embed_bag_kernel)
  }
  dtable[v * D + d] = acc;
}

dim3 row_grid(int64_t rows, int64_t D) { return dim3(unsigned(rows), blocks_for(D)); }

}  // namespace

void CudaOps::check_ids(const char* op, const Tensor& ids, int64_t V) {
  check_dtype(op, "ids", ids, DType::I32);
  const int64_t E = ids.numel();
  if (E == 0) return;
  DUO_CHECK(E <= (int64_t(1) << 32), str("CudaOps::", op), str(E, " ids in one call"),
            "at most 2^32 ids a call (a position is recorded in 32 bits)");
  if (id_checks_.size() == kIdSlots) check_id_errors();  // every slot in use: read them now
  id_checks_.push_back({op, V});
  DUO_LAUNCH(find_bad_id_kernel, blocks_for(E), kThreads, 0, as_stream(stream_))(
      iptr(ids), E, V, static_cast<unsigned long long*>(id_slots_) + id_checks_.size() - 1);
  DUO_CU_LAUNCHED(op);
}

void CudaOps::check_id_errors() {
  if (!id_checks_.empty()) wait_for_stream("check_ids");  // the wait reads the slots and reports
}

void CudaOps::queue_id_readback() {
  const size_t n = id_checks_.size();
  if (n == 0) return;
  id_found_.resize(n);
  cudaStream_t s = as_stream(stream_);
  DUO_CU("check_ids", cudaMemcpyAsync(id_found_.data(), id_slots_, n * sizeof(id_found_[0]), cudaMemcpyDeviceToHost, s));
  static const std::vector<unsigned long long> unused(kIdSlots, ~0ull);  // constant: safe to copy from later
  DUO_CU("check_ids", cudaMemcpyAsync(id_slots_, unused.data(), n * sizeof(id_found_[0]), cudaMemcpyHostToDevice, s));
}

void CudaOps::report_id_readback() {
  const std::vector<IdCheck> checks = std::move(id_checks_);
  id_checks_.clear();
  for (size_t i = 0; i < checks.size(); ++i)
    if (id_found_[i] != ~0ull)
      fail(str("CudaOps::", checks[i].op),
           str("token id ", int32_t(uint32_t(id_found_[i] & 0xffffffffu)), " at position ", id_found_[i] >> 32,
               " is outside the vocabulary [0, ", checks[i].V, ")"),
           "check the tokenizer's vocabulary size against the model's");
}

void CudaOps::do_embed_ids(Tensor& out, const Tensor& ids, const Tensor& table) {
  const char* op = "embed_ids";
  check_f32(op, {&out, &table});
  check_on_device(op, ids);
  const auto [N, K, V, D] = checks::embed_ids(str("CudaOps::", op), out, "out", ids, table, "table");
  check_ids(op, ids, V);
  if (N && D)
    DUO_LAUNCH(embed_ids_kernel, row_grid(N, D), kThreads, 0, as_stream(stream_))(fptr(out), iptr(ids),
                                                                                  fptr(table), V, int(D));
  DUO_CU_LAUNCHED(op);
}

void CudaOps::do_embed_bag(Tensor& out, const Tensor& ids, const Tensor& weights, const Tensor& table) {
  const char* op = "embed_bag";
  check_f32(op, {&out, &weights, &table});
  check_on_device(op, ids);
  const auto [N, K, V, D] = checks::embed_bag(str("CudaOps::", op), out, "out", ids, weights, table, "table");
  check_ids(op, ids, V);
  if (N && D)
    DUO_LAUNCH(embed_bag_kernel, row_grid(N, D), kThreads, 0, as_stream(stream_))(
        fptr(out), iptr(ids), fptr(weights), fptr(table), V, int(K), int(D));
  DUO_CU_LAUNCHED(op);
}

// The workspace of scatter_backward: counts, start, cursor (3V + 1 ints) and the placed entries (E ints, so
// fewer than 2^31 of them).
static size_t scatter_workspace_bytes(const char* op, const Tensor& dtable, const Tensor& ids) {
  DUO_CHECK(ids.numel() < (int64_t(1) << 31), str("CudaOps::", op), "more than 2^31 ids", "");
  return size_t(3 * dtable.shape[0] + 1 + ids.numel()) * sizeof(int);
}

// The shared deterministic scatter of embed_ids_backward (K = 1, no weights) and embed_bag_backward.
// ws: scatter_workspace_bytes(op, dtable, ids) of device scratch.
static void scatter_backward(const char* op, void* ws, cudaStream_t s, Tensor& dtable, const Tensor& ids,
                             const float* weights, const Tensor& dout, int64_t K) {
  const int64_t V = dtable.shape[0], D = dtable.shape[1], E = ids.numel();
  if (E == 0 || D == 0) return;
  int* counts = static_cast<int*>(ws);  // (V)
  int* start = counts + V;              // (V + 1)
  int* cursor = start + V + 1;          // (V)
  int* pos = cursor + V;                // (E)
  DUO_CU(op, cudaMemsetAsync(counts, 0, size_t(V) * sizeof(int), s));
  DUO_LAUNCH(count_ids_kernel, blocks_for(E), kThreads, 0, s)(counts, iptr(ids), E, V);
  DUO_LAUNCH(scan_counts_kernel, 1, kScanThreads, 0, s)(start, cursor, counts, int(V));
  DUO_LAUNCH(place_stable_kernel, 1, kScanThreads, 0, s)(pos, cursor, iptr(ids), E, V);
  DUO_LAUNCH(scatter_rows_kernel, row_grid(V, D), kThreads, 0, s)(fptr(dtable), start, pos, weights, fptr(dout),
                                                                  int(K), int(D));
  DUO_CU_LAUNCHED(op);
}

void CudaOps::do_embed_ids_backward(Tensor& dtable, const Tensor& ids, const Tensor& dout) {
  const char* op = "embed_ids_backward";
  check_f32(op, {&dtable, &dout});
  check_on_device(op, ids);
  check_ids(op, ids, checks::embed_ids(str("CudaOps::", op), dout, "dout", ids, dtable, "dtable").V);
  scatter_backward(op, workspace(scatter_workspace_bytes(op, dtable, ids)), as_stream(stream_), dtable, ids, nullptr,
                   dout, 1);
}

void CudaOps::do_embed_bag_backward(Tensor& dtable, const Tensor& ids, const Tensor& weights, const Tensor& dout) {
  const char* op = "embed_bag_backward";
  check_f32(op, {&dtable, &weights, &dout});
  check_on_device(op, ids);
  const auto [N, K, V, D] = checks::embed_bag(str("CudaOps::", op), dout, "dout", ids, weights, dtable, "dtable");
  check_ids(op, ids, V);
  scatter_backward(op, workspace(scatter_workspace_bytes(op, dtable, ids)), as_stream(stream_), dtable, ids,
                   fptr(weights), dout, K);
}

// out = softmax(logits) @ table on the bf16 GEMM. The saved probabilities are the GEMM's bf16 operand, written by the
// softmax kernel into the first N·V·2 bytes of probs: one write of 2 bytes per entry, and no conversion in the
// forward or the backward.
void CudaOps::do_embed_soft(Tensor& out, Tensor& probs, const Tensor& logits, const Tensor& table) {
  const char* op = "embed_soft";
  check_f32(op, {&out, &probs, &logits, &table});
  const auto [N, K, V, D] = checks::embed_soft(str("CudaOps::", op), out, "out", logits, "logits", table, "table");
  check_matrix(op, "probs", probs, N, V);
  if (N == 0) return;
  auto* p16 = static_cast<__nv_bfloat16*>(probs.data);
  if (V > 0) {
    DUO_LAUNCH(softmax_rows_kernel, unsigned(N), kThreads, 0, as_stream(stream_))(p16, fptr(logits), int(V));
    DUO_CU_LAUNCHED(op);
  }
  soft_embedding_product(op, out, probs, table, N, V, D);
}

void CudaOps::soft_embedding_product(const char* op, Tensor& out, const Tensor& probs, const Tensor& table, int64_t N,
                                     int64_t V, int64_t D) {
  if (V == 0 || D == 0) {  // no probabilities, or no output columns: matmul's empty-sum rules
    matmul(op, fptr(out), fptr(probs), false, fptr(table), false, N, D, V, false, nullptr);
    return;
  }
  const size_t t_bytes = round_up(size_t(V * D) * 2);
  char* ws = static_cast<char*>(workspace(t_bytes + Gemm::kWorkspaceBytes));
  const void* t16 = bf16_weights(table, ws);  // the table's working copy, or rounded into the workspace
  DUO_CU_LAUNCHED(op);
  gemm_bf16(op, fptr(out), probs.data, false, t16, false, N, D, V, false, nullptr, nullptr, ws + t_bytes);  // (N, V) (V, D)
}

// dtable (V, D) += probs^T (V, N) @ dout (N, D) on the bf16 GEMM, probs in bf16 as embed_soft saved them.
void CudaOps::do_embed_soft_backward(Tensor& dtable, const Tensor& probs, const Tensor& dout) {
  const char* op = "embed_soft_backward";
  check_f32(op, {&dtable, &probs, &dout});
  const auto [N, K, V, D] = checks::embed_soft(str("CudaOps::", op), dout, "dout", probs, "probs", dtable, "dtable");
  if (N == 0 || V == 0 || D == 0) return;  // nothing to add
  const size_t d_bytes = round_up(size_t(N * D) * 2);
  char* ws = static_cast<char*>(workspace(d_bytes + Gemm::kWorkspaceBytes));
  to_bf16(ws, fptr(dout), N * D);
  DUO_CU_LAUNCHED(op);
  gemm_bf16(op, fptr(dtable), probs.data, true, ws, false, V, D, N, true, nullptr, nullptr, ws + d_bytes);
}

}  // namespace duo
