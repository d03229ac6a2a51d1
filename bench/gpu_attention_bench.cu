// GPU check and benchmark of cuda/kernels/flash_attention.cu; needs a GPU, so it is not part of `make`:
// bench/gpu_check.sh builds and runs it. Usage: gpu_attention_bench [B H L hd] (default: the small model's
// attention, B=8 H=12 L=1024 hd=64), or gpu_attention_bench --sweep: head dims 32, 64 (128 has no kernel instance
// yet: printed as such) and L 128 ... 4096 at 16k tokens and H·hd = 2048 (FlashAttention-3's benchmark shapes),
// each row's TFLOP/s next to FlashAttention-2's published H100 figure where there is one. For causal and
// bidirectional attention it
//   1. checks the forward against a naive fp32 kernel (one thread per query row, online softmax): max |Δ| of
//      out and lse, which must stay within bf16 tolerance (a wrong fragment layout on real tensor cores, which
//      the emulator cannot reveal, shows here as an O(1) error);
//   2. runs the backward twice and requires bit-identical dqkv (real warps race; the emulator's do not);
//   3. times forward and backward with CUDA events (mean of 20 runs after 3 warm-ups) and prints TFLOP/s with
//      the usual FlashAttention counts: forward 4·B·H·L²·hd, backward 2.5× forward, both halved when causal.
//      The times include the fp32→bf16 input conversion (and delta) that the fp32 interface requires.
// Exit status 1 when a check fails.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/flash_attention.cuh"
#include "runtime.cuh"

