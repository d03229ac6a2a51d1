// Rotary position embedding, rotate-half (GPT-NeoX) convention, base 10000, on packed qkv (B, L, 3D) with
// feature order [q|k|v][head][dim]. For head_dim hd and half = hd/2, the pair (j, j + half) of every q and k
// head at position l turns by angle = l 10000^(-2j/hd):
//   out_j = x_j cos - x_{j+half} sin,   out_{j+half} = x_{j+half} cos + x_j sin
// v is copied; the backward turns by -angle. cos and sin are evaluated in double, as the CPU's table, then
// rounded to fp32, so both backends multiply by the same numbers: once per (position, pair) into a table in the
// workspace (L·hd/2 evaluations instead of one pow, sin and cos per element), which the rotation then reads.
#include "cuda_common.cuh"
#include "kernels/rotary.cuh"

namespace duo {
using namespace cuda;

namespace {

// table[l, j] = (cos, sin)(l · 10000^(-2j/hd)) for l < L, j < hd/2, as float2.                      (L·hd/2)
__global__ void rotary_table_kernel(float2* table, int L, int hd) {
  const int half = hd / 2;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < int64_t(L) * half;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int l = int(t / half), j = int(t % half);
    const double inv_freq = pow(10000.0, -2.0 * double(j) / double(hd));
    table[t] = make_float2(float(cos(double(l) * inv_freq)), float(sin(double(l) * inv_freq)));
  }
}

// One thread per (token n, pair p) with p < H_qk * half (the q and k heads), then per v feature.
// in, out: (N, 3D), fp32 or bf16 (the activation dtype: the forward's qkv, the backward's dqkv, which the qkv layer's
// GEMMs read), in fp32 arithmetic; direction +1 (forward) or -1 (backward).
template <class In, class Out>
__global__ void rotate(Out* out, const In* in, const float2* table, int64_t N, int L, int D, int hd, float direction) {
  const int half = hd / 2, pairs = (2 * D / hd) * half, W = 3 * D;
  const int64_t per_token = pairs + D;  // rotated pairs, then the copied v features
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < N * per_token;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = t / per_token;
    const int p = int(t % per_token);
    const In* x = in + n * W;
    Out* y = out + n * W;
    if (p >= pairs) {  // v passes through
      y[2 * D + (p - pairs)] = act_store<Out>(act_load(x[2 * D + (p - pairs)]));
      continue;
    }
    const int head = p / half, j = p % half, l = int(n % L);
    const float2 cs = table[int64_t(l) * half + j];
    const float c = cs.x, sn = direction * cs.y;  // ±sin: a sign flip, exact
    float y1, y2;
    rotate_pair(act_load(x[head * hd + j]), act_load(x[head * hd + j + half]), c, sn, y1, y2);
    y[head * hd + j] = act_store<Out>(y1);
    y[head * hd + j + half] = act_store<Out>(y2);
  }
}

using checks::RotaryShape;

// The forward takes in and out in one dtype (the activation dtype); the backward an fp32 dout (the attention's
// gradient) and a din of either.
RotaryShape rotary_shape(const char* op, const Tensor& out, const Tensor& in, int n_heads, bool forward) {
  if (forward) {
    check_f32_or_bf16(op, {&out, &in});
  } else {
    check_f32(op, {&in});
    check_f32_or_bf16(op, {&out});
  }
  return checks::rotary(str("CudaOps::", op), out, in, n_heads);
}

// table: rotary_table_bytes(r) of device scratch.
void launch_rotary(const char* op, cudaStream_t s, Tensor& out, const Tensor& in, const RotaryShape& r, float dir,
                   void* table) {
  const int64_t N = r.B * r.L, work = N * (r.D + r.D);  // pairs = D (q and k: 2D features), plus D v features
  if (N == 0) return;
  auto* cs = static_cast<float2*>(table);
  rotary_table(cs, int(r.L), int(r.hd), s);
  DUO_CU_LAUNCHED(op);
  const int L = int(r.L), D = int(r.D), hd = int(r.hd);
  using bf16 = __nv_bfloat16;
  if (is_bf16(in)) {  // (the emulator names a launch by its kernel variable)
    auto* rotary_bf16_kernel = rotate<bf16, bf16>;
    DUO_LAUNCH(rotary_bf16_kernel, blocks_for(work), kThreads, 0, s)(hptr(out), hptr(in), cs, N, L, D, hd, dir);
  } else if (is_bf16(out)) {
    auto* rotary_to_bf16_kernel = rotate<float, bf16>;
    DUO_LAUNCH(rotary_to_bf16_kernel, blocks_for(work), kThreads, 0, s)(hptr(out), fptr(in), cs, N, L, D, hd, dir);
  } else {
    auto* rotary_kernel = rotate<float, float>;
    DUO_LAUNCH(rotary_kernel, blocks_for(work), kThreads, 0, s)(fptr(out), fptr(in), cs, N, L, D, hd, dir);
  }
  DUO_CU_LAUNCHED(op);
}
size_t rotary_table_bytes(const RotaryShape& r) { return size_t(r.L * (r.hd / 2)) * sizeof(float2); }

}  // namespace

void cuda::rotary_table(float2* table, int L, int hd, cudaStream_t stream) {
  if (L > 0 && hd > 0)
    DUO_LAUNCH(rotary_table_kernel, blocks_for(int64_t(L) * (hd / 2)), kThreads, 0, stream)(table, L, hd);
}

void CudaOps::do_rotary(Tensor& out, const Tensor& in, int n_heads) {
  const RotaryShape r = rotary_shape("rotary", out, in, n_heads, true);
  launch_rotary("rotary", as_stream(stream_), out, in, r, +1.0f, workspace(rotary_table_bytes(r)));
}

void CudaOps::do_rotary_backward(Tensor& din, const Tensor& dout, int n_heads) {
  const RotaryShape r = rotary_shape("rotary_backward", din, dout, n_heads, false);
  launch_rotary("rotary_backward", as_stream(stream_), din, dout, r, -1.0f, workspace(rotary_table_bytes(r)));
}

}  // namespace duo
