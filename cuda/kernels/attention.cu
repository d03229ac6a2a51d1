// Naive softmax attention over packed qkv (B, L, 3D), feature order [q|k|v][head][dim], scale 1/sqrt(hd),
// bidirectional or causal. This is the simple, obviously correct reference of the CUDA backend: one block per
// (query row i, batch·head), its score row in shared memory, fp32 throughout; O(L^2 hd) work and O(L) shared
// memory per block. The flash-style kernels (cuda-attn) are the fast path and are tested against it.
//
// The forward saves lse (B, H, L). The backward recomputes P_ij = exp(s_ij - lse_i) and, to stay free of
// atomics (deterministic), gathers instead of scattering: dQ by query row, dK and dV by key row, each block
// summing over the other index in order. With delta_i = dO_i · O_i:
//   dS_ij = P_ij (dO_i · v_j - delta_i),   dq_i = scale Σ_j dS_ij k_j,
//   dk_j = scale Σ_i dS_ij q_i,             dv_j = Σ_i P_ij dO_i
#include "cuda_common.cuh"
#include "kernels/flash_attention.cuh"
#include "kernels/rotary.cuh"

namespace duo {
using namespace cuda;

namespace {

constexpr int kAttnThreads = 128;
constexpr size_t kDefaultSmem = 48 << 10;

struct AttnDims {
  int L, D, H, hd;
  float scale;
  bool causal;
};

__device__ inline float dot(const float* a, const float* b, int n) {
  float s = 0.0f;
  for (int d = 0; d < n; ++d) s += a[d] * b[d];
  return s;
}

// grid (L, B H); dynamic smem: L floats (the score row).           out: (B, L, D), lse: (B, H, L)
__global__ void __launch_bounds__(kAttnThreads) attention_forward_kernel(float* out, float* lse, const float* qkv,
                                                                         AttnDims a) {
  DUO_SHARED(float, scratch, 32);
  DUO_DYN_SHARED(float, p);
  const int i = int(blockIdx.x), bh = int(blockIdx.y), b = bh / a.H, h = bh % a.H, W = 3 * a.D;
  const float* base = qkv + int64_t(b) * a.L * W + h * a.hd;  // q of row 0 of this head; k at +D, v at +2D
  const float* q = base + int64_t(i) * W;
  const int visible = a.causal ? i + 1 : a.L;
  float m = -INFINITY;
  for (int j = int(threadIdx.x); j < visible; j += kAttnThreads) {
    p[j] = a.scale * dot(q, base + int64_t(j) * W + a.D, a.hd);
    m = fmaxf(m, p[j]);
  }
  m = block_max(m, scratch);
  float s = 0.0f;
  for (int j = int(threadIdx.x); j < visible; j += kAttnThreads) s += expf(p[j] - m);
  const float row_lse = m + logf(block_sum(s, scratch));
  for (int j = int(threadIdx.x); j < visible; j += kAttnThreads) p[j] = expf(p[j] - row_lse);
  __syncthreads();
  for (int d = int(threadIdx.x); d < a.hd; d += kAttnThreads) {
    float o = 0.0f;
    for (int j = 0; j < visible; ++j) o += p[j] * base[int64_t(j) * W + 2 * a.D + d];
    out[(int64_t(b) * a.L + i) * a.D + h * a.hd + d] = o;
  }
  if (threadIdx.x == 0) lse[int64_t(bh) * a.L + i] = row_lse;
}

// delta[b, h, i] = dO_i · O_i for head h; one thread per (b, i, h).                        delta: (B, H, L)
__global__ void attention_delta_kernel(float* delta, const float* dout, const float* out, int64_t BL, AttnDims a) {
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t >= BL * a.H) return;
  const int64_t n = t / a.H;
  const int h = int(t % a.H), b = int(n / a.L), i = int(n % a.L);
  delta[(int64_t(b) * a.H + h) * a.L + i] = dot(dout + n * a.D + h * a.hd, out + n * a.D + h * a.hd, a.hd);
}

// dq_i = scale Σ_j dS_ij k_j. grid (L, B H); dynamic smem: L floats (dS row).
__global__ void __launch_bounds__(kAttnThreads) attention_dq_kernel(float* dqkv, const float* dout, const float* qkv,
                                                                    const float* lse, const float* delta, AttnDims a) {
  DUO_DYN_SHARED(float, ds);
  const int i = int(blockIdx.x), bh = int(blockIdx.y), b = bh / a.H, h = bh % a.H, W = 3 * a.D;
  const float* base = qkv + int64_t(b) * a.L * W + h * a.hd;
  const float* q = base + int64_t(i) * W;
  const float* dO = dout + (int64_t(b) * a.L + i) * a.D + h * a.hd;
  const float li = lse[int64_t(bh) * a.L + i], di = delta[int64_t(bh) * a.L + i];
  const int visible = a.causal ? i + 1 : a.L;
  for (int j = int(threadIdx.x); j < visible; j += kAttnThreads) {
    const float* kj = base + int64_t(j) * W + a.D;
    const float pij = expf(a.scale * dot(q, kj, a.hd) - li);
    ds[j] = pij * (dot(dO, kj + a.D, a.hd) - di);
  }
  __syncthreads();
  float* dq = dqkv + (int64_t(b) * a.L + i) * W + h * a.hd;
  for (int d = int(threadIdx.x); d < a.hd; d += kAttnThreads) {
    float acc = 0.0f;
    for (int j = 0; j < visible; ++j) acc += ds[j] * base[int64_t(j) * W + a.D + d];
    dq[d] = a.scale * acc;
  }
}

// dk_j = scale Σ_i dS_ij q_i, dv_j = Σ_i P_ij dO_i over the queries i that see key j. grid (L, B H);
// dynamic smem: 2 L floats (P and dS columns).
__global__ void __launch_bounds__(kAttnThreads) attention_dkv_kernel(float* dqkv, const float* dout, const float* qkv,
                                                                     const float* lse, const float* delta, AttnDims a) {
  DUO_DYN_SHARED(float, col);
  float* pc = col;         // P_ij for i = first .. L-1
  float* dsc = col + a.L;  // dS_ij
  const int j = int(blockIdx.x), bh = int(blockIdx.y), b = bh / a.H, h = bh % a.H, W = 3 * a.D;
  const float* base = qkv + int64_t(b) * a.L * W + h * a.hd;
  const float* kj = base + int64_t(j) * W + a.D;
  const float* dO0 = dout + int64_t(b) * a.L * a.D + h * a.hd;
  const int first = a.causal ? j : 0;  // queries i ≥ j see key j under the causal mask
  for (int i = first + int(threadIdx.x); i < a.L; i += kAttnThreads) {
    const float pij = expf(a.scale * dot(base + int64_t(i) * W, kj, a.hd) - lse[int64_t(bh) * a.L + i]);
    pc[i] = pij;
    dsc[i] = pij * (dot(dO0 + int64_t(i) * a.D, kj + a.D, a.hd) - delta[int64_t(bh) * a.L + i]);
  }
  __syncthreads();
  float* dk = dqkv + (int64_t(b) * a.L + j) * W + a.D + h * a.hd;
  float* dv = dk + a.D;
  for (int d = int(threadIdx.x); d < a.hd; d += kAttnThreads) {
    float acc_k = 0.0f, acc_v = 0.0f;
    for (int i = first; i < a.L; ++i) {
      acc_k += dsc[i] * base[int64_t(i) * W + d];
      acc_v += pc[i] * dO0[int64_t(i) * a.D + d];
    }
    dk[d] = a.scale * acc_k;
    dv[d] = acc_v;
  }
}

using checks::AttnShape;

// The flash kernels take head dims 32 and 64 and 16-byte aligned tensors (vector loads).
bool flash_supported(const AttnShape& s, std::initializer_list<const Tensor*> ts) {
  const int64_t hd = s.D / s.H;
  if (hd != 32 && hd != 64) return false;
  for (const Tensor* t : ts)
    if (!aligned16(t->data)) return false;
  return true;
}

AttnShape attention_shape(const char* op, const Tensor& qkv, const Tensor& out, const Tensor& lse, int n_heads) {
  // The shared checks, plus this backend's own limit: (batch, head) is the grid's y dimension.
  const AttnShape s = checks::attention(str("CudaOps::", op), qkv, out, lse, n_heads);
  DUO_CHECK(s.B * s.H <= 65535, str("CudaOps::", op), str("batch x heads = ", s.B * s.H, " exceeds 65535"),
            "use a smaller batch (micro-batches accumulate gradients)");
  return s;
}

AttnDims dims_of(const AttnShape& s, bool causal) {
  const int hd = int(s.D / s.H);
  return {int(s.L), int(s.D), int(s.H), hd, 1.0f / sqrtf(float(hd)), causal};
}

// y[i] = x[i] widened: a bf16 qkv (the activation dtype) for the naive fp32 kernels                          (n)
__global__ void bf16_to_f32_kernel(float* y, const __nv_bfloat16* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __bfloat162float(x[i]);
}

// Raises the kernel's dynamic shared-memory limit when the rows of a long sequence need more than 48 KiB.
template <class K>
void allow_smem(const char* op, K kernel, size_t bytes) {
  if (bytes > kDefaultSmem)
    DUO_CU(op, cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

}  // namespace

// The naive kernels read and write fp32: a bf16 tensor (the activation dtype) is widened into `slot` (t.numel() floats
// of workspace) first.
const float* CudaOps::as_f32(const Tensor& t, void* slot) {
  if (!is_bf16(t)) return fptr(t);
  const int64_t n = t.numel();
  DUO_LAUNCH(bf16_to_f32_kernel, blocks_for(n), kThreads, 0, as_stream(stream_))(static_cast<float*>(slot), hptr(t), n);
  return static_cast<const float*>(slot);
}

void CudaOps::do_attention(Tensor& out, Tensor& lse, const Tensor& qkv, int n_heads, bool causal) {
  const char* op = "attention";
  check_f32(op, {&lse});
  check_f32_or_bf16(op, {&qkv, &out});
  const AttnShape s = attention_shape(op, qkv, out, lse, n_heads);
  DUO_CHECK(out.data != qkv.data, "CudaOps::attention", "out may not alias qkv", "");
  if (s.B * s.L == 0) return;
  const bool act16 = is_bf16(qkv);
  if (flash_attention_ && flash_supported(s, {&out, &lse, &qkv})) {
    const int hd = int(s.D / s.H);
    void* ws = workspace(flash_attention_workspace_bytes(int(s.B), int(s.L), int(s.H), hd));
    flash_attention_forward(out.data, fptr(lse), qkv.data, act16, nullptr, ws, int(s.B), int(s.L), int(s.H), hd,
                            causal, as_stream(stream_));
    return;
  }
  // bf16: qkv widened into the workspace, out written there in fp32 and rounded into out
  const size_t q_bytes = act16 ? round_up(size_t(qkv.numel()) * 4) : 0, o_bytes = act16 ? size_t(out.numel()) * 4 : 0;
  char* ws = act16 ? static_cast<char*>(workspace(q_bytes + o_bytes)) : nullptr;
  const float* q32 = as_f32(qkv, ws);
  float* o32 = act16 ? reinterpret_cast<float*>(ws + q_bytes) : fptr(out);
  const size_t smem = size_t(s.L) * sizeof(float);
  allow_smem(op, attention_forward_kernel, smem);
  DUO_LAUNCH(attention_forward_kernel, dim3(unsigned(s.L), unsigned(s.B * s.H)), kAttnThreads, smem,
             as_stream(stream_))(o32, fptr(lse), q32, dims_of(s, causal));
  if (act16) to_bf16(out.data, o32, out.numel());
  DUO_CU_LAUNCHED(op);
}

void CudaOps::do_attention_backward(Tensor& dqkv, const Tensor& dout, const Tensor& qkv, const Tensor& out,
                                    const Tensor& lse, int n_heads, bool causal) {
  const char* op = "attention_backward";
  check_f32(op, {&dqkv, &lse});
  check_f32_or_bf16(op, {&qkv, &out});
  check_f32_or_bf16(op, {&dout});
  const AttnShape s = attention_shape(op, qkv, out, lse, n_heads);
  check_matrix(op, "dout", dout, s.B * s.L, s.D);
  check_matrix(op, "dqkv", dqkv, s.B * s.L, 3 * s.D);
  if (s.B * s.L == 0) return;
  const bool act16 = is_bf16(qkv);
  if (flash_attention_ && flash_supported(s, {&dqkv, &dout, &qkv, &out, &lse})) {
    const int hd = int(s.D / s.H);
    void* ws = workspace(flash_attention_workspace_bytes(int(s.B), int(s.L), int(s.H), hd));
    flash_attention_backward(dqkv.data, false, dout.data, is_bf16(dout), qkv.data, out.data, act16, nullptr, fptr(lse),
                             ws, int(s.B), int(s.L), int(s.H), hd, causal, as_stream(stream_));
    return;
  }
  const AttnDims a = dims_of(s, causal);
  cudaStream_t st = as_stream(stream_);
  // delta, then (bf16) qkv, out and dout widened
  const size_t delta_bytes = round_up(size_t(s.B * s.H * s.L) * sizeof(float)),
               q_bytes = act16 ? round_up(size_t(qkv.numel()) * 4) : 0,
               o_bytes = act16 ? round_up(size_t(out.numel()) * 4) : 0,
               d_bytes = is_bf16(dout) ? size_t(dout.numel()) * 4 : 0;
  char* ws = static_cast<char*>(workspace(delta_bytes + q_bytes + o_bytes + d_bytes));
  float* delta = reinterpret_cast<float*>(ws);  // (B, H, L)
  const float* q32 = as_f32(qkv, ws + delta_bytes);
  const float* o32 = as_f32(out, ws + delta_bytes + q_bytes);
  const float* d32 = as_f32(dout, ws + delta_bytes + q_bytes + o_bytes);
  DUO_LAUNCH(attention_delta_kernel, blocks_for(s.B * s.L * s.H), kThreads, 0, st)(delta, d32, o32, s.B * s.L, a);
  const dim3 grid(unsigned(s.L), unsigned(s.B * s.H));
  const size_t smem = size_t(s.L) * sizeof(float);
  allow_smem(op, attention_dq_kernel, smem);
  allow_smem(op, attention_dkv_kernel, 2 * smem);
  DUO_LAUNCH(attention_dq_kernel, grid, kAttnThreads, smem, st)(fptr(dqkv), d32, q32, fptr(lse), delta, a);
  DUO_LAUNCH(attention_dkv_kernel, grid, kAttnThreads, 2 * smem, st)(fptr(dqkv), d32, q32, fptr(lse), delta, a);
  DUO_CU_LAUNCHED(op);
}

// Rotary fused into the flash kernels where they run on a bf16 qkv (the activation dtype): q and k rotated as they are
// loaded, dQ and dK turned back as they are stored, the same bits as the rotary ops around the attention without
// their passes over (B, L, 3D). Otherwise the default, the ops one after the other through the scratch (an fp32 qkv
// is rotated before its rounding to bf16 there, so the kernels' rotation of the rounded values would differ).
// One workspace request of a fused call: the flash kernels' scratch, then the rotary table (L, hd/2) of float2,
// written on the stream.
std::pair<void*, const void*> CudaOps::flash_rotary_workspace(const char* op, int64_t B, int64_t L, int64_t H, int hd) {
  const size_t at = round_up(flash_attention_workspace_bytes(int(B), int(L), int(H), hd));
  char* ws = static_cast<char*>(workspace(at + size_t(L) * size_t(hd / 2) * sizeof(float2)));
  auto* rope = reinterpret_cast<float2*>(ws + at);
  rotary_table(rope, int(L), hd, as_stream(stream_));
  DUO_CU_LAUNCHED(op);
  return {ws, rope};
}

bool CudaOps::rotary_attention_uses_scratch(const Tensor& qkv, int n_heads) const {
  if (!flash_attention_ || !is_bf16(qkv) || n_heads <= 0 || qkv.ndim == 0 || qkv.dim(-1) % (3 * n_heads) != 0)
    return true;
  const int64_t hd = qkv.dim(-1) / 3 / n_heads;
  return hd != 32 && hd != 64;  // the flash kernels' head dims (flash_supported; planned tensors are aligned)
}

namespace {
// The default path (rotary, then the naive kernels) needs the scratch a caller may have left out.
void require_scratch(const char* op, std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    DUO_CHECK(!t->empty(), str("CudaOps::", op), "the flash kernels cannot run this call (unaligned tensors?) and no "
              "rotary scratch was given", "pass the scratch, or 16-byte aligned tensors");
}
}  // namespace

void CudaOps::do_rotary_attention(Tensor& out, Tensor& lse, Tensor& rotated, const Tensor& qkv, int n_heads,
                                  bool causal) {
  const char* op = "rotary_attention";
  check_f32(op, {&lse});
  check_f32_or_bf16(op, {&qkv, &out, &rotated});
  const AttnShape s = attention_shape(op, qkv, out, lse, n_heads);
  if (!(flash_attention_ && is_bf16(qkv) && flash_supported(s, {&out, &lse, &qkv}))) {
    require_scratch(op, {&rotated});
    Ops::do_rotary_attention(out, lse, rotated, qkv, n_heads, causal);
    return;
  }
  if (s.B * s.L == 0) return;
  const int hd = int(s.D / s.H);
  const auto [ws, rope] = flash_rotary_workspace(op, s.B, s.L, s.H, hd);
  flash_attention_forward(out.data, fptr(lse), qkv.data, true, static_cast<const float2*>(rope), ws, int(s.B),
                          int(s.L), int(s.H), hd, causal, as_stream(stream_));
}

void CudaOps::do_rotary_attention_backward(Tensor& dqkv, Tensor& drotated, Tensor& rotated, const Tensor& dout,
                                           const Tensor& qkv, const Tensor& out, const Tensor& lse, int n_heads,
                                           bool causal) {
  const char* op = "rotary_attention_backward";
  check_f32(op, {&lse, &drotated});
  check_f32_or_bf16(op, {&qkv, &out, &rotated, &dqkv});
  check_f32_or_bf16(op, {&dout});
  const AttnShape s = attention_shape(op, qkv, out, lse, n_heads);
  if (!(flash_attention_ && is_bf16(qkv) && flash_supported(s, {&dqkv, &dout, &qkv, &out, &lse}))) {
    require_scratch(op, {&rotated, &drotated});
    Ops::do_rotary_attention_backward(dqkv, drotated, rotated, dout, qkv, out, lse, n_heads, causal);
    return;
  }
  if (s.B * s.L == 0) return;
  const int hd = int(s.D / s.H);
  const auto [ws, rope] = flash_rotary_workspace(op, s.B, s.L, s.H, hd);
  flash_attention_backward(dqkv.data, is_bf16(dqkv), dout.data, is_bf16(dout), qkv.data, out.data, true,
                           static_cast<const float2*>(rope), fptr(lse), ws, int(s.B), int(s.L), int(s.H), hd, causal,
                           as_stream(stream_));
}

}  // namespace duo
