// The GPU step model end to end (docs/architecture.md §5): one DUO training step planned on PlanOps and priced by the
// traffic model names exactly the launches the emulated CUDA backend runs for the same step, with the same
// tensor-core FLOPs; the memory plan adds up; the device table and the roofline arithmetic.
#include <boost/test/unit_test.hpp>

#include "backend/plan_ops.h"
#include "backend/roofline.h"
#include "cuda_ops.h"
#include "core/error.h"
#include "emu/traffic.h"
#include "model/params.h"
#include "train/step_plan.h"

using namespace duo;

namespace {

TrainConfig tiny_duo(const std::string& mode) {
  TrainConfig cfg;
  cfg.algo = "duo";
  cfg.model = model_preset("tiny");
  cfg.model.hidden = 64;
  cfg.model.n_blocks = 2;
  cfg.model.n_heads = 2;  // head_dim 32: the flash kernels
  cfg.model.length = 32;
  cfg.model.vocab_size = 67;
  cfg.batch_size = cfg.global_batch_size = cfg.eval_batch_size = 2;
  cfg.curriculum.mode = mode;
  cfg.curriculum.gamma_min = -2.9;
  cfg.curriculum.gamma_max = 0.75;
  return cfg;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(roofline)

BOOST_AUTO_TEST_CASE(planned_step_names_the_emulated_launches) {
  for (const char* mode : {"simple", "efficient"}) {
    BOOST_TEST_CONTEXT("curriculum " << mode) {
      const TrainConfig cfg = tiny_duo(mode);
      PlanOps plan_ops;
      TrainingStepPlan planned(cfg, plan_ops);
      KernelLog log;
      planned.run_step(0);  // as the real one: the second step, with AdamW's working copies of the weights
      plan_ops.set_observer(&log);
      planned.run_step(0);
      plan_ops.set_observer(nullptr);

      CudaOps cuda;
      TrainingStepPlan real(cfg, cuda);
      real.run_step(0);  // sizes the workspace, leaves the working copies current
      std::vector<emu::ScopeTraffic> got;
      {
        emu::TrafficCounter counter;
        real.run_step(0);
        got = counter.stop();
      }
      // Host transfers (cudaMemcpy) are the loop's and the algorithm's uploads on the real backend; the model
      // prices the kernels.
      std::vector<std::string> want_names, got_names;
      double want_tc = 0, got_tc = 0;
      for (const LaunchRecord& r : log.launches())
        if (r.k.kernel != "cudaMemcpy") want_names.push_back(r.k.kernel), want_tc += r.k.tensor_flops;
      for (const emu::ScopeTraffic& s : got)
        if (s.what != "cudaMemcpy") got_names.push_back(s.what), got_tc += s.tensor_flops;
      BOOST_TEST(want_names.size() > 100u);
      BOOST_TEST(got_names == want_names, boost::test_tools::per_element());
      BOOST_TEST(got_tc == want_tc);
    }
  }
}

BOOST_AUTO_TEST_CASE(memory_plan_adds_up) {
  const TrainConfig cfg = tiny_duo("simple");
  const MemoryPlan p = plan_training_memory(cfg);
  const ParamTable table(cfg.model);
  BOOST_TEST(p.state == size_t(5 * table.total() * 4));  // parameters, gradients, m, v, EMA in fp32
  BOOST_TEST(p.activations > 0u);
  // The curriculum's clean ids and latents (B·L each), but not its (B, L, V) soft logits: embed_relaxed draws them
  // inside the embedding.
  BOOST_TEST(p.other >= size_t(2 * 2 * 32 * 4));
  BOOST_TEST(p.other < size_t(2 * 32 * 67 * 4));
  BOOST_TEST(p.scratch >= kCublasLtWorkspaceBytes);
  BOOST_TEST(p.report.find("total: ") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(roofline_arithmetic) {
  const DeviceSpec& h100 = device_spec("h100");
  BOOST_TEST(h100.bf16_flops == 989.4e12);
  BOOST_TEST(h100.bandwidth == 3.35e12);
  KernelTraffic gemm{"gemm", 1e6, 1e6, 989.4e9, 0};  // 1 ms of tensor work, 0.6 us of traffic
  const char* bound = "";
  BOOST_TEST(roofline_seconds(gemm, h100, &bound) == 1e-3, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(std::string(bound) == "compute");
  KernelTraffic copy{"cudaMemcpy", 3.35e9, 3.35e9, 0, 0};  // 2 ms of traffic
  BOOST_TEST(roofline_seconds(copy, h100, &bound) == 2e-3, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(std::string(bound) == "memory");
  // An mma kernel that loads 256 bytes of fragments a mma (4096 FLOPs) from shared memory: 128 bytes a clock and
  // SM feed one mma every two clocks, half the tensor cores' rate, so it runs at half the peak (the tolerance: the
  // peak is 4096 FLOPs a clock and SM at 1.83 GHz to 4 digits).
  KernelTraffic attn{"flash_dq", 1e6, 1e6, 989.4e9, 0, 989.4e9 / 4096 * 256};
  BOOST_TEST(roofline_seconds(attn, h100, &bound) == 2e-3, boost::test_tools::tolerance(1e-4));
  BOOST_TEST(std::string(bound) == "shared memory");
  attn.fragment_bytes /= 2;  // 128 bytes a mma: level with the tensor cores
  BOOST_TEST(roofline_seconds(attn, h100, &bound) == 1e-3, boost::test_tools::tolerance(1e-4));
  BOOST_CHECK_THROW(device_spec("v100"), Error);
}

BOOST_AUTO_TEST_SUITE_END()
