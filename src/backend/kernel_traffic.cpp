// The CUDA backend's kernels per op (kernel_traffic.h). Each function below mirrors one CudaOps implementation in
// cuda/kernels/ (named in its comment): the launches in order, their footprints in bytes, their tensor-core FLOPs.
#include "backend/kernel_traffic.h"

#include <algorithm>
#include <cstdint>
#include <string>

namespace duo {

namespace {

constexpr double kF = 4, kI = 4, kD = 8, kH = 2;  // bytes of float, int32, double, bf16
constexpr double kMma = 2.0 * 16 * 8 * 16;         // FLOPs of one mma.m16n8k16
constexpr int64_t kColumnSumRows = 64;             // cuda_common.cuh
constexpr int64_t kSumChunk = 8192;                // optim.cu
constexpr int64_t kFlashTile = 64;                 // flash_attention.cu: key rows per tile, rows per backward block
constexpr int kFlashWarps = 4;
constexpr int kFlashRowTiles = 2;                  // the forward: 16-row tiles per warp (128 query rows per block)

bool has(const Tensor* t) { return t && !t->empty(); }
double numel(const Tensor* t) { return has(t) ? double(t->numel()) : 0.0; }
double bytes(const Tensor* t) { return has(t) ? double(t->numel()) * double(dtype_size(t->dtype)) : 0.0; }
int64_t last(const Tensor* t) { return has(t) ? t->dim(-1) : 0; }
int64_t rows(const Tensor* t) { return has(t) && last(t) > 0 ? t->numel() / last(t) : 0; }
bool aligned16(const Tensor* t) { return !has(t) || reinterpret_cast<uintptr_t>(t->data) % 16 == 0; }
// A kernel template's launch by the element type of t (fp32 or the bf16 activation dtype), as cuda_common.cuh's
// named<T>() spells it: "kernel<float>" or "kernel<__nv_bfloat16>".
std::string typed(const char* kernel, const Tensor* t) {
  return std::string(kernel) + (t->dtype == DType::BF16 ? "<__nv_bfloat16>" : "<float>");
}
int64_t chunks_of(int64_t n, int64_t per) { return (n + per - 1) / per; }
size_t round256(double b) { return (size_t(b) + 255) / 256 * 256; }

class Plan {
 public:
  OpTraffic r;
  WeightCopy weights = WeightCopy::None;  // the call's weight matrix: rounded into the workspace only when None
  int arithmetic = -1;  // the launch that does the op's CUDA-core arithmetic, when it is not the biggest one
  void k(const std::string& kernel, double read, double written, double tensor_flops = 0, double fragments = 0) {
    r.kernels.push_back({kernel, read, written, tensor_flops, 0, fragments});
  }
  void ws(size_t b) { r.workspace = std::max(r.workspace, b); }

  // CudaOps::check_ids (embedding.cu): the first bad position into the call's slot, read at the next
  // synchronisation (not in the op).
  void check_ids(double E) {
    if (E > 0) k("find_bad_id_kernel", kI * E, 0);
  }

  // CudaOps::matmul (linear.cu): C (M, N) = A (M, K) B (K, N) [+ C] [+ bias], both inputs rounded to bf16 first.
  // Returns false where it does (the GELU epilogue with K = 0: the caller runs the GEMM and GELU separately).
  bool matmul(int64_t M, int64_t N, int64_t K, bool accumulate, const Tensor* bias, bool gelu) {
    const double m = double(M), n = double(N), kk = double(K);
    if (M == 0 || N == 0) return true;
    const bool has_bias = has(bias);
    if (K == 0) {
      if (gelu) return false;
      if (!accumulate) k("cudaMemset", 0, kF * m * n);
      if (has_bias) k("add_bias_kernel", kF * m * n + kF * n, kF * m * n);
      return true;
    }
    ws(round256(kH * m * kk) + round256(kH * kk * n) + kCublasLtWorkspaceBytes);
    to_bf16(m * kk);
    to_bf16(kk * n);
    gemm_bf16(M, N, K, accumulate, has(bias), aligned16(bias), gelu);
    return true;
  }
  // CudaOps::soft_embedding_product (embedding.cu): out (N, D) = the bf16 probabilities (N, V) @ table (V, D).
  void soft_embedding_product(int64_t N, int64_t V, int64_t D) {
    if (V == 0 || D == 0) {
      matmul(N, D, V, false, nullptr, false);
      return;
    }
    ws(round256(kH * double(V * D)) + kCublasLtWorkspaceBytes);
    if (weights == WeightCopy::None) to_bf16(double(V * D));
    gemm_bf16(N, D, V, false);
  }
  // CudaOps::gemm_bf16 (linear.cu): the same on operands already in bf16, a bias (N) in the epilogue when it is
  // 16-byte aligned, else a separate pass; lda, ldc: padded rows of A (stored (M, K), or (K, M) when ta) and C (0:
  // packed), whose footprint is the rows' full stride.
  // c_bf16: C (and the bias and GELU aux) in bf16.
  void gemm_bf16(int64_t M, int64_t N, int64_t K, bool accumulate, bool has_bias = false, bool bias_aligned = false,
                 bool gelu = false, bool ta = false, int64_t lda = 0, int64_t ldc = 0, bool c_bf16 = false) {
    const double m = double(M), n = double(N), kk = double(K), kc = c_bf16 ? kH : kF;
    const double a = lda ? double(ta ? K : M) * double(lda) : m * kk, c = ldc ? m * double(ldc) : m * n;
    const bool fused = has_bias && bias_aligned;
    k("gemm", kH * (a + kk * n) + (accumulate ? kc * c : 0) + (fused ? kc * n : 0), kc * c * (gelu ? 2 : 1),
      2 * m * n * kk);
    if (has_bias && !fused) k("add_bias_kernel", kF * m * n + kF * n, kF * m * n);
  }
  // CudaOps::linear_gemm (linear.cu): out (N, O) = in (N, I) W^T + bias [GELU epilogue], in and out F32 or BF16: in
  // rounded unless bf16, W rounded, a bf16 output's bias rounded into an aligned slot. False where it returns false.
  bool linear_gemm(const Tensor* in, const Tensor* out, int64_t O, const Tensor* bias, bool gelu) {
    const int64_t N = rows(in), I = last(in);
    const bool in16 = in->dtype == DType::BF16, out16 = out->dtype == DType::BF16;
    if (N == 0 || O == 0 || I == 0) return true;
    const size_t b_slot = out16 && has(bias) ? round256(kH * double(O)) : 0;
    ws((in16 ? 0 : round256(kH * double(N * I))) + round256(kH * double(O * I)) + b_slot + kCublasLtWorkspaceBytes);
    if (!in16) to_bf16(double(N * I));
    if (weights == WeightCopy::None) to_bf16(double(O * I));
    if (b_slot) to_bf16(double(O));
    gemm_bf16(N, O, I, false, has(bias), out16 || aligned16(bias), gelu, false, 0, 0, out16);
    return true;
  }
  void to_bf16(double n) {
    if (n > 0) k("to_bf16_kernel", kF * n, kH * n);
  }

