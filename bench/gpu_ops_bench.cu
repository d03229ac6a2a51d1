// GPU benchmark of the row-wise heads of the CUDA backend against the memory roofline measured in the same
// run; needs a GPU: `make cuda` builds it as build/cuda/gpu-ops-bench and bench/gpu_check.sh runs it.
// Usage: gpu_ops_bench [N V] (default N = 8192 rows = B 8 × L 1024, V = 50258: GPT-2's vocabulary).
//   roofline  a device-to-device copy of the logits (read + write of N·V floats): the bandwidth every
//             row-wise op is measured against
//   loss_head the DUO NELBO head with its gradient (LossKind::DUO): at least one read of the logits and one
//             write of dlogits, so its floor is the copy's time; printed as the fraction of copy bandwidth
//   kl_head   the distillation KL (two rows read, one written)
//   gaussian_relaxation  DUO's curriculum input: N·V normals drawn and written (Philox + Box-Muller)
//   linear_loss_head  the vocabulary head of a training step (D = 768): the fused op (chunks of rows, no full
//             logits) next to the three ops it replaces (the output GEMM into fp32 logits, the loss head,
//             linear_backward), in TFLOP/s of the head's three GEMMs (6·N·V·D)
// Each op: mean of 10 runs after 2 warm-ups, through CudaOps (as training calls it).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "backend/ops.h"
#include "core/philox.h"
#include "cuda_ops.h"
#include "runtime.cuh"

namespace {

template <class F>
double seconds_per_run(duo::CudaOps& ops, F&& f) {
  for (int i = 0; i < 2; ++i) f();
  ops.sync();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) f();
  ops.sync();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 10;
}

template <class T>
duo::Tensor upload(duo::CudaOps& ops, const std::vector<T>& v, std::initializer_list<int64_t> dims) {
  duo::Tensor t(ops.alloc(v.size() * sizeof(T)), duo::dtype_of<T>(), dims, duo::Device::CUDA);
  ops.from_host(t, v.data());
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t N = argc > 2 ? std::atoll(argv[1]) : 8192, V = argc > 2 ? std::atoll(argv[2]) : 50258;
  duo::CudaOps ops;
  const size_t bytes = size_t(N) * size_t(V) * sizeof(float);
  std::printf("gpu_ops_bench: N = %lld rows, V = %lld (%.2f GB per N×V fp32 tensor)\n", (long long)N, (long long)V,
              bytes / 1e9);
  std::vector<float> host(size_t(N) * size_t(V));
  duo::Philox rng{1, 2};
  for (size_t i = 0; i < host.size(); ++i) host[i] = 4.0f * (rng.uniform(i) - 0.5f);
  duo::Tensor logits = upload(ops, host, {N, V}), other = upload(ops, host, {N, V});
  duo::Tensor dlogits(ops.alloc(bytes), duo::DType::F32, {N, V}, duo::Device::CUDA);
  duo::Tensor losses(ops.alloc(N * sizeof(float)), duo::DType::F32, {N}, duo::Device::CUDA);
  std::vector<int32_t> x(N), z(N);
  for (int64_t n = 0; n < N; ++n) x[n] = int32_t(rng.bits(3 * n) % V), z[n] = int32_t(rng.bits(3 * n + 1) % V);
  const std::vector<double> alpha(N, 0.3), dalpha(N, -1.2), weight(N, 1.0 / N), scales{0.6, 0.8};
  duo::Tensor gx = upload(ops, x, {N}), gz = upload(ops, z, {N}), ga = upload(ops, alpha, {N});
  duo::Tensor gda = upload(ops, dalpha, {N}), gw = upload(ops, weight, {N}), gs = upload(ops, scales, {1, 2});

  const double t_copy = seconds_per_run(ops, [&] { ops.copy(dlogits, logits); });
  const double bw = 2.0 * bytes / t_copy;
  std::printf("%-22s %8.3f ms  %7.1f GB/s (read + write)\n", "roofline copy", t_copy * 1e3, bw / 1e9);
  auto report = [&](const char* name, double t, double min_bytes) {
    std::printf("%-22s %8.3f ms  %7.1f GB/s of its minimal traffic = %.0f%% of the copy's bandwidth\n", name, t * 1e3,
                min_bytes / t / 1e9, 100.0 * min_bytes / t / bw);
  };
  duo::LossHeadArgs duo_head;
  duo_head.kind = duo::LossKind::DUO;
  report("loss_head DUO + grad", seconds_per_run(ops, [&] {
           ops.loss_head(duo_head, losses, dlogits, logits, gx, gz, ga, gda, gw);
         }), 2.0 * bytes);
  duo::Tensor none;
  report("loss_head DUO (eval)", seconds_per_run(ops, [&] {
           ops.loss_head(duo_head, losses, none, logits, gx, gz, ga, gda, gw);
         }), 1.0 * bytes);
  report("kl_head + grad", seconds_per_run(ops, [&] {
           ops.kl_head(duo::KlDirection::Backward, losses, dlogits, logits, other, gw);
         }), 3.0 * bytes);
  duo::Tensor soft = dlogits.view({1, N, V}), latents = gz;
  report("gaussian_relaxation", seconds_per_run(ops, [&] {
           ops.gaussian_relaxation(soft, latents, gx.view({1, N}), gs, 1000.0, duo::Philox{5, 6});
         }), 1.0 * bytes);
  // The vocabulary head, fused and as the three ops it replaces (the same inputs, D = 768).
  const int64_t D = 768;
  std::vector<float> hy(static_cast<size_t>(N * D)), hw(static_cast<size_t>(V * D)), hb(static_cast<size_t>(V));
  for (size_t i = 0; i < hy.size(); ++i) hy[i] = rng.uniform(1u << 30 | i) - 0.5f;
  for (size_t i = 0; i < hw.size(); ++i) hw[i] = 0.05f * (rng.uniform(1u << 31 | i) - 0.5f);
  for (size_t i = 0; i < hb.size(); ++i) hb[i] = 0.01f * (rng.uniform(3u << 30 | i) - 0.5f);
  duo::Tensor y = upload(ops, hy, {N, D}), W = upload(ops, hw, {V, D}), b = upload(ops, hb, {V});
  duo::Tensor dy = upload(ops, std::vector<float>(hy.size()), {N, D}), dW = upload(ops, std::vector<float>(hw.size()), {V, D});
  duo::Tensor db = upload(ops, std::vector<float>(hb.size()), {V});
  const double head_flops = 6.0 * double(N) * double(V) * double(D);
  const double t_fused = seconds_per_run(ops, [&] {
    ops.linear_loss_head(duo_head, losses, dy, dW, db, y, W, b, gx, gz, ga, gda, gw);
  });
  const double t_three = seconds_per_run(ops, [&] {
    ops.linear(logits, y, W, b);
    ops.loss_head(duo_head, losses, dlogits, logits, gx, gz, ga, gda, gw);
    ops.linear_backward(dy, dW, db, dlogits, y, W, false);
  });
  std::printf("%-22s %8.3f ms  %6.1f TFLOP/s\n", "linear_loss_head fused", t_fused * 1e3, head_flops / t_fused / 1e12);
  std::printf("%-22s %8.3f ms  %6.1f TFLOP/s (%.2fx the fused op's time)\n", "linear+loss+backward", t_three * 1e3,
              head_flops / t_three / 1e12, t_three / t_fused);
  std::printf("gpu_ops_bench: done\n");
  return 0;
}
