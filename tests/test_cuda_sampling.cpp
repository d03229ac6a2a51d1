// The diffusion samplers' step on the device (CudaOps::diffusion_step, cuda/kernels/sampling.cu) against the CPU
// backend's (the host sampler's functions), on the same raw logits: every family, the ancestral, Ψ, final and greedy
// steps, fp32 and float64 draws, kept positions, top-k / top-p (cuts inside runs of equal logits too), a row that is
// not finite, and a chunk's first position.
//
// The verdict is equal ids. The draws, the mixture's choice and the posterior entries are the same code on both
// sides; what differs is the log-normalisers (block reductions against the CPU's 16 float64 lanes or sequential
// sums), by rounding, which moves x̂ by ~1e-7 relative, and top-p's running mass (fixed-point against the host's
// float64 running sum, ~1e-14). A draw changes only when two race keys lie that close, or a cumulative mass that
// close to p, which the rows here do not have; on a GPU libm's last bits may differ as well, with the same margin.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <vector>
#include "backend/cpu/cpu_ops.h"
#include "cpu_test_util.h"
#include "cuda_test_util.h"
#include "math/sampling_step.h"

using namespace duo;
using namespace duo::test;

namespace {

struct StepCase {
  const char* name;
  DiffusionStepArgs a;
};

std::vector<StepCase> step_cases(DiffusionFamily fam, int32_t mask) {
  std::vector<StepCase> cases;
  DiffusionStepArgs a;
  a.family = fam;
  a.mask_id = fam == DiffusionFamily::uniform ? -1 : mask;
  a.alpha_t = 0.3;
  a.alpha_s = 0.55;
  a.seed = 123;
  a.step = 4;
  cases.push_back({"ancestral", a});
  DiffusionStepArgs p = a;
  p.psi = true;
  p.kappa = 0.3;
  cases.push_back({"psi", p});
  DiffusionStepArgs f = a;
  f.final_step = true;
  cases.push_back({"final", f});
  DiffusionStepArgs g = a;
  g.greedy = true;
  cases.push_back({"greedy", g});
  DiffusionStepArgs c = a;
  c.first_position = 1000;  // a later chunk of a batch: other counters
  cases.push_back({"chunk", c});
  if (fam == DiffusionFamily::uniform || fam == DiffusionFamily::sedd) {
    DiffusionStepArgs h = a;
    h.precision = SamplePrecision::f32;
    cases.push_back({"fp32", h});
  }
  if (fam != DiffusionFamily::sedd) {
    for (int64_t k : {1, 4, 12, 5000}) {  // 1: x̂ one-hot; 12 of 13 (the mask excluded: all); 5000 >= V: none cut
      DiffusionStepArgs t = a;
      t.top_k = k;
      cases.push_back({"top-k", t});
    }
    for (double p : {0.02, 0.7, 0.999}) {
      DiffusionStepArgs t = a;
      t.p_nucleus = p;
      cases.push_back({"top-p", t});
    }
    DiffusionStepArgs both = a;
    both.top_k = 6;
    both.p_nucleus = 0.8;
    both.psi = true;
    both.kappa = 0.6;
    cases.push_back({"top-k, top-p, psi", both});
    if (fam == DiffusionFamily::uniform) {
      DiffusionStepArgs h = both;
      h.precision = SamplePrecision::f32;
      cases.push_back({"top-k, top-p, fp32", h});
    }
  }
  return cases;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(DUO_CUDA_SUITE)

BOOST_AUTO_TEST_CASE(cuda_diffusion_step_draws_the_cpu_draws) {
  const int64_t B = 3, L = 6, N = B * L;
  int64_t changed = 0, compared = 0;
  for (int64_t V : {13, 700})
  for (bool ties : {false, true})
  for (DiffusionFamily fam : {DiffusionFamily::uniform, DiffusionFamily::mdlm, DiffusionFamily::d3pm,
                              DiffusionFamily::sedd}) {
    const int32_t mask = int32_t(V) - 1;
    // Logits spread enough that x̂ is far from uniform; with ties, on a grid of eight values, so that the cuts of
    // top-k and top-p fall inside runs of equal entries (kept in id order).
    std::vector<float> logits = rand_f(N * V, 300 + uint64_t(V), -4.0f, 4.0f);
    if (ties)
      for (float& x : logits) x = std::floor(x);
    std::vector<int32_t> z0 = rand_ids(N, 301, fam == DiffusionFamily::uniform ? int(V) : int(V) - 1);
    if (fam != DiffusionFamily::uniform)
      for (int64_t i = 0; i < N; i += 2) z0[size_t(i)] = mask;
    std::vector<uint8_t> keep(size_t(N), 0);
    keep[3] = keep[8] = 1;
    const std::vector<double> sigma = {0.2, 1.1, 3.0};  // both sides of SEDD's expm1 switch
    for (const StepCase& sc : step_cases(fam, mask)) {
      CpuOps cpu;
      CudaOps gpu;
      DeviceBuffers dev(gpu);
      std::vector<int32_t> z_cpu = z0, st_cpu(2);
      std::vector<float> lg = logits;
      std::vector<uint8_t> kp = keep;
      std::vector<double> sg = sigma;
      cpu.diffusion_step(hv(z_cpu, {N}), hv(st_cpu, {2}), hv(lg, {B, L, V}), hv(kp, {N}), hv(sg, {B}), sc.a);
      Tensor gz = dev.up(z0, {N}), gst = dev.zeros(DType::I32, {2});
      gpu.diffusion_step(gz, gst, dev.up(logits, {B, L, V}), dev.up(keep, {N}), dev.up(sigma, {B}), sc.a);
      BOOST_TEST_CONTEXT("V " << V << (ties ? " ties" : "") << " family " << int(fam) << " " << sc.name
                                << " k " << sc.a.top_k << " p " << sc.a.p_nucleus) {
        BOOST_TEST(dev.down<int32_t>(gz) == z_cpu);
        BOOST_TEST(dev.down<int32_t>(gst) == st_cpu);
        BOOST_TEST(st_cpu[1] == int32_t(N));  // every row finite
        BOOST_TEST(z_cpu[3] == z0[3]);
        BOOST_TEST(z_cpu[8] == z0[8]);
      }
      changed += st_cpu[0];
      compared += N;
    }
  }
  BOOST_TEST(changed > compared / 4);  // the steps change many tokens: equal ids are not unchanged ids
}

// A row that is not finite: the status names the first, on both backends; sigma may be left out but for SEDD.
BOOST_AUTO_TEST_CASE(cuda_diffusion_step_non_finite_rows_and_checks) {
  const int64_t B = 2, L = 4, N = B * L, V = 40;
  std::vector<float> logits = rand_f(N * V, 7, -2.0f, 2.0f);
  logits[size_t(5 * V + 17)] = std::numeric_limits<float>::quiet_NaN();
  logits[size_t(6 * V + 2)] = std::numeric_limits<float>::infinity();
  const std::vector<int32_t> z0 = rand_ids(N, 8, int(V));
  DiffusionStepArgs a;
  a.alpha_t = 0.4;
  a.alpha_s = 0.7;
  CpuOps cpu;
  CudaOps gpu;
  DeviceBuffers dev(gpu);
  std::vector<int32_t> z_cpu = z0, st_cpu(2);
  Tensor none;
  cpu.diffusion_step(hv(z_cpu, {N}), hv(st_cpu, {2}), hv(logits, {B, L, V}), none, none, a);
  Tensor gz = dev.up(z0, {N}), gst = dev.zeros(DType::I32, {2});
  gpu.diffusion_step(gz, gst, dev.up(logits, {B, L, V}), none, none, a);
  BOOST_TEST(st_cpu[1] == 5);
  BOOST_TEST(dev.down<int32_t>(gst)[1] == 5);
  // SEDD reads sigma: without it the call fails before any work, naming it.
  DiffusionStepArgs s = a;
  s.family = DiffusionFamily::sedd;
  s.mask_id = int32_t(V) - 1;
  BOOST_CHECK_THROW(gpu.diffusion_step(gz, gst, dev.up(logits, {B, L, V}), none, none, s), Error);
  // An id outside the vocabulary: reported at the next synchronisation (check_ids), as for every op reading ids.
  std::vector<int32_t> bad = z0;
  bad[2] = int32_t(V) + 3;
  Tensor gbad = dev.up(bad, {N});
  BOOST_CHECK_THROW(gpu.diffusion_step(gbad, gst, dev.up(logits, {B, L, V}), none, none, a); gpu.sync(), Error);
}

BOOST_AUTO_TEST_SUITE_END()