  // CudaOps::linear_backward_gemms (linear.cu): dout rounded to bf16 once for both GEMMs (unless bf16 already, as
  // in: the activation dtype), din's GEMM writing bf16 when din is, with the DGELU epilogue reading dgelu_pre when
  // given (returns whether it did), dW's, the bias' column sums.
  bool linear_backward(const Tensor* din, const Tensor* dW, const Tensor* dbias, const Tensor* dout,
                       const Tensor* in, const Tensor* W, bool accumulate, const Tensor* dgelu_pre) {
    const int64_t N = rows(dout), O = last(dout), I = last(W);
    const bool has_din = has(din), has_dW = has(dW), din16 = has_din && din->dtype == DType::BF16;
    bool dgelu = false;
    if (N > 0 && O > 0 && I > 0 && (has_din || has_dW)) {
      const bool in16 = in->dtype == DType::BF16, dout16 = dout->dtype == DType::BF16;
      ws((dout16 ? 0 : round256(kH * double(N * O))) + (has_din ? round256(kH * double(O * I)) : 0) +
         (has_dW && !in16 ? round256(kH * double(N * I)) : 0) + kCublasLtWorkspaceBytes);
      if (!dout16) to_bf16(double(N * O));
      if (has_din) {
        if (weights == WeightCopy::None) to_bf16(double(O * I));
        gemm_bf16(N, I, O, accumulate, false, false, false, false, 0, 0, din16);
        if (dgelu_pre) {  // the epilogue reads the aux (under the emulator it is always available)
          r.kernels.back().read += bytes(dgelu_pre);
          dgelu = true;
        }
      }
      if (has_dW) {
        if (!in16) to_bf16(double(N * I));
        gemm_bf16(O, I, N, true);
      }
    } else {
      if (din16) {
        if (N * I > 0) k("cudaMemset", 0, kH * double(N * I));
      } else if (has_din) {
        matmul(N, I, O, accumulate, nullptr, false);
      }
      if (has_dW) matmul(O, I, N, true, nullptr, false);
    }
    if (has(dbias) && O) column_sums(N, O, dout->dtype == DType::BF16);
    return dgelu;
  }

  // sum_chunks (column_sums.cu): rows outputs of D columns from rows·chunks partial rows.
  void sum_chunks(int64_t R, int64_t chunks, int64_t D, bool accumulate) {
    if (R <= 0 || D <= 0) return;
    k("sum_chunks_kernel", kF * double(R * chunks * D) + (accumulate ? kF * double(R * D) : 0), kF * double(R * D));
  }
  // add_column_sums (column_sums.cu): dst (D) += column sums of x (N, D), fp32 or bf16, rows ld apart (0: D; the
  // footprint is the rows' full stride).
  void column_sums(int64_t N, int64_t D, bool bf16 = false, int64_t ld = 0) {
    if (N == 0 || D == 0) return;
    const int64_t c = chunks_of(N, kColumnSumRows);
    ws(size_t(c * D) * 4);
    k(bf16 ? "column_chunk_sums_bf16_kernel" : "column_chunk_sums_kernel",
      (bf16 ? kH : kF) * double(N * (ld ? ld : D)), kF * double(c * D));
    sum_chunks(1, c, D, true);
  }

