// Where the host waits for the GPU (CudaOps::host_waits): uploads (from_host) go through the staging ring and wait
// for nothing, and a training step waits only to read what it needs on the host. Through the emulator (every copy
// has finished when its call returns) these tests check the books and the contents; on a GPU (`make test-cuda`) the
// same tests run with the copies really in flight.
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <numeric>
#include <vector>

#include "cuda_test_util.h"
#include "jobs/sample_job.h"
#include "tiny_corpus.h"
#include "train/trainer.h"

using namespace duo;
using namespace duo::test;

namespace {

// The host waits of a whole run of `steps` optimizer steps of `algo` (2 micro-batches each), from construction of
// the backend to the end of the run.
size_t run_waits(const testing::TinyCorpus& c, const std::string& table, const std::string& algo, int64_t steps) {
  TrainConfig t = testing::tiny_train_config(c, algo, algo + "_waits_" + std::to_string(steps), steps, 64);
  t.batch_size = 4; t.global_batch_size = 8;
  t.curriculum.integral_cache_path = table;
  t.curriculum.gamma_min = -3.0; t.curriculum.gamma_max = 1.0;
  CudaOps gpu;
  Trainer(t, gpu).run();
  return gpu.host_waits();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(DUO_CUDA_SUITE)

// Every upload lands whole, whatever the host does with its buffer after the call: small ones through the ring
// (several laps of it), large ones synchronously. Small uploads wait for nothing until the ring comes round to
// bytes whose copy may still be in flight.
BOOST_AUTO_TEST_CASE(uploads_land_whole_and_small_ones_wait_for_nothing) {
  CudaOps ops;
  const std::vector<int64_t> sizes = {1, 3, 64, 1000, 4096, 65537, 300000, 1 << 20, 3 << 20, 5};
  std::vector<std::vector<float>> want;
  std::vector<Tensor> got;
  std::vector<float> host;
  int64_t uploaded = 0;
  for (int lap = 0; lap < 4; ++lap)
    for (int64_t n : sizes) {
      host.assign((size_t)n, 0.0f);
      for (int64_t i = 0; i < n; ++i) host[(size_t)i] = float(lap * 1000003 + n + i);
      Tensor t(ops.alloc((size_t)n * sizeof(float)), DType::F32, {n}, Device::CUDA);
      const size_t waits = ops.host_waits();
      ops.from_host(t, host.data());
      if (uploaded + n * 4 < int64_t(6 << 20) && n * 4 <= int64_t(2 << 20))
        BOOST_TEST(ops.host_waits() == waits, "an upload of " << n << " floats within the ring's first lap waited");
      uploaded += n * 4;
      std::fill(host.begin(), host.end(), -1.0f);  // the caller reuses its buffer at once
      want.emplace_back((size_t)n);
      for (int64_t i = 0; i < n; ++i) want.back()[(size_t)i] = float(lap * 1000003 + n + i);
      got.push_back(t);
    }
  for (size_t k = 0; k < got.size(); ++k) {
    std::vector<float> back(want[k].size());
    ops.to_host(back.data(), got[k]);
    BOOST_TEST(back == want[k], "upload " << k << " of " << want[k].size() << " floats");
    ops.release(got[k].data);
  }
}

// A training step waits for the device to read its per-token losses (once per micro-batch) and the gradient norm
// (once per step). Before the staging ring each upload waited too, and each id check's readback once more, and DUO's
// simple curriculum read its relaxed input's z back for the loss head: 20 waits a step (MDLM), 25 (DUO).
BOOST_AUTO_TEST_CASE(a_training_step_waits_only_for_what_the_host_reads) {
  testing::TinyCorpus c({120, 3}, {20, 4});
  const std::string table = c.integral_table(-6.0, 6.0, 1201);
  for (const auto& [algo, per_step] : std::vector<std::pair<std::string, size_t>>{{"mdlm", 3}, {"duo", 3}}) {
    const size_t two = run_waits(c, table, algo, 2), four = run_waits(c, table, algo, 4);
    BOOST_TEST_MESSAGE(algo << ": " << two << " host waits over 2 steps, " << four << " over 4");
    BOOST_TEST(four - two == 2 * per_step, algo << ": " << (four - two) / 2.0 << " host waits a step, not " << per_step);
  }
}

// A denoising step of the sample job waits twice: for its status (the tokens changed, the first non-finite row) and for
// the updated ids; its uploads (the ids for the forward, the noise levels, the kept positions) wait for nothing. The
// count also shows that the job updates on the device: until this test, its progress wrapper hid the in-place update
// from the loop, which then copied the whole (B, L, V) output to the host each step and sampled there (one wait a
// step, but 6.6 GB at batch 32 × 1024 and GPT-2's vocabulary).
BOOST_AUTO_TEST_CASE(a_denoising_step_waits_for_its_status_and_its_ids) {
  testing::TinyCorpus c({120, 3}, {20, 4});
  TrainConfig t = testing::tiny_train_config(c, "duo_base", "sampled", 1, 64);
  t.batch_size = t.global_batch_size = 4;
  CudaOps gpu;
  Trainer(t, gpu).run();
  auto waits = [&](int64_t steps) {
    SampleOptions o;
    o.checkpoint_path = t.resume_path;
    o.vocab_dir = c.vocab_dir();
    o.steps = steps;
    o.num_samples = o.batch_size = 2;
    o.seed = 7;
    const size_t before = gpu.host_waits();
    SampleJob(o).run(gpu, nullptr, nullptr);
    return gpu.host_waits() - before;
  };
  const size_t eight = waits(8), sixteen = waits(16);
  BOOST_TEST_MESSAGE("sampling: " << eight << " host waits for 8 steps, " << sixteen << " for 16");
  BOOST_TEST(sixteen - eight == 2u * 8u, (sixteen - eight) / 8.0 << " host waits a denoising step, not 2");
}

BOOST_AUTO_TEST_SUITE_END()