namespace {

// out/lse of query row i of (b, h) in fp32, straight from the definition.
__global__ void naive_forward(float* out, float* lse, const float* qkv, int B, int L, int H, int hd, bool causal) {
  const long idx = long(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= long(B) * H * L) return;
  const int i = int(idx % L), h = int(idx / L % H), b = int(idx / (long(L) * H));
  const int D = H * hd;
  const float* q = qkv + (long(b) * L + i) * 3 * D + h * hd;
  const float scale = 1.0f / sqrtf(float(hd));
  float m = -INFINITY, l = 0.0f, acc[64] = {};
  for (int j = 0; j < (causal ? i + 1 : L); ++j) {
    const float* k = qkv + (long(b) * L + j) * 3 * D + D + h * hd;
    float s = 0.0f;
    for (int d = 0; d < hd; ++d) s += q[d] * k[d];
    s *= scale;
    const float m_new = fmaxf(m, s), rescale = expf(m - m_new), p = expf(s - m_new);
    l = l * rescale + p;
    for (int d = 0; d < hd; ++d) acc[d] = acc[d] * rescale + p * k[D + d];
    m = m_new;
  }
  for (int d = 0; d < hd; ++d) out[(long(b) * L + i) * D + h * hd + d] = acc[d] / l;
  lse[idx] = m + logf(l);
}

struct Device {
  float *qkv, *dout, *out, *lse, *dqkv, *ref_out, *ref_lse;
  void* ws;
};

float max_abs_diff(const float* a, const float* b, size_t n) {
  std::vector<float> x(n), y(n);
  DUO_CUDA_CHECK(cudaMemcpy(x.data(), a, n * sizeof(float), cudaMemcpyDeviceToHost));
  DUO_CUDA_CHECK(cudaMemcpy(y.data(), b, n * sizeof(float), cudaMemcpyDeviceToHost));
  float m = 0.0f;
  for (size_t i = 0; i < n; ++i) m = std::isfinite(x[i]) ? fmaxf(m, fabsf(x[i] - y[i])) : INFINITY;
  return m;
}

template <class F>
float mean_ms(F&& f, int warmup = 3, int iters = 20) {
  for (int i = 0; i < warmup; ++i) f();
  cudaEvent_t start, stop;
  DUO_CUDA_CHECK(cudaEventCreate(&start));
  DUO_CUDA_CHECK(cudaEventCreate(&stop));
  DUO_CUDA_CHECK(cudaEventRecord(start));
  for (int i = 0; i < iters; ++i) f();
  DUO_CUDA_CHECK(cudaEventRecord(stop));
  DUO_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0.0f;
  DUO_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  DUO_CUDA_CHECK(cudaGetLastError());
  return ms / iters;
}

// FlashAttention-2 on an H100 80GB SXM5, TFLOP/s, as published in the FlashAttention-3 paper (Shah et al., 2024,
// figures 5 and 6: 16k tokens, H·hd = 2048, bf16), for L = 512, 1k, 2k, 4k; 0 where none was published (head dim
// 32, L below 512, the causal backward).
struct Published {
  int hd;
  bool causal;
  double fwd[4], bwd[4];
};
constexpr Published kFlashAttention2[] = {
    {64, false, {282, 306, 318, 321}, {198, 238, 264, 279}},
    {64, true, {180, 229, 262, 284}, {0, 0, 0, 0}},
    {128, false, {309, 350, 362, 368}, {214, 260, 291, 310}},
    {128, true, {191, 260, 298, 319}, {0, 0, 0, 0}},
};
double published(int hd, bool causal, int L, bool backward) {
  const int i = L == 512 ? 0 : L == 1024 ? 1 : L == 2048 ? 2 : L == 4096 ? 3 : -1;
  if (i < 0) return 0;
  for (const Published& p : kFlashAttention2)
    if (p.hd == hd && p.causal == causal) return backward ? p.bwd[i] : p.fwd[i];
  return 0;
}
std::string versus(double ours, double theirs) {
  if (theirs <= 0) return "  (FA2: -)";
  char buf[64];
  std::snprintf(buf, sizeof buf, "  (FA2 %3.0f: %4.2fx)", theirs, ours / theirs);
  return buf;
}

// Checks and times one shape, bidirectional and causal; false when a check failed.
bool run(int B, int H, int L, int hd, bool sweep) {
  const size_t D = size_t(H) * hd, n_qkv = size_t(B) * L * 3 * D, n_out = size_t(B) * L * D;
  const size_t n_lse = size_t(B) * H * L;
  std::printf("flash attention: B=%d H=%d L=%d hd=%d\n", B, H, L, hd);

  std::vector<float> qkv(n_qkv), dout(n_out);
  std::mt19937 gen(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& x : qkv) x = normal(gen);
  for (float& x : dout) x = normal(gen);

  Device d;
  DUO_CUDA_CHECK(cudaMalloc(&d.qkv, n_qkv * sizeof(float)));
  DUO_CUDA_CHECK(cudaMalloc(&d.dout, n_out * sizeof(float)));
  DUO_CUDA_CHECK(cudaMalloc(&d.out, n_out * sizeof(float)));
  DUO_CUDA_CHECK(cudaMalloc(&d.lse, n_lse * sizeof(float)));
  DUO_CUDA_CHECK(cudaMalloc(&d.dqkv, n_qkv * sizeof(float)));
  DUO_CUDA_CHECK(cudaMalloc(&d.ref_out, n_out * sizeof(float)));
  DUO_CUDA_CHECK(cudaMalloc(&d.ref_lse, n_lse * sizeof(float)));
  DUO_CUDA_CHECK(cudaMalloc(&d.ws, duo::cuda::flash_attention_workspace_bytes(B, L, H, hd)));
  DUO_CUDA_CHECK(cudaMemcpy(d.qkv, qkv.data(), n_qkv * sizeof(float), cudaMemcpyHostToDevice));
  DUO_CUDA_CHECK(cudaMemcpy(d.dout, dout.data(), n_out * sizeof(float), cudaMemcpyHostToDevice));

  bool ok = true;
  for (bool causal : {false, true}) {
    auto forward = [&] {
      duo::cuda::flash_attention_forward(d.out, d.lse, d.qkv, false, nullptr, d.ws, B, L, H, hd, causal, 0);
    };
    auto backward = [&] {
      duo::cuda::flash_attention_backward(d.dqkv, false, d.dout, false, d.qkv, d.out, false, nullptr, d.lse, d.ws, B, L,
                                          H, hd, causal, 0);
    };

    forward();
    DUO_LAUNCH(naive_forward, unsigned((n_lse + 127) / 128), 128, 0, 0)(d.ref_out, d.ref_lse, d.qkv, B, L, H, hd, causal);
    DUO_CUDA_CHECK(cudaDeviceSynchronize());
    const float err_out = max_abs_diff(d.out, d.ref_out, n_out), err_lse = max_abs_diff(d.lse, d.ref_lse, n_lse);
    const bool fwd_ok = err_out <= 5e-2f && err_lse <= 5e-2f;  // bf16 inputs: ~1e-2 at these magnitudes

    std::vector<float> first(n_qkv), second(n_qkv);
    backward();
    DUO_CUDA_CHECK(cudaMemcpy(first.data(), d.dqkv, n_qkv * sizeof(float), cudaMemcpyDeviceToHost));
    backward();
    DUO_CUDA_CHECK(cudaMemcpy(second.data(), d.dqkv, n_qkv * sizeof(float), cudaMemcpyDeviceToHost));
    bool finite = true;
    for (float x : first) finite = finite && std::isfinite(x);
    const bool bwd_ok = finite && std::memcmp(first.data(), second.data(), n_qkv * sizeof(float)) == 0;
    ok = ok && fwd_ok && bwd_ok;

    const double flops_fwd = 4.0 * B * H * double(L) * L * hd * (causal ? 0.5 : 1.0), flops_bwd = 2.5 * flops_fwd;
    const float ms_fwd = mean_ms(forward), ms_bwd = mean_ms(backward);
    const double tf_fwd = flops_fwd / ms_fwd * 1e-9, tf_bwd = flops_bwd / ms_bwd * 1e-9;
    std::printf("%-13s forward %7.3f ms %6.1f TFLOP/s%s | backward %7.3f ms %6.1f TFLOP/s%s | "
                "max|out-ref| %.2e max|lse-ref| %.2e %s | backward %s\n",
                causal ? "causal" : "bidirectional", ms_fwd, tf_fwd,
                sweep ? versus(tf_fwd, published(hd, causal, L, false)).c_str() : "", ms_bwd, tf_bwd,
                sweep ? versus(tf_bwd, published(hd, causal, L, true)).c_str() : "", err_out, err_lse,
                fwd_ok ? "ok" : "FAIL", bwd_ok ? "deterministic" : "NOT deterministic or not finite: FAIL");
  }
  for (void* p : {(void*)d.qkv, (void*)d.dout, (void*)d.out, (void*)d.lse, (void*)d.dqkv, (void*)d.ref_out,
                  (void*)d.ref_lse, d.ws})
    DUO_CUDA_CHECK(cudaFree(p));
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--sweep") == 0) {
    bool ok = true;
    for (int hd : {32, 64, 128}) {
      if (hd == 128) {
        std::printf("flash attention: hd=128 has no kernel instance (cuda/kernels/flash_attention.cu: 32 and 64)\n");
        continue;
      }
      for (int L : {128, 256, 512, 1024, 2048, 4096}) ok = run(16384 / L, 2048 / hd, L, hd, true) && ok;
    }
    return ok ? 0 : 1;
  }
  const int B = argc > 4 ? atoi(argv[1]) : 8, H = argc > 4 ? atoi(argv[2]) : 12;
  const int L = argc > 4 ? atoi(argv[3]) : 1024, hd = argc > 4 ? atoi(argv[4]) : 64;
  return run(B, H, L, hd, false) ? 0 : 1;
}