  // scatter_backward (embedding.cu): dtable (V, D) += rows of dout (E / K rows) by E ids, through a counting sort.
  // Every id is taken as distinct (the footprint's upper bound).
  void scatter(int64_t V, int64_t D, int64_t E, int64_t K, bool weighted) {
    if (E == 0 || D == 0) return;
    const double v = double(V), e = double(E), distinct = double(std::min(E, V)), n = double(E / K);
    ws(size_t(3 * V + 1 + E) * 4);
    k("cudaMemset", 0, kI * v);
    k("count_ids_kernel", kI * e, kI * distinct);
    k("scan_counts_kernel", kI * v, kI * (2 * v + 1));
    k("place_stable_kernel", kI * e + kI * distinct, kI * e + kI * distinct);
    k("scatter_rows_kernel", kI * (v + 1) + kI * e + (weighted ? kF * e : 0) + kF * n * double(D) +
                                 kF * distinct * double(D),
      kF * distinct * double(D));
  }

  // flash_attention.cu: qkv (B, L, 3D) with H heads of hd; 4 warps, tiles of 64 key rows; the forward's blocks of
  // 128 query rows (32 per warp), the backward's of 64 (16 per warp).
  // act16: qkv and out in bf16 (no rounding pass for qkv; out written and read in bf16). rope: bytes of the rotary
  // table each kernel reads when it rotates q and k itself (0: qkv already rotated); kdq: bytes of a dqkv element.
  void flash_forward(int64_t B, int64_t L, int64_t H, int64_t hd, bool causal, bool act16, double rope = 0) {
    const double n = double(B * L * H * hd), bhl = double(B * H * L), ko = act16 ? kH : kF;
    ws(size_t(4 * n * kH + bhl * kF));
    if (!act16) k("to_bf16_kernel", kF * 3 * n, kH * 3 * n);
    // per warp row tile and key tile: S = Q Kᵀ (16 x 64 x hd) and O += P V (16 x hd x 64), hd/2 mma each. Fragments
    // per warp and key tile: K and V once for both row tiles (hd/4 ldmatrix.x4 each); the queries once per block.
    const double pairs = double(B * H) * forward_tile_pairs(L, causal);
    const double blocks = double(B * H) * double(chunks_of(L, kFlashRowTiles * kFlashTile));
    k("flash_forward", kH * 3 * n + rope, ko * n + kF * bhl, pairs * kFlashWarps * kFlashRowTiles * double(hd) * kMma,
      kFlashWarps * (pairs * 2 * x4_bytes(hd) + blocks * kFlashRowTiles * x4_bytes(hd) / 4));
  }
  // dout16: the incoming gradient in bf16 (read as it is: no bf16 copy of it written)
  void flash_backward(int64_t B, int64_t L, int64_t H, int64_t hd, bool causal, bool act16, bool dout16,
                      double rope = 0, double kdq = kF) {
    const double n = double(B * L * H * hd), bhl = double(B * H * L), pairs = double(B * H) * tile_pairs(L, causal);
    ws(size_t(4 * n * kH + bhl * kF));
    if (!act16) k("to_bf16_kernel", kF * 3 * n, kH * 3 * n);
    k("flash_delta", (dout16 ? kH : kF) * n + (act16 ? kH : kF) * n, (dout16 ? 0 : kH * n) + kF * bhl);
    // dK, dV: Sᵀ = K Qᵀ, dPᵀ = V dOᵀ, dV += Pᵀ dO, dK += dSᵀ Q (hd/2 mma and hd/4 ldmatrix.x4 each per warp and tile
    // pair), K and V resident (loaded once per block); dQ: S = Q Kᵀ, dP = dO Vᵀ, dQ += dS K, Q and dO resident
    const double blocks = double(B * H) * double(chunks_of(L, kFlashTile));
    k("flash_dkdv", kH * 4 * n + 2 * kF * bhl + rope, kdq * 2 * n, pairs * kFlashWarps * 2.0 * double(hd) * kMma,
      kFlashWarps * (pairs * 4 + blocks / 2) * x4_bytes(hd));
    k("flash_dq", kH * 4 * n + 2 * kF * bhl + rope, kdq * n, pairs * kFlashWarps * 1.5 * double(hd) * kMma,
      kFlashWarps * (pairs * 3 + blocks / 2) * x4_bytes(hd));
  }
  // Shared-memory bytes of one warp's B fragments for a product with a 64 × hd tile: hd/4 ldmatrix.x4 of 512 bytes
  // (a resident 16 × hd A operand: a quarter of that).
  static double x4_bytes(int64_t hd) { return double(hd) / 4 * 512; }
  // (128-query block, 64-key tile) pairs of the forward: a causal block stops at the tile holding its last query.
  static double forward_tile_pairs(int64_t L, bool causal) {
    const int64_t rows = kFlashRowTiles * kFlashTile, key_tiles = chunks_of(L, kFlashTile);
    double pairs = 0;
    for (int64_t q0 = 0; q0 < L; q0 += rows)
      pairs += double(causal ? chunks_of(std::min(L, q0 + rows), kFlashTile) : key_tiles);
    return pairs;
  }
  // (64-row block, 64-row tile) pairs of the backward's kernels.
  static double tile_pairs(int64_t L, bool causal) {
    const double t = double(chunks_of(L, kFlashTile));
    return causal ? t * (t + 1) / 2 : t * t;
  }
};

}  // namespace

OpTraffic cuda_op_traffic(const OpCall& c) {
  Plan p;
  const Tensor* o0 = c.n_out > 0 ? c.out[0] : nullptr;
  const Tensor* i0 = c.n_in > 0 ? c.in[0] : nullptr;
  auto in = [&](int i) { return i < c.n_in ? c.in[i] : nullptr; };
  auto out = [&](int i) { return i < c.n_out ? c.out[i] : nullptr; };
  // A stale working copy of the call's weight matrix is made first (Ops::prepare_weights), one rounding pass.
  p.weights = c.weights;
  if (c.weights == WeightCopy::Made && c.kind != OpKind::Adamw) {
    const bool w_second = c.kind == OpKind::LinearBackward || c.kind == OpKind::GeluLinearBackward;
    p.to_bf16(numel(in(w_second ? 2 : 1)));
  }
  switch (c.kind) {
    case OpKind::Fill:  // cuda_ops.cu
      if (numel(o0) > 0)
        p.k(o0->dtype == DType::F64 ? "fill_kernel<double>" : o0->dtype == DType::I32 ? "fill_kernel<int32_t>"
                                                                                       : "fill_kernel<float>",
            0, bytes(o0));
      break;
    case OpKind::Copy:  // cuda_ops.cu: one device-to-device copy
      if (bytes(o0) > 0) p.k("cudaMemcpy", bytes(i0), bytes(o0));
      break;
    case OpKind::EmbedIds: {  // embedding.cu; in: ids (N), table (V, D)
      const double N = numel(in(0)), D = double(last(in(1))), V = double(rows(in(1)));
      p.check_ids(N);
      if (N > 0 && D > 0) p.k("embed_ids_kernel", kI * N + kF * std::min(N, V) * D, kF * N * D);
      break;
    }
    case OpKind::EmbedIdsBackward:  // out: dtable (V, D); in: ids (N), dout (N, D)
      p.check_ids(numel(in(0)));
      p.scatter(rows(o0), last(o0), int64_t(numel(in(0))), 1, false);
      break;
    case OpKind::EmbedSoft: {  // out: out (N, D), probs (N, V: kept in bf16); in: logits (N, V), table (V, D)
      const int64_t N = rows(in(0)), V = last(in(0)), D = last(in(1));
      if (N == 0) break;
      if (V > 0) p.k("softmax_rows_kernel", kF * double(N * V), kH * double(N * V));
      p.soft_embedding_product(N, V, D);
      break;
    }
    case OpKind::EmbedRelaxed: {  // relaxation.cu; out: out (N, D), probs (N, V: bf16), z (N); in: x, scales, table
      const int64_t N = int64_t(numel(in(0))), V = rows(in(2)), D = last(in(2));
      p.check_ids(double(N));
      if (N == 0) break;
      p.arithmetic = int(p.r.kernels.size());  // the draws run here, not in the (bigger) GEMM
      p.k("relaxed_softmax_kernel", bytes(in(0)) + bytes(in(1)), kH * double(N * V) + bytes(out(2)));
      p.soft_embedding_product(N, V, D);
      break;
    }
    case OpKind::EmbedSoftBackward: {  // out: dtable (V, D); in: probs (N, V, in bf16), dout (N, D)
      const int64_t N = rows(in(0)), V = last(in(0)), D = last(in(1));
      if (N == 0 || V == 0 || D == 0) break;
      p.ws(round256(kH * double(N * D)) + kCublasLtWorkspaceBytes);
      p.to_bf16(double(N * D));
      p.gemm_bf16(V, D, N, true);
      break;
    }
    case OpKind::EmbedBag: {  // out (N, D); in: ids (N, k), weights (N, k), table (V, D)
      const double E = numel(in(0)), N = double(rows(o0)), D = double(last(o0)), V = double(rows(in(2)));
      p.check_ids(E);
      if (N > 0 && D > 0) p.k("embed_bag_kernel", (kI + kF) * E + kF * std::min(E, V) * D, kF * N * D);
      break;
    }
    case OpKind::EmbedBagBackward: {  // out: dtable (V, D); in: ids (N, k), weights (N, k), dout (N, D)
      const int64_t E = int64_t(numel(in(0))), N = rows(in(2));
      p.check_ids(double(E));
      p.scatter(rows(o0), last(o0), E, N > 0 ? E / N : 1, true);
      break;
    }
    case OpKind::TimestepEmbedding: {  // timestep.cu; out (B, F), in: sigma (B)
      const double B = double(rows(o0)), half = double(last(o0) / 2);
      if (B * half > 0) p.k("timestep_kernel", kF * B, kF * B * 2 * half);
      break;
    }
    case OpKind::Linear:  // linear.cu; out (N, O); in: in (N, I), W (O, I), bias
      p.linear_gemm(i0, o0, last(o0), in(2), false);
      break;
    case OpKind::LinearGelu: {  // out: out, pre (N, O); in: in (N, I), W (O, I), bias
      const int64_t N = rows(i0), O = last(o0);
      const bool epilogue = O % 8 == 0 && aligned16(out(1)) && aligned16(o0) && aligned16(in(2));
      if (!epilogue || !p.linear_gemm(i0, o0, O, in(2), true)) {
        p.linear_gemm(i0, out(1), O, in(2), false);
        if (N * O > 0)
          p.k(o0->dtype == DType::BF16 ? "map_forward_bf16_kernel<Gelu>" : "map_forward_kernel<Gelu>", bytes(out(1)),
              bytes(o0));
      }
      break;
    }
    case OpKind::LinearBackward:  // out: din (N, I), dW (O, I), dbias (O); in: dout (N, O), in (N, I), W (O, I)
      // and din again when it accumulates (Ops::linear_backward lists it as read then)
      p.linear_backward(out(0), out(1), out(2), i0, in(1), in(2), c.n_in == 4, nullptr);
      break;
    case OpKind::GeluLinearBackward: {  // out: dpre (N, I), dW, dbias; in: dout (N, O), in (N, I), W (O, I), pre
      const Tensor *dpre = o0, *pre = in(3);
      const bool epilogue = last(in(2)) % 8 == 0 && aligned16(dpre) && aligned16(pre);
      if (!p.linear_backward(dpre, out(1), out(2), i0, in(1), in(2), false, epilogue ? pre : nullptr) &&
          numel(dpre) > 0)  // GELU's derivative on dpre in place (dout and din one buffer: read once)
        p.k(pre->dtype == DType::BF16 ? "map_backward_bf16_kernel<Gelu>" : "map_backward_kernel<Gelu>",
            bytes(dpre) + bytes(pre), bytes(dpre));
      break;
    }
    case OpKind::Silu: case OpKind::Gelu:  // activation.cu
      if (numel(o0) > 0)
        p.k(c.kind == OpKind::Silu            ? "map_forward_kernel<Silu>"
            : i0->dtype == DType::BF16        ? "map_forward_bf16_kernel<Gelu>"
                                              : "map_forward_kernel<Gelu>",
            bytes(i0), bytes(o0));
      break;
    case OpKind::SiluBackward: case OpKind::GeluBackward:  // in: dout, in (the activation's input)
      if (numel(o0) > 0)
        p.k(c.kind == OpKind::SiluBackward    ? "map_backward_kernel<Silu>"
            : in(1)->dtype == DType::BF16     ? "map_backward_bf16_kernel<Gelu>"
                                              : "map_backward_kernel<Gelu>",
            bytes(in(0)) + bytes(in(1)), bytes(o0));
      break;
    case OpKind::LayernormModulate: {  // layernorm.cu; out: out, mean, rstd; in: x (N, D), weight, shift, scale
      const double N = double(rows(i0)), D = double(last(i0));
      if (N == 0) break;
      p.k(typed("layernorm_forward_kernel", o0), kF * N * D + bytes(in(1)) + bytes(in(2)) + bytes(in(3)),
          bytes(o0) + 2 * kF * N);
      break;
    }
    case OpKind::LayernormModulateBackward: {
      // out: dx, dweight, dshift, dscale; in: dout, x (N, D), mean, rstd, weight, shift, scale
      const Tensor *dx = out(0), *dweight = out(1), *dshift = out(2), *dscale = out(3), *x = in(1), *shift = in(5),
                   *scale = in(6);
      const int64_t N = rows(x), D = last(x), B = has(shift) ? rows(shift) : 1, L = B > 0 ? N / B : 0;
      const double nd = kF * double(N * D), stats = 2 * kF * double(N), w = kF * double(D);
      const double g = bytes(i0);  // dout: fp32, or the activation dtype
      if (N == 0 || D == 0) break;
      const bool dmod = has(dshift) || has(dscale);
      if (L % kColumnSumRows == 0 || B == 1) {  // one pass: dout and x read once for dx and the three partials
        if (!has(dx) && !dmod && !has(dweight)) break;
        const int64_t ch = chunks_of(L, kColumnSumRows), parts = B * ch;
        const double part = kF * double(parts * D);
        p.ws(size_t(((dmod ? 2 : 0) + (has(dweight) ? 1 : 0)) * part));
        p.k(typed("layernorm_backward_kernel", i0),
            g + nd + stats + w + (has(shift) ? bytes(scale) : 0) + (has(dx) ? nd : 0),
            (has(dx) ? nd : 0) + (dmod ? 2 * part : 0) + (has(dweight) ? part : 0));
        if (has(dshift)) p.sum_chunks(B, ch, D, false);
        if (has(dscale)) p.sum_chunks(B, ch, D, false);
        if (has(dweight)) p.sum_chunks(1, parts, D, true);
        break;
      }
      if (has(dx)) p.k(typed("layernorm_dx_kernel", i0), g + 2 * nd + stats + w + (has(shift) ? bytes(scale) : 0), nd);
      if (dmod) {
        const int64_t ch = chunks_of(L, kColumnSumRows);
        p.ws(size_t(2 * B * ch * D) * 4);
        p.k(typed("layernorm_dmod_partial_kernel", i0), g + nd + stats + w, 2 * kF * double(B * ch * D));
        if (has(dshift)) p.sum_chunks(B, ch, D, false);
        if (has(dscale)) p.sum_chunks(B, ch, D, false);
      }
      if (has(dweight)) {
        const int64_t ch = chunks_of(N, kColumnSumRows);
        p.ws(size_t(ch * D) * 4);
        p.k(typed("layernorm_dweight_partial_kernel", i0), g + nd + stats + (has(shift) ? bytes(scale) : 0),
            kF * double(ch * D));
        p.sum_chunks(1, ch, D, true);
      }
      break;
    }
    case OpKind::Rotary: case OpKind::RotaryBackward: {  // rotary.cu: the (L, hd/2) cos/sin table, the rotation
      const int64_t L = has(i0) && i0->ndim >= 2 ? i0->dim(-2) : 0, hd = c.n_heads > 0 ? last(i0) / 3 / c.n_heads : 0;
      const double table = double(L * (hd / 2)) * 2 * kF;
      if (numel(o0) == 0) break;
      p.ws(size_t(table));
      p.k("rotary_table_kernel", 0, table);
      p.k(i0->dtype == DType::BF16   ? "rotary_bf16_kernel"
          : o0->dtype == DType::BF16 ? "rotary_to_bf16_kernel"
                                     : "rotary_kernel",
          bytes(i0) + table, bytes(o0));
      break;
    }
    case OpKind::Attention: case OpKind::AttentionBackward: {  // attention.cu, flash_attention.cu
      const bool fwd = c.kind == OpKind::Attention;
      const Tensor* qkv = fwd ? in(0) : in(1);
      const int64_t L = has(qkv) && qkv->ndim >= 2 ? qkv->dim(-2) : 0, B = L > 0 ? rows(qkv) / L : 0,
                    D = last(qkv) / 3, H = c.n_heads, hd = H > 0 ? D / H : 0;
      if (B * L == 0) break;
      bool flash = hd == 32 || hd == 64;
      for (int i = 0; i < c.n_out; ++i) flash = flash && aligned16(out(i));
      for (int i = 0; i < c.n_in; ++i) flash = flash && aligned16(in(i));
      const double n = double(B * L * D), bhl = double(B * H * L);
      // qkv and out in the activation dtype: read and written as they are (flash), widened and rounded (naive)
      const bool act16 = qkv->dtype == DType::BF16;
      if (flash && fwd) {
        p.flash_forward(B, L, H, hd, c.causal, act16);
      } else if (flash) {
        p.flash_backward(B, L, H, hd, c.causal, act16, in(0)->dtype == DType::BF16);
      } else if (fwd) {  // the naive fp32 kernels: one block per (query row, batch·head)
        if (act16) {
          p.ws(round256(kF * 3 * n) + size_t(kF * n));
          p.k("bf16_to_f32_kernel", kH * 3 * n, kF * 3 * n);
        }
        p.k("attention_forward_kernel", kF * 3 * n, kF * n + kF * bhl);
        if (act16) p.to_bf16(n);
      } else {
        const bool dout16 = in(0)->dtype == DType::BF16;
        p.ws(round256(bhl * kF) + (act16 ? round256(kF * 3 * n) + round256(kF * n) : 0) + (dout16 ? size_t(kF * n) : 0));
        if (act16) {
          p.k("bf16_to_f32_kernel", kH * 3 * n, kF * 3 * n);
          p.k("bf16_to_f32_kernel", kH * n, kF * n);
        }
        if (dout16) p.k("bf16_to_f32_kernel", kH * n, kF * n);
        p.k("attention_delta_kernel", 2 * kF * n, kF * bhl);
        p.k("attention_dq_kernel", kF * 4 * n + 2 * kF * bhl, kF * n);
        p.k("attention_dkv_kernel", kF * 4 * n + 2 * kF * bhl, 2 * kF * n);
      }
      break;
    }
    case OpKind::RotaryAttention: case OpKind::RotaryAttentionBackward: {  // attention.cu: rotary in the flash kernels
      const bool fwd = c.kind == OpKind::RotaryAttention;
      const Tensor* qkv = fwd ? in(0) : in(1);
      const int64_t L = has(qkv) && qkv->ndim >= 2 ? qkv->dim(-2) : 0, B = L > 0 ? rows(qkv) / L : 0,
                    D = last(qkv) / 3, H = c.n_heads, hd = H > 0 ? D / H : 0;
      bool flash = (hd == 32 || hd == 64) && has(qkv) && qkv->dtype == DType::BF16;  // fused on a bf16 qkv only
      for (int i = 0; i < c.n_out; ++i) flash = flash && aligned16(out(i));
      for (int i = 0; i < c.n_in; ++i) flash = flash && aligned16(in(i));
      if (!flash) {  // the default: the rotary op, the attention, (the rotary backward) through the scratch, whose
        // dtypes are qkv's (rotated) and fp32 (its gradient)
        const Tensor rotated(qkv->data, qkv->dtype, {B, L, 3 * D}, qkv->device), drot(qkv->data, DType::F32,
                                                                                       {B, L, 3 * D}, qkv->device);
        auto add = [&](OpCall sub) {
          sub.n_heads = c.n_heads;
          sub.causal = c.causal;
          const OpTraffic t = cuda_op_traffic(sub);
          p.r.kernels.insert(p.r.kernels.end(), t.kernels.begin(), t.kernels.end());
          p.ws(t.workspace);
        };
        add(make_call(OpKind::Rotary, {&rotated}, {qkv}));
        if (fwd) {
          add(make_call(OpKind::Attention, {out(0), out(1)}, {&rotated}));
        } else {
          add(make_call(OpKind::AttentionBackward, {&drot}, {in(0), &rotated, in(2), in(3)}));
          add(make_call(OpKind::RotaryBackward, {o0}, {&drot}));
        }
        break;
      }
      if (B * L == 0) break;
      const double table = double(L * (hd / 2)) * 2 * kF, n = double(B * L * D), bhl = double(B * H * L);
      p.ws(round256(4 * n * kH + bhl * kF) + size_t(table));
      p.k("rotary_table_kernel", 0, table);
      if (fwd) p.flash_forward(B, L, H, hd, c.causal, true, table);
      else p.flash_backward(B, L, H, hd, c.causal, true, in(0)->dtype == DType::BF16, table,
                            double(dtype_size(o0->dtype)));
      break;
    }
    case OpKind::GatedResidual: {  // residual.cu; in place: out h, in branch, gate; out of place: in h, branch, gate
      const bool in_place = c.n_in == 2;
      const Tensor *branch = in_place ? in(0) : in(1), *gate = in_place ? in(1) : in(2);
      if (numel(o0) == 0) break;
      p.k(typed("gated_residual_kernel", branch), bytes(o0) + bytes(branch) + bytes(gate),
          bytes(o0));  // reads h (or out) and branch
      break;
    }
    case OpKind::GatedResidualLayernorm: {  // residual.cu; out: out, ln, mean, rstd; in: h, branch, gate, weight,
      // shift, scale: one warp per row up to 1024 features, else gated_residual_kernel and layernorm_forward_kernel
      const Tensor *ln = out(1), *branch = in(1);
      const double N = double(rows(o0)), D = double(last(o0));
      if (N * D == 0) break;
      const double params = bytes(in(2)) + bytes(in(3)) + bytes(in(4)) + bytes(in(5));
      if (last(o0) <= 1024) {
        p.k(typed("gated_residual_layernorm_kernel", ln), bytes(i0) + bytes(branch) + params,
            bytes(o0) + bytes(ln) + 2 * kF * N);
      } else {
        p.k(typed("gated_residual_kernel", branch), bytes(i0) + bytes(branch) + bytes(in(2)), bytes(o0));
        p.k(typed("layernorm_forward_kernel", ln), kF * N * D + bytes(in(3)) + bytes(in(4)) + bytes(in(5)),
            bytes(ln) + 2 * kF * N);
      }
      break;
    }
    case OpKind::GatedResidualBackward: {  // out: dbranch, dgate (B, D); in: dh (B·L, D), branch, gate
      const Tensor *dbranch = out(0), *dgate = out(1), *gate = in(2);
      const double n = numel(i0);
      const int64_t D = last(i0), B = has(dgate) ? rows(dgate) : has(gate) ? rows(gate) : 1,
                    L = B * D > 0 ? int64_t(n) / (B * D) : 0;
      if (n == 0) break;
      if (has(dgate)) {  // dbranch (when wanted) and dgate's chunk sums in one pass, then the chunks' sums
        const int64_t ch = chunks_of(L, kColumnSumRows);
        p.ws(size_t(B * ch * D) * 4);
        p.k("gated_residual_backward_kernel", kF * n + bytes(in(1)) + bytes(gate),
            bytes(dbranch) + kF * double(B * ch * D));
        p.sum_chunks(B, ch, D, false);
      } else if (has(dbranch)) {
        p.k(typed("gated_residual_dbranch_kernel", dbranch), kF * n + bytes(gate), bytes(dbranch));
      }
      break;
    }
    case OpKind::LogSoftmax:  // softmax.cu
      if (numel(o0) > 0) p.k("log_softmax_kernel", bytes(i0), bytes(o0));
      break;
    case OpKind::LogSoftmaxBackward:
      if (numel(o0) > 0) p.k("log_softmax_backward_kernel", bytes(in(0)) + bytes(in(1)), bytes(o0));
      break;
    case OpKind::CrossEntropy: {  // out: losses (N), dlogits; in: logits (N, V), targets (N)
      const double N = double(rows(i0));
      p.check_ids(numel(in(1)));
      if (N > 0) p.k("cross_entropy_kernel", bytes(i0) + bytes(in(1)), bytes(o0) + bytes(out(1)));
      break;
    }
    case OpKind::LossHead: {  // loss_head.cu; out: losses, dlogits; in: logits, x, z, alpha, dalpha, weight
      p.check_ids(numel(in(1)));
      p.check_ids(numel(in(2)));
      if (rows(i0) == 0) break;
      double r = 0;
      for (int i = 0; i < c.n_in; ++i) r += bytes(in(i));
      p.k("loss_head_kernel", r, bytes(o0) + bytes(out(1)));  // dlogits written once, scaled
      break;
    }
    case OpKind::LinearLossHead: {  // loss_head.cu; out: losses, dy, dW, dbias; in: y (N, D), W (V, D), bias, x, z,
      // alpha, dalpha, weight (and dW, dbias again with the backward): chunks of c.chunk_rows rows, the logits and
      // the bf16 gradient in rows of ld (V padded to a multiple of 64)
      p.check_ids(numel(in(3)));
      p.check_ids(numel(in(4)));
      const int64_t N = rows(i0), D = last(i0), V = rows(in(1)), C = std::min(N, c.chunk_rows), ld = cuda_vocab_ld(V);
      if (N == 0) break;
      const bool backward = has(out(1)), bias = has(in(2)), dbias = has(out(3)), copy_bias = bias && !aligned16(in(2));
      p.ws(round256(kH * double(N * D)) + round256(kH * double(V * D)) + (copy_bias ? round256(kF * double(V)) : 0) +
           round256(kF * double(C * ld)) + (backward ? round256(kH * double(C * ld)) : 0) +
           (backward && dbias ? round256(kF * double(chunks_of(C, kColumnSumRows) * V)) : 0) + kCublasLtWorkspaceBytes);
      p.to_bf16(double(N * D));
      if (c.weights == WeightCopy::None) p.to_bf16(double(V * D));
      if (copy_bias) p.k("cudaMemcpy", kF * double(V), kF * double(V));  // to an aligned slot: the GEMM's epilogue
      for (int64_t r0 = 0; r0 < N; r0 += C) {
        const int64_t n = std::min(C, N - r0);
        const double nl = double(n * ld);
        // logits (rows of ld) = y W^T + bias (aligned, or its aligned copy: always the epilogue); the loss kernel;
        // then dy = dlogits W, dW += dlogits^T y
        p.gemm_bf16(n, V, D, false, bias, true, false, false, 0, ld);
        p.k("loss_head_kernel", kF * nl + double(n) * (2 * kI + 3 * kD), kF * double(n) + (backward ? kH * nl : 0));
        if (!backward) continue;
        if (dbias) p.column_sums(n, V, true, ld);  // from the bf16 gradient rows
        p.gemm_bf16(n, D, V, false, false, false, false, false, ld);
        p.gemm_bf16(V, D, n, true, false, false, false, true, ld);
      }
      break;
    }
    case OpKind::KlHead: {  // kl_head.cu; out: losses, dstudent; in: student, teacher, weight
      if (rows(i0) == 0) break;
      p.k("kl_head_kernel", bytes(in(0)) + bytes(in(1)) + bytes(in(2)), bytes(o0) + bytes(out(1)));
      break;
    }
    case OpKind::GaussianRelaxation:  // relaxation.cu; out: soft_logits (B, L, V) or empty, z; in: x (B·L), scales
      p.check_ids(numel(in(0)));
      if (numel(in(0)) > 0) p.k("gaussian_relaxation_kernel", bytes(in(0)) + bytes(in(1)), bytes(o0) + bytes(out(1)));
      break;
    case OpKind::DiffusionStep: {  // sampling.cu; out: z (B·L), status (2); in: logits (B, L, V), keep, sigma
      p.check_ids(numel(o0));
      if (numel(o0) == 0) break;
      p.k("diffusion_step_status_kernel", 0, bytes(out(1)));
      // The row once (its statistics, then the entries again, from L2 or memory: the footprint counts it once; top-k
      // and top-p read it a dozen times more)
      p.k("diffusion_step_kernel", bytes(i0) + bytes(in(1)) + bytes(in(2)) + bytes(o0), bytes(o0) + bytes(out(1)));
      break;
    }
    case OpKind::SumSquares: {  // optim.cu: two-stage sum in double, the total read back
      const int64_t n = int64_t(numel(i0)), ch = chunks_of(n, kSumChunk);
      if (n == 0) break;
      p.ws(size_t(ch + 1) * 8);
      p.k("sum_squares_partial_kernel", bytes(i0), kD * double(ch));
      p.k("sum_partials_kernel", kD * double(ch), kD);
      p.k("cudaMemcpy", kD, 0);
      break;
    }
    case OpKind::SumSquaresChunks: {  // optim.cu: stage 1 alone, the chunk sums read back
      const int64_t n = int64_t(numel(i0)), ch = chunks_of(n, kSumChunk);
      if (n == 0) break;
      p.ws(size_t(ch) * 8);
      p.k("sum_squares_partial_kernel", bytes(i0), kD * double(ch));
      p.k("cudaMemcpy", kD * double(ch), 0);
      break;
    }
    case OpKind::Scale:
      if (numel(o0) > 0) p.k("scale_kernel", bytes(o0), bytes(o0));
      break;
    case OpKind::Adamw: {  // out: params, m, v; in: grads; and the params' bf16 working copy written when Made
      const double copy = c.weights == WeightCopy::Made ? kH * numel(o0) : 0;
      if (numel(o0) > 0) p.k("adamw_kernel", bytes(o0) + bytes(out(1)) + bytes(out(2)) + bytes(i0),
                             bytes(o0) + bytes(out(1)) + bytes(out(2)) + copy);
      break;
    }
    case OpKind::EmaUpdate:
      if (numel(o0) > 0) p.k("ema_kernel", bytes(o0) + bytes(i0), bytes(o0));
      break;
    case OpKind::Count: break;
  }
  // The op's CUDA-core arithmetic (op_kinds.h's constants, GEMMs and mma excluded) on the kernel its case named, or
  // else on its biggest kernel.
  double tensor = 0;
  for (const KernelTraffic& k : p.r.kernels) tensor += k.tensor_flops;
  if (!p.r.kernels.empty()) {
    auto big = p.arithmetic >= 0 ? p.r.kernels.begin() + p.arithmetic
                                 : std::max_element(p.r.kernels.begin(), p.r.kernels.end(), [](const auto& a, const auto& b) {
                                     return a.read + a.written < b.read + b.written;
                                   });
    big->flops = std::max(0.0, op_cost(c).flops - tensor);
  }
  return p.r;
}

}  // namespace duo
